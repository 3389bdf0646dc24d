-- The customer state as of $as_of_date from the state of the day before: add the
-- export date's customer-day rows, take out the day that leaves the window. Reads a
-- bounded number of partitions whatever the length of history, and must equal
-- customer_state_from_history exactly (a test holds it to that).
-- Grain: one row per customer with at least one sale or return line up to the date.
-- Inputs: the view previous_customer_state (as of the day before), and the view
-- customer_days holding the export partitions that can carry the changed days: the
-- as-of date's, the $late_span_days before it, and those of the day leaving the window.

with

previous_state as (

    select * from previous_customer_state

),

customer_days as (

    select * from customer_days
    where export_date <= $as_of_date::date

),

todays_rows as (

    select * from customer_days
    where export_date = $as_of_date::date

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
        min(todays_rows.activity_date) filter (where todays_rows.sale_lines > 0)
            as first_purchase_date,
        max(todays_rows.activity_date) filter (where todays_rows.sale_lines > 0)
            as last_purchase_date,
        count(*) filter (
            where todays_rows.sale_lines > 0 and already_counted.customer_id is null
        ) as purchase_days,
        sum(todays_rows.returned_amount) as returned_amount,
        sum(todays_rows.net_amount) as net_amount,

    from todays_rows
    left join already_counted
        on todays_rows.customer_id = already_counted.customer_id
        and todays_rows.activity_date = already_counted.activity_date
    group by todays_rows.customer_id

),

-- The day that was in yesterday's window and is not in today's, from every export
-- before today that brought rows for it.
leaving as (

    select
        customer_id,
        count(distinct activity_date) filter (where sale_lines > 0) as purchase_days,
        sum(returned_amount) as returned_amount,
        sum(net_amount) as net_amount,

    from customer_days
    where activity_date = $as_of_date::date - $window_days::integer
        and export_date < $as_of_date::date
    group by customer_id

),

final as (

    select
        coalesce(previous_state.customer_id, arriving.customer_id) as customer_id,
        least(previous_state.first_purchase_date, arriving.first_purchase_date)
            as first_purchase_date,
        greatest(previous_state.last_purchase_date, arriving.last_purchase_date)
            as last_purchase_date,
        (
            coalesce(previous_state.lifetime_net_amount, 0) + coalesce(arriving.net_amount, 0)
        )::decimal(18, 4) as lifetime_net_amount,
        coalesce(previous_state.window_purchase_days, 0)
            + coalesce(arriving.purchase_days, 0)
            - coalesce(leaving.purchase_days, 0) as window_purchase_days,
        (
            coalesce(previous_state.window_returned_amount, 0)
            + coalesce(arriving.returned_amount, 0)
            - coalesce(leaving.returned_amount, 0)
        )::decimal(18, 4) as window_returned_amount,
        (
            coalesce(previous_state.window_net_amount, 0)
            + coalesce(arriving.net_amount, 0)
            - coalesce(leaving.net_amount, 0)
        )::decimal(18, 4) as window_net_amount,
        $window_days::integer as window_days,

    from previous_state
    full outer join arriving
        on previous_state.customer_id = arriving.customer_id
    left join leaving
        on coalesce(previous_state.customer_id, arriving.customer_id) = leaving.customer_id

)

select * from final
order by customer_id
