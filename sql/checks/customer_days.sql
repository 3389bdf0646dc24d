-- Data checks of one customer_days partition (the view customer_days, with its
-- export_date): each row names a check and how many rows fail it.

with

customer_days as (

    select * from customer_days

),

counts as (

    select
        count(*) - count(distinct (customer_id, activity_date)) as key_not_unique,
        count(*) filter (where customer_id is null or activity_date is null) as key_null,
        count(*) filter (
            where activity_date > export_date
                or activity_date < export_date - $late_span_days::integer
        ) as activity_date_outside_span,
        count(*) filter (where sale_lines + return_lines = 0) as row_without_lines,
        count(*) filter (where returned_amount < 0 or sale_amount < 0) as amount_sign_wrong,
        count(*) filter (where net_amount <> sale_amount - returned_amount)
            as net_not_sale_minus_returns,

    from customer_days

)

unpivot counts on columns(*) into name check_name value failing_rows
