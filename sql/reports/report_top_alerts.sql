-- The day's danger alerts with the most value at risk, with the reason for each.
-- Grain: one row per alert, priority 1..$top_alerts.
--
-- Parameters:
--   $danger_alerts_file       the date's danger_alerts partition
--   $top_alerts               how many

with

danger_alerts as (

    select * from read_parquet($danger_alerts_file)

),

final as (

    select
        priority,
        alert_id,
        customer_id,
        from_stage,
        rules,
        reason,
        days_since_last_purchase,
        expected_gap_days,
        value_at_risk,
        segment,
        cluster_id,
        cluster_name,
        suggested_action,

    from danger_alerts
    where priority <= $top_alerts

)

select * from final
order by priority
