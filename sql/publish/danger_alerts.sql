-- Published danger_alerts: the customers who entered the danger stage on $as_of_date,
-- with why and what is at risk. The alert_id is left out (it is derived from the
-- customer id); CRM staff get the identified alert through delivery.
-- Grain: (as_of_date, customer_key).
-- Input: the view lake_danger_alerts (the date's lake partition).

with

alerts as (

    select * from lake_danger_alerts

),

final as (

    select
        as_of_date,
        customer_key(customer_id) as customer_key,
        priority,
        value_at_risk,
        from_stage,
        rules,
        reason,
        suggested_action,
        days_since_last_purchase,
        expected_gap_days,
        rhythm_percentile,
        risk,
        risk_week_ago,
        horizon_days,
        expected_purchases,
        window_purchase_days,
        recent_net_amount,
        recent_returned_amount,
        recent_return_lines,
        segment,
        cluster_id,
        cluster_name,

    from alerts

)

select * from final
order by priority, value_at_risk desc, customer_key
