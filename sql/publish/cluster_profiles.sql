-- Published cluster_profiles: the K-means model that assigned $as_of_date's clusters,
-- one row per cluster. Grain: cluster_id.
-- Input: the view lake_cluster_profiles (the partition of the model the date used).

with

profiles as (

    select * from lake_cluster_profiles

),

final as (

    select
        $as_of_date::date as as_of_date,
        model_version,
        cluster_id,
        cluster_name,
        value_rank,
        rfm_pattern,
        rfm_type,
        weighted_score,
        sample_customers,
        population,
        centroid_recency_days,
        centroid_frequency,
        centroid_monetary,
        mean_recency_days,
        mean_frequency,
        mean_monetary,
        k,
        silhouette,
        inertia,
        sample_size,
        previous_version,

    from profiles

)

select * from final
order by cluster_id
