-- The customer state as of $as_of_date, recomputed from every customer-day row: the
-- full-recompute path, and the reference the incremental path must equal exactly.
-- Grain: one row per customer with at least one sale or return line up to the date.
-- Input: the view customer_days (rows of every export date, export_date included).
-- A purchase day is a local day with at least one sale line: several orders on one day
-- count once. The window is the $window_days days ending with the as-of date.

with

customer_days as (

    select * from customer_days
    where export_date <= $as_of_date::date

),

-- A late line can bring the same customer and day in two exports: one row per day.
activity_days as (

    select
        customer_id,
        activity_date,
        sum(sale_lines) as sale_lines,
        sum(return_lines) as return_lines,
        sum(sale_amount) as sale_amount,
        sum(returned_amount) as returned_amount,
        sum(net_amount) as net_amount,
        activity_date > $as_of_date::date - $window_days::integer as in_window,

    from customer_days
    group by customer_id, activity_date

),

final as (

    select
        customer_id,
        min(activity_date) filter (where sale_lines > 0) as first_purchase_date,
        max(activity_date) filter (where sale_lines > 0) as last_purchase_date,
        max(activity_date) as last_activity_date,
        count(*) filter (where sale_lines > 0) as lifetime_purchase_days,
        sum(net_amount)::decimal(18, 4) as lifetime_net_amount,
        count(*) filter (where sale_lines > 0 and in_window) as window_purchase_days,
        coalesce(sum(sale_lines) filter (where in_window), 0)::bigint as window_sale_lines,
        coalesce(sum(return_lines) filter (where in_window), 0)::bigint as window_return_lines,
        coalesce(sum(sale_amount) filter (where in_window), 0)::decimal(18, 4)
            as window_sale_amount,
        coalesce(sum(returned_amount) filter (where in_window), 0)::decimal(18, 4)
            as window_returned_amount,
        coalesce(sum(net_amount) filter (where in_window), 0)::decimal(18, 4)
            as window_net_amount,

    from activity_days
    group by customer_id

)

select * from final
order by customer_id
