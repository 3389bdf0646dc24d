-- Every customer's activity in the recent window as of $as_of_date, from the day
-- before's: add the export date's customer days, take out the day that leaves the
-- window. Reads a bounded number of partitions whatever the window's length, and must
-- equal recent_activity_from_days exactly (a test holds it to that), as the scoring
-- state's two queries do.
-- Grain: one row per customer with a customer day (a sale or a return) in the window.
-- Inputs (views): previous_recent_activity (as of the day before), and customer_days
-- holding the export partitions that can carry the changed days: the as-of date's, the
-- $late_span_days before it, and those of the day leaving the window.
-- Bound: $recent_days, $late_span_days.

with

previous_activity as (

    select * from previous_recent_activity

),

customer_days as (

    select * from customer_days
    where export_date <= $as_of_date::date

),

todays_rows as (

    select * from customer_days
    where export_date = $as_of_date::date
        and activity_date > $as_of_date::date - $recent_days::integer

),

-- Late rows can repeat a purchase day an earlier export already brought.
already_counted as (

    select distinct
        customer_id,
        activity_date,

    from customer_days
    where export_date < $as_of_date::date
        and activity_date >= $as_of_date::date - $late_span_days::integer
        and sale_lines > 0

),

arriving as (

    select
        todays_rows.customer_id,
        count(*) as customer_days,
        count(*) filter (
            where todays_rows.sale_lines > 0 and already_counted.customer_id is null
        ) as purchase_days,
        sum(todays_rows.sale_amount) as sale_amount,
        sum(todays_rows.returned_amount) as returned_amount,
        sum(todays_rows.return_lines) as return_lines,
        sum(todays_rows.net_amount) as net_amount,
        max(todays_rows.activity_date) filter (where todays_rows.return_lines > 0)
            as last_return_date,

    from todays_rows
    left join already_counted
        on todays_rows.customer_id = already_counted.customer_id
        and todays_rows.activity_date = already_counted.activity_date
    group by todays_rows.customer_id

),

-- The day that was in yesterday's window and is not in today's, from every export
-- before today that brought rows for it: taken out.
leaving as (

    select
        customer_id,
        -count(*) as customer_days,
        -count(distinct activity_date) filter (where sale_lines > 0) as purchase_days,
        -sum(sale_amount) as sale_amount,
        -sum(returned_amount) as returned_amount,
        -sum(return_lines) as return_lines,
        -sum(net_amount) as net_amount,
        null::date as last_return_date,

    from customer_days
    where activity_date = $as_of_date::date - $recent_days::integer
        and export_date < $as_of_date::date
    group by customer_id

),

kept as (

    select
        customer_id,
        recent_customer_days as customer_days,
        recent_purchase_days as purchase_days,
        recent_sale_amount as sale_amount,
        recent_returned_amount as returned_amount,
        recent_return_lines as return_lines,
        recent_net_amount as net_amount,
        -- Yesterday's last return, unless it has left the window (then no return is
        -- left in it).
        case
            when last_return_date > $as_of_date::date - $recent_days::integer
                then last_return_date
        end as last_return_date,

    from previous_activity

),

changes as (

    select * from kept
    union all by name
    select * from arriving
    union all by name
    select * from leaving

),

final as (

    select
        customer_id,
        sum(customer_days)::integer as recent_customer_days,
        sum(sale_amount)::decimal(18, 2) as recent_sale_amount,
        sum(returned_amount)::decimal(18, 2) as recent_returned_amount,
        sum(return_lines)::integer as recent_return_lines,
        sum(purchase_days)::integer as recent_purchase_days,
        sum(net_amount)::decimal(18, 2) as recent_net_amount,
        max(last_return_date) as last_return_date,
        $recent_days::integer as recent_days,

    from changes
    group by customer_id
    having sum(customer_days) > 0

)

select * from final
order by customer_id
