-- What the P(alive) model (MBG/NBD, pipeline/lifecycle/btyd.py) is fitted on: customers
-- condensed by (frequency, recency, T) in days, as of $as_of_date. One row per distinct
-- triple, with the number of customers sharing it.
-- The scoring window is the observation period: a customer whose first purchase is in
-- it is observed from that purchase (frequency = purchase days after the first); an
-- older one from the window's start, every purchase in it being a repeat. The same
-- measures feed the p_alive column of customer_lifecycle.
-- Input: the view customer_segments (as of the date).

with

segments as (

    select * from customer_segments
    where last_purchase_date is not null

),

observed as (

    select
        first_purchase_date > $as_of_date::date - $window_days::integer as is_young,
        frequency,
        last_purchase_date,
        first_purchase_date,
        tenure_days,

    from segments

),

final as (

    select
        case when is_young then frequency - 1 else frequency end as frequency,
        case
            when is_young then last_purchase_date - first_purchase_date
            when frequency = 0 then 0
            else last_purchase_date - ($as_of_date::date - $window_days::integer)
        end as recency,
        least(tenure_days, $window_days::integer) as T,
        count(*) as customers,

    from observed
    group by all

)

select * from final
order by frequency, recency, T
