-- The rhythm of similar customers, for customers with too few gaps of their own: the
-- $population_gap_quantile quantile of repeat buyers' mean gaps between purchase days.
-- One row. Input: the view customer_segments (as of $as_of_date).

with

repeat_buyers as (

    select
        customer_id,
        -- Purchases all inside the window: gaps between the first and the last; older
        -- customers: the window's purchases spread from the window's start.
        case
            when first_purchase_date > $as_of_date::date - $window_days::integer
                then frequency - 1
            else frequency
        end as observed_gaps,
        case
            when first_purchase_date > $as_of_date::date - $window_days::integer
                then last_purchase_date - first_purchase_date
            else last_purchase_date - ($as_of_date::date - $window_days::integer)
        end as observed_span_days,

    from customer_segments
    where last_purchase_date is not null

),

final as (

    select
        count(*) filter (where observed_gaps > 0) as repeat_buyers,
        coalesce(
            quantile_cont(observed_span_days / observed_gaps, $population_gap_quantile)
                filter (where observed_gaps > 0),
            $fallback_gap_days
        )::double as population_gap_days,

    from repeat_buyers

)

select * from final
