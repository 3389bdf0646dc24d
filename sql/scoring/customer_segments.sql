-- Every customer's RFM profile, scores, type, named segment and cluster as of a date:
-- the lake's customer_segments table, one partition per as_of_date.
-- Grain: one row per customer with at least one purchase day up to the date (guests
-- and customers whose only lines are returns are not scored). Key: customer_id.
-- Input: the view customer_features (as of the date) and the seeds rfm_segments and
-- rfm_types; the cluster model arrives as bound parameters.
-- Determinism: means and variances are summed as decimals (exact, whatever the thread
-- order), so re-running a date gives the same bytes.

with

segment_map as (

    select * from read_csv($rfm_segments_file, header = true, columns = {
        'r_score': 'integer', 'f_score': 'integer', 'm_score': 'integer',
        'fm_score': 'integer', 'segment': 'varchar'
    })

),

type_map as (

    select * from read_csv($rfm_types_file, header = true, columns = {
        'r_up': 'boolean', 'f_up': 'boolean', 'm_up': 'boolean',
        'rfm_pattern': 'varchar', 'rfm_type': 'varchar'
    })

),

customer_features as (

    select * from customer_features

),

population as (

    select
        count(*) as customers,
        sum(recency_days) as sum_recency,
        sum(frequency) as sum_frequency,
        sum(monetary) as sum_monetary,
        sum(log_recency) / count(*) as mean_log_recency,
        sum(log_frequency) / count(*) as mean_log_frequency,
        sum(log_monetary) / count(*) as mean_log_monetary,
        sqrt(greatest(sum(log_recency * log_recency) / count(*)
            - (sum(log_recency) / count(*)) ^ 2, 0)) as sd_log_recency,
        sqrt(greatest(sum(log_frequency * log_frequency) / count(*)
            - (sum(log_frequency) / count(*)) ^ 2, 0)) as sd_log_frequency,
        sqrt(greatest(sum(log_monetary * log_monetary) / count(*)
            - (sum(log_monetary) / count(*)) ^ 2, 0)) as sd_log_monetary,

    from customer_features

),

scored as (

    select
        customer_features.*,
        -- Quintile score: 1 + the fifth of customers strictly worse. Equal values share
        -- the rank of their first, so they get the same score; 5 is best.
        1 + (5 * (rank() over (order by recency_days desc) - 1)) // population.customers
            as r_score,
        1 + (5 * (rank() over (order by frequency) - 1)) // population.customers
            as f_score,
        1 + (5 * (rank() over (order by monetary) - 1)) // population.customers
            as m_score,
        -- Standardized (z) values; recency is negated so that higher is better on all.
        coalesce(-(log_recency - mean_log_recency) / nullif(sd_log_recency, 0), 0)
            as z_recency,
        coalesce((log_frequency - mean_log_frequency) / nullif(sd_log_frequency, 0), 0)
            as z_frequency,
        coalesce((log_monetary - mean_log_monetary) / nullif(sd_log_monetary, 0), 0)
            as z_monetary,
        -- Above the mean (the arrows of the 8 RFM types): R up means more recent.
        recency_days * population.customers < population.sum_recency as r_up,
        frequency * population.customers > population.sum_frequency as f_up,
        monetary * population.customers > population.sum_monetary as m_up,
        -- The cluster model's standardized features.
        list_transform(
            $centroids,
            lambda centroid:
                ((log_recency - $scaler_mean[1]) / $scaler_scale[1] - centroid[1]) ^ 2
                + ((log_frequency - $scaler_mean[2]) / $scaler_scale[2] - centroid[2]) ^ 2
                + ((log_monetary - $scaler_mean[3]) / $scaler_scale[3] - centroid[3]) ^ 2
        ) as centroid_distances,

    from customer_features
    cross join population

),

final as (

    select
        scored.customer_id,
        scored.first_purchase_date,
        scored.last_purchase_date,
        scored.recency_days,
        scored.frequency,
        scored.monetary,
        scored.tenure_days,
        case
            when scored.frequency > 0
                then round(scored.monetary / scored.frequency, 2)::decimal(18, 2)
        end as average_order_value,
        scored.returned_amount,
        scored.lifetime_purchase_days,
        scored.lifetime_net_spend,
        scored.r_score::tinyint as r_score,
        scored.f_score::tinyint as f_score,
        scored.m_score::tinyint as m_score,
        concat(scored.r_score, scored.f_score, scored.m_score) as rfm_cell,
        round(
            $weight_recency * scored.z_recency
            + $weight_frequency * scored.z_frequency
            + $weight_monetary * scored.z_monetary,
            6
        )::double + 0.0 as weighted_score,  -- + 0.0 turns -0.0 into 0.0
        type_map.rfm_pattern,
        type_map.rfm_type,
        segment_map.segment,
        $cluster_ids[nearest.position]::integer as cluster_id,
        $cluster_names[nearest.position]::varchar as cluster_name,
        $model_version::date as model_version,

    from scored
    cross join lateral (
        select list_position(
            scored.centroid_distances, list_min(scored.centroid_distances)
        ) as position
    ) as nearest
    inner join segment_map
        on scored.r_score = segment_map.r_score
        and scored.f_score = segment_map.f_score
        and scored.m_score = segment_map.m_score
    inner join type_map
        on scored.r_up = type_map.r_up
        and scored.f_up = type_map.f_up
        and scored.m_up = type_map.m_up

)

select * from final
order by customer_id
