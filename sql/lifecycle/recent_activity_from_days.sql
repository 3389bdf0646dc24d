-- Every customer's activity in the recent window as of $as_of_date, from the window's
-- customer days: the full query of recent_activity (the incremental one,
-- recent_activity_from_previous.sql, must give the same rows). The risk model's
-- backtest runs it for past cut-off dates, whose state is no longer kept.
-- Grain: one row per customer with a customer day (a sale or a return) in the window.
-- Inputs (views): customer_days (export partitions covering the $recent_days window).
-- Bound: $recent_days.

with

window_days as (

    select
        *,
        -- A purchase day as one bit of three 126-bit masks (days 0 to 377 before the
        -- date): a late line can repeat a day, and OR-ing the bits counts each day once,
        -- at a fraction of the cost of count(distinct), as the scoring state does.
        case when sale_lines > 0 then $as_of_date::date - activity_date end as day_back,
        case when day_back // 126 = 0 then 1::hugeint << (day_back % 126)::integer end
            as bits_0,
        case when day_back // 126 = 1 then 1::hugeint << (day_back % 126)::integer end
            as bits_1,
        case when day_back // 126 = 2 then 1::hugeint << (day_back % 126)::integer end
            as bits_2,

    from customer_days
    where activity_date > $as_of_date::date - $recent_days::integer
        and activity_date <= $as_of_date::date
        and export_date <= $as_of_date::date

),

final as (

    select
        customer_id,
        count(*)::integer as recent_customer_days,
        sum(sale_amount)::decimal(18, 2) as recent_sale_amount,
        sum(returned_amount)::decimal(18, 2) as recent_returned_amount,
        sum(return_lines)::integer as recent_return_lines,
        (
            coalesce(bit_count(bit_or(bits_0)), 0)::integer
            + coalesce(bit_count(bit_or(bits_1)), 0)::integer
            + coalesce(bit_count(bit_or(bits_2)), 0)::integer
        ) as recent_purchase_days,
        sum(net_amount)::decimal(18, 2) as recent_net_amount,
        max(activity_date) filter (where return_lines > 0) as last_return_date,
        -- The window it was counted over: a state of another length is not built on.
        $recent_days::integer as recent_days,

    from window_days
    group by customer_id

)

select * from final
order by customer_id
