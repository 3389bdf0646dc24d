-- Published segment_summary: customers and revenue per segment, cluster and RFM type on
-- $as_of_date. Grain: (as_of_date, dimension, group_id).
-- Input: the view lake_segment_summary (the date's lake partition).

with

summary as (

    select * from lake_segment_summary

),

final as (

    select
        as_of_date,
        dimension,
        group_id,
        group_name,
        customers,
        customer_share,
        revenue,
        revenue_share,
        mean_recency_days,
        mean_frequency,
        mean_monetary,
        mean_weighted_score,
        pareto_share,

    from summary

)

select * from final
order by dimension, try_cast(group_id as integer), group_id
