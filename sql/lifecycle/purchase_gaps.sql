-- Every gap between consecutive purchase days up to $as_of_date, and each customer's
-- open gap (censored: the silence since the last purchase), for the rhythm model's
-- survival curves. Grain: one row per (customer, purchase day).
-- Input: the view int_purchase_days (int_purchase_days.sql, known by the date). A deterministic
-- sample of $sample_buckets of 1000 hash buckets of customers keeps the fit bounded.
-- stratum: 'second_purchase' for the wait after the first purchase day, 'repeat' after
-- later ones. gap_days: days to the next purchase day, or to the as-of date (event false).

with

purchase_days as (

    select * from int_purchase_days
    where hash(customer_id) % 1000 < $sample_buckets

),

sequenced as (

    select
        customer_id,
        activity_date,
        row_number() over (partition by customer_id order by activity_date) as purchase_number,
        lead(activity_date) over (partition by customer_id order by activity_date)
            as next_purchase_date,

    from purchase_days

),

final as (

    select
        customer_id,
        case when purchase_number = 1 then 'second_purchase' else 'repeat' end as stratum,
        purchase_number,
        coalesce(next_purchase_date, $as_of_date::date) - activity_date as gap_days,
        next_purchase_date is not null as event,

    from sequenced

)

select * from final
order by customer_id, purchase_number
