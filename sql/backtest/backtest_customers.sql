-- What the pipeline said of every buyer on a past date $cutoff_date, next to what each
-- did in the $horizon_days after it: the backtest's judged rows. Grain: one row per
-- customer with a purchase by the cut-off.
-- Inputs (views): judged_lifecycle (customer_lifecycle of the cut-off), customer_days
-- (export partitions up to $known_by, never later).

with

judged as (

    select * from judged_lifecycle
    where last_purchase_date is not null

),

purchases as (

    select distinct
        customer_id,
        activity_date,

    from customer_days
    where sale_lines > 0
        and export_date <= $known_by::date
        and activity_date > $cutoff_date::date
        and activity_date <= $cutoff_date::date + $horizon_days::integer

),

bought as (

    select customer_id, min(activity_date) as next_purchase_date
    from purchases
    group by customer_id

),

final as (

    select
        judged.customer_id,
        judged.stage,
        judged.danger_entered_on,
        judged.risk,
        judged.expected_purchases,
        judged.days_since_last_purchase,
        judged.window_purchase_days,
        judged.last_purchase_date,
        bought.next_purchase_date,
        bought.customer_id is null as no_purchase,

    from judged
    left join bought on judged.customer_id = bought.customer_id

)

select * from final
order by customer_id
