-- Segments and clusters at a glance: the lake's segment_summary table, one partition per
-- as_of_date. Grain: one row per (dimension, group_id); dimension is 'all' (every scored
-- customer), 'segment' (the 11 named segments) or 'cluster' (the model's clusters).
-- Input: the view customer_segments (one date).
-- pareto_share: the share of the group's positive net spend that its top
-- $pareto_top_share of customers by monetary value bring (ties broken by customer_id),
-- the documents' 20/80 rule. Customers whose returns outweigh their purchases count
-- as zero in it, so that the share stays between 0 and 1.

with

customer_segments as (

    select * from customer_segments

),

memberships as (

    select 'all' as dimension, 'all' as group_id, 'all customers' as group_name, *
    from customer_segments

    union all

    select 'segment', segment, segment, *
    from customer_segments

    union all

    select 'cluster', cluster_id::varchar, cluster_name, *
    from customer_segments

),

ranked as (

    select
        *,
        row_number() over (
            partition by dimension, group_id order by monetary desc, customer_id
        ) as monetary_rank,
        count(*) over (partition by dimension, group_id) as group_customers,

    from memberships

),

groups as (

    select
        dimension,
        group_id,
        any_value(group_name) as group_name,
        count(*) as customers,
        sum(monetary) as revenue,
        sum(greatest(monetary, 0)) as positive_revenue,
        coalesce(sum(greatest(monetary, 0)) filter (
            where monetary_rank <= ceil($pareto_top_share * group_customers)
        ), 0) as top_revenue,
        avg(recency_days) as mean_recency_days,
        avg(frequency) as mean_frequency,
        avg(monetary) as mean_monetary,
        avg(weighted_score::decimal(18, 6)) as mean_weighted_score,

    from ranked
    group by dimension, group_id

),

totals as (

    select customers as all_customers, revenue as all_revenue
    from groups
    where dimension = 'all'

),

final as (

    select
        groups.dimension,
        groups.group_id,
        groups.group_name,
        groups.customers,
        round(groups.customers / totals.all_customers, 6) as customer_share,
        groups.revenue::decimal(18, 2) as revenue,
        round(groups.revenue / nullif(totals.all_revenue, 0), 6)::double as revenue_share,
        round(groups.mean_recency_days, 2)::double as mean_recency_days,
        round(groups.mean_frequency, 3)::double as mean_frequency,
        round(groups.mean_monetary, 2)::double as mean_monetary,
        round(groups.mean_weighted_score, 6)::double as mean_weighted_score,
        round(groups.top_revenue / nullif(groups.positive_revenue, 0), 6)::double as pareto_share,

    from groups
    cross join totals

)

select * from final
order by dimension, group_id
