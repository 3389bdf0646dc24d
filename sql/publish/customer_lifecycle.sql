-- Published customer_lifecycle: every known customer's stage on $as_of_date, keyed by
-- the pseudonymous customer_key. Grain: customer_key.
-- Input: the view lake_customer_lifecycle (the date's lake partition).

with

lifecycle as (

    select * from lake_customer_lifecycle

),

final as (

    select
        customer_key(customer_id) as customer_key,
        as_of_date,
        stage,
        stage_since,
        previous_stage,
        stage_reason,
        danger_rules,
        danger_entered_on,
        won_back_on,
        risk,
        risk_week_ago,
        risk_source,
        horizon_days,
        expected_purchases,
        p_alive,
        rhythm_percentile,
        silence_in_gaps,
        segment,
        cluster_id,
        cluster_name,
        signup_date,
        first_purchase_date,
        last_purchase_date,
        days_since_last_purchase,
        window_purchase_days,
        observed_gaps,
        own_gap_days,
        expected_gap_days,
        window_net_amount,
        recent_sale_amount,
        recent_returned_amount,
        recent_return_lines,
        recent_net_amount,
        last_return_date,

    from lifecycle

)

select * from final
order by customer_key
