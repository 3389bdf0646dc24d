-- The customer state as of $as_of_date, recomputed from every order line: the
-- full-recompute path, and the reference the incremental path must equal exactly.
-- Grain: one row per customer with at least one sale or return line up to the date.
-- Input: the view int_customer_lines over every order line up to the date.
-- A purchase day is a local day with at least one sale line: several orders on one day,
-- or lines of one day that arrived in two exports, count once. The window is the
-- $window_days days ending with the as-of date.
-- One pass, grouped by customer only: purchase days in the window are counted as the
-- bits set in a 378-bit mask (three 126-bit integers, one bit per day of the window),
-- so the aggregate state has a fixed size and no (customer, day) table is ever built.

with

customer_lines as (

    select
        *,
        activity_date > $as_of_date::date - $window_days::integer as in_window,
        -- The line's day within the window, 0 = the window's first day.
        case
            when is_sale and activity_date > $as_of_date::date - $window_days::integer
                then activity_date - ($as_of_date::date - $window_days::integer + 1)
        end as window_day,

    from int_customer_lines
    where export_date <= $as_of_date::date

),

-- Each aggregate's input computed once per line: plain sums run much faster than
-- aggregates with filter clauses.
line_figures as (

    select
        customer_id,
        amount,
        case when is_sale then activity_date end as sale_date,
        case when in_window and not is_sale then -amount else 0 end as window_returned_amount,
        case when in_window then amount else 0 end as window_net_amount,
        case when window_day // 126 = 0 then 1::hugeint << (window_day % 126)::integer end
            as bits_0,
        case when window_day // 126 = 1 then 1::hugeint << (window_day % 126)::integer end
            as bits_1,
        case when window_day // 126 = 2 then 1::hugeint << (window_day % 126)::integer end
            as bits_2,

    from customer_lines

),

final as (

    select
        customer_id,
        min(sale_date) as first_purchase_date,
        max(sale_date) as last_purchase_date,
        sum(amount)::decimal(18, 4) as lifetime_net_amount,
        (
            coalesce(bit_count(bit_or(bits_0)), 0)::bigint
            + coalesce(bit_count(bit_or(bits_1)), 0)::bigint
            + coalesce(bit_count(bit_or(bits_2)), 0)::bigint
        ) as window_purchase_days,
        sum(window_returned_amount)::decimal(18, 4) as window_returned_amount,
        sum(window_net_amount)::decimal(18, 4) as window_net_amount,
        -- The window it was counted over: a state of another length is not built on.
        $window_days::integer as window_days,

    from line_figures
    group by customer_id

)

select * from final
order by customer_id
