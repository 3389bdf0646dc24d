-- Data checks of one customer_lifecycle partition (the view customer_lifecycle): each
-- row names a check and how many rows fail it. The step fails unless every count is 0.

with

lifecycle as (

    select * from customer_lifecycle

),

counts as (

    select
        count(*) - count(distinct customer_id) as customer_not_unique,
        count(*) filter (where customer_id is null) as customer_missing,
        count(*) filter (
            where stage is null or stage not in (
                'prospect', 'socialization', 'growth', 'maturity', 'danger', 'termination',
                'interruption'
            )
        ) as stage_not_accepted,
        count(*) filter (where (stage = 'prospect') <> (last_purchase_date is null))
            as prospect_iff_no_purchase,
        count(*) filter (
            where stage = 'danger' and previous_stage is distinct from 'danger' and danger_rules is null
        ) as danger_entered_without_rule,
        count(*) filter (where stage = 'danger' and danger_entered_on is null)
            as danger_without_entry_date,
        count(*) filter (where stage_since > $as_of_date::date) as stage_since_in_future,
        count(*) filter (where last_purchase_date > $as_of_date::date) as purchase_in_future,
        count(*) filter (where risk < 0 or risk > 1) as risk_out_of_range,
        count(*) filter (where last_purchase_date is not null and risk is null)
            as buyer_without_risk,
        count(*) filter (where rhythm_percentile < 0 or rhythm_percentile > 1)
            as rhythm_percentile_out_of_range,
        count(*) filter (where expected_purchases < 0) as expected_purchases_negative,

    from lifecycle

)

unpivot counts on columns(*) into name check_name value failing_rows
