-- Data checks of one customer_state partition (the view customer_state): each row
-- names a check and how many rows fail it.

with

customer_state as (

    select * from customer_state

),

counts as (

    select
        count(*) - count(distinct customer_id) as customer_id_not_unique,
        count(*) filter (where customer_id is null) as customer_id_null,
        count(*) filter (where window_purchase_days < 0 or window_returned_amount < 0)
            as window_figure_negative,
        count(*) filter (where last_purchase_date < first_purchase_date) as dates_reversed,
        count(*) filter (
            where window_purchase_days > last_purchase_date - first_purchase_date + 1
        ) as more_purchase_days_than_days,
        count(*) filter (where (first_purchase_date is null) <> (last_purchase_date is null))
            as purchase_dates_half_known,

    from customer_state

)

unpivot counts on columns(*) into name check_name value failing_rows
