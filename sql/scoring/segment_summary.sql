-- Segments and clusters at a glance: the lake's segment_summary table, one partition per
-- as_of_date. Grain: one row per (dimension, group_id); dimension is 'all' (every scored
-- customer), 'segment' (the 11 named segments) or 'cluster' (the model's clusters). No
-- row at all while nobody has purchased.
-- Input: the view customer_segments (one date).
-- pareto_share: the share of the group's positive net spend that its top
-- $pareto_top_share of customers by monetary value bring, the documents' 20/80 rule.
-- Customers whose returns outweigh their purchases count as zero in it, so that the
-- share stays between 0 and 1.

with

customer_segments as (

    select * from customer_segments

),

customer_figures as (

    select
        segment,
        cluster_id,
        cluster_name,
        recency_days,
        frequency,
        monetary,
        greatest(monetary, 0) as positive_monetary,
        weighted_score,

    from customer_segments

),

groups as (

    select
        case
            when grouping(segment) = 0 then 'segment'
            when grouping(cluster_id) = 0 then 'cluster'
            else 'all'
        end as dimension,
        coalesce(segment, cluster_id::varchar, 'all') as group_id,
        case
            when grouping(segment) = 0 then segment
            when grouping(cluster_id) = 0 then any_value(cluster_name)
            else 'all customers'
        end as group_name,
        count(*) as customers,
        sum(monetary) as revenue,
        sum(positive_monetary) as positive_revenue,
        avg(recency_days) as mean_recency_days,
        avg(frequency) as mean_frequency,
        avg(monetary) as mean_monetary,
        avg(weighted_score::decimal(18, 6)) as mean_weighted_score,

    from customer_figures
    group by grouping sets ((), (segment), (cluster_id))

),

memberships as (

    select 'all' as dimension, 'all' as group_id, positive_monetary
    from customer_figures

    union all

    select 'segment', segment, positive_monetary
    from customer_figures

    union all

    select 'cluster', cluster_id::varchar, positive_monetary
    from customer_figures

),

-- Only customers who can be among a group's top spenders are ranked: those at or above
-- the group's (1 - top share - 10%) quantile (a constant, $pareto_cutoff_quantile), which
-- leaves at least the top share plus a margin of 10% of the group, whatever the
-- quantile's rounding. Small groups are ranked whole.
cutoffs as (

    select
        memberships.dimension,
        memberships.group_id,
        quantile_disc(memberships.positive_monetary, $pareto_cutoff_quantile) as cutoff,

    from memberships
    group by memberships.dimension, memberships.group_id

),

-- Candidates by spend within their group. Ties may come in any order: tied customers
-- spend the same, so the top customers' total does not depend on it.
ranked as (

    select
        memberships.dimension,
        memberships.group_id,
        memberships.positive_monetary,
        row_number() over (
            partition by memberships.dimension, memberships.group_id
            order by memberships.positive_monetary desc
        ) as spend_rank,

    from memberships
    inner join cutoffs
        on memberships.dimension = cutoffs.dimension
        and memberships.group_id = cutoffs.group_id
    inner join groups
        on memberships.dimension = groups.dimension
        and memberships.group_id = groups.group_id
    where memberships.positive_monetary >= cutoffs.cutoff
        or groups.customers < 100

),

top_spend as (

    select
        ranked.dimension,
        ranked.group_id,
        sum(ranked.positive_monetary) filter (
            where ranked.spend_rank <= ceil($pareto_top_share * groups.customers)
        ) as top_revenue,

    from ranked
    inner join groups
        on ranked.dimension = groups.dimension
        and ranked.group_id = groups.group_id
    group by ranked.dimension, ranked.group_id

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
        round(top_spend.top_revenue / nullif(groups.positive_revenue, 0), 6)::double
            as pareto_share,

    from groups
    cross join totals
    inner join top_spend
        on groups.dimension = top_spend.dimension
        and groups.group_id = top_spend.group_id

)

select * from final
-- Cluster ids in number order (cluster 12 after cluster 3), segment names by name.
order by dimension, try_cast(group_id as integer), group_id
