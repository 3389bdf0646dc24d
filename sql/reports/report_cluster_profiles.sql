-- The clusters of the model in force on the as-of date: the model's profile of each
-- (centroid, RFM type) and who is in it that day (customers, revenue, means).
-- Grain: one row per cluster of the model.
--
-- Parameters:
--   $profiles_file            the cluster_profiles partition of the model in force
--   $segment_summary_file     the date's segment_summary partition

with

cluster_profiles as (

    select * from read_parquet($profiles_file)

),

clusters_today as (

    select * from read_parquet($segment_summary_file)
    where dimension = 'cluster'

),

final as (

    select
        cluster_profiles.cluster_id,
        cluster_profiles.cluster_name,
        cluster_profiles.value_rank,
        cluster_profiles.rfm_pattern,
        cluster_profiles.rfm_type,
        cluster_profiles.centroid_recency_days,
        cluster_profiles.centroid_frequency,
        cluster_profiles.centroid_monetary,
        cluster_profiles.k,
        cluster_profiles.silhouette,
        coalesce(clusters_today.customers, 0) as customers,
        coalesce(clusters_today.customer_share, 0) as customer_share,
        coalesce(clusters_today.revenue_share, 0) as revenue_share,
        clusters_today.mean_recency_days,
        clusters_today.mean_frequency,
        clusters_today.mean_monetary,
        clusters_today.mean_weighted_score,

    from cluster_profiles
    left join clusters_today
        on clusters_today.group_id = cluster_profiles.cluster_id::varchar

)

select * from final
order by value_rank, cluster_id
