-- Every customer's purchase days known by $known_by: a local day with at least one sale
-- line, from the exports up to that date (late lines count once they have arrived).
-- Grain: one row per (customer_id, activity_date).
-- Input: the view customer_days. Read by purchase_gaps (the rhythm), the backtest's
-- entries and the real-data harness's histories, each as the view int_purchase_days.

with

customer_days as (

    select * from customer_days

),

final as (

    select distinct
        customer_id,
        activity_date,

    from customer_days
    where sale_lines > 0
        and export_date <= $known_by::date
        and activity_date <= $known_by::date

)

select * from final
