-- Each customer's purchase days up to a cutoff, in the terms of the BTYD models and the
-- plain recency and frequency peers of the lifecycle (pipeline/realdata/peers.py).
-- Grain: one row per customer with a purchase day on or before $cutoff.
-- Input: the view int_purchase_days (sql/lifecycle/int_purchase_days.sql, known by $cutoff).
-- A purchase day is a day with a sale line (sale_lines > 0), as in the scoring's
-- purchase_days; all history counts (no scoring window).
--
-- Parameters:
--   $cutoff   the as-of date D: T and recency are measured to it

with

purchase_days as (

    select * from int_purchase_days

),

final as (

    select
        customer_id,
        min(activity_date) as first_purchase_date,
        max(activity_date) as last_purchase_date,
        count(*)::integer as purchase_days,
        -- BTYD: repeat purchase days, first to last, first to the cutoff (in days).
        (count(*) - 1)::integer as frequency,
        (max(activity_date) - min(activity_date))::integer as recency_days,
        ($cutoff::date - min(activity_date))::integer as age_days,
        ($cutoff::date - max(activity_date))::integer as days_since_last_purchase,

    from purchase_days
    group by customer_id

)

select * from final
order by customer_id
