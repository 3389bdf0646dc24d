-- The naive baseline the rules must beat: alert when a customer's days since the last
-- purchase reach $baseline_days (whatever their rhythm). One row per alert.
-- Input: the view customer_lifecycle (every as-of date).

with

daily as (

    select
        customer_id,
        as_of_date,
        days_since_last_purchase,
        lag(days_since_last_purchase) over (
            partition by customer_id order by as_of_date
        ) as days_before,

    from customer_lifecycle

),

final as (

    select
        format('recency_{}_days', $baseline_days::integer) as method,
        customer_id,
        as_of_date as alert_date,

    from daily
    where days_since_last_purchase >= $baseline_days
        and days_before < $baseline_days

)

select * from final
