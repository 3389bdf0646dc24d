-- Customer-day aggregates: what each customer bought and returned per local day, per
-- export date. The lake's customer_days table, one partition per export_date; daily
-- scoring reads it instead of order lines, so its work grows with the day's data.
-- Grain: one row per (export_date, customer_id, activity_date).
-- Input: the view int_customer_lines (see int_customer_lines.sql for which lines count
-- and on which day).

with

customer_lines as (

    select * from int_customer_lines

),

final as (

    select
        export_date,
        customer_id,
        activity_date,
        count(distinct order_id) filter (where is_sale) as sale_orders,
        count(*) filter (where is_sale) as sale_lines,
        count(*) filter (where not is_sale) as return_lines,
        coalesce(sum(amount) filter (where is_sale), 0)::decimal(18, 4) as sale_amount,
        coalesce(-sum(amount) filter (where not is_sale), 0)::decimal(18, 4)
            as returned_amount,
        sum(amount)::decimal(18, 4) as net_amount,

    from customer_lines
    group by export_date, customer_id, activity_date

)

-- The partition's path holds export_date.
select * exclude (export_date) from final
order by export_date, customer_id, activity_date
