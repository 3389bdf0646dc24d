-- What each customer did after a past cut-off date: the backtest's labels. Grain: one
-- row per customer of the view cutoff_customers (customer_id).
-- Inputs (views): cutoff_customers (the customers known on $cutoff_date), customer_days
-- (export partitions up to $known_by). A customer "did not buy" when no purchase day
-- falls in ($cutoff_date, $cutoff_date + $horizon_days], among rows exported by
-- $known_by (the backtest never reads exports after the date it runs as of).

with

bought as (

    select distinct customer_id
    from customer_days
    where sale_lines > 0
        and activity_date > $cutoff_date::date
        and activity_date <= $cutoff_date::date + $horizon_days::integer
        and export_date <= $known_by::date

),

final as (

    select
        cutoff_customers.customer_id,
        bought.customer_id is null as no_purchase,

    from cutoff_customers
    left join bought on cutoff_customers.customer_id = bought.customer_id

)

select * from final
order by customer_id
