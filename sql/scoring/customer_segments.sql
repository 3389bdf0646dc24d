-- Every customer's RFM profile, scores, type, named segment and cluster as of a date:
-- the lake's customer_segments table, one partition per as_of_date.
-- Grain: one row per customer with at least one purchase day up to the date (guests
-- and customers whose only lines are returns are not scored). Key: customer_id.
-- Input: the view customer_features (as of the date, in customer_id order). Bound:
--   the population's figures (rfm_population.sql): customers, sums, log means and
--     standard deviations, and the quintile thresholds of R, F and M;
--   the seeds as lists: $segment_by_cell (125 segments, cell "rfm" at position
--     (r-1)*25 + (f-1)*5 + m) and $pattern_by_type, $type_by_type (8 types, position
--     1 + 4*(R below mean) + 2*(F below) + (M below));
--   the cluster model: scaler, centroids (standardized), cluster ids and names;
--   the AHP weights.
-- Each customer is read once and never joined or sorted, so rows keep customer_id order
-- and the step costs one scan of the state (the tests compare bytes across re-runs).

with

customer_features as (

    select * from customer_features

),

-- The log features once as doubles, and in the cluster model's standardized space.
features as (

    select
        *,
        log_recency::double as x_recency,
        log_frequency::double as x_frequency,
        log_monetary::double as x_monetary,
        (log_recency::double - $scaler_mean[1]) / $scaler_scale[1] as s_recency,
        (log_frequency::double - $scaler_mean[2]) / $scaler_scale[2] as s_frequency,
        (log_monetary::double - $scaler_mean[3]) / $scaler_scale[3] as s_monetary,

    from customer_features

),

scored as (

    select
        *,
        -- Quintile scores, 5 best: 1 + how many of the four thresholds the value beats.
        1 + (recency_days < $recency_thresholds[1])::integer
            + (recency_days < $recency_thresholds[2])::integer
            + (recency_days < $recency_thresholds[3])::integer
            + (recency_days < $recency_thresholds[4])::integer as r_score,
        1 + (frequency > $frequency_thresholds[1])::integer
            + (frequency > $frequency_thresholds[2])::integer
            + (frequency > $frequency_thresholds[3])::integer
            + (frequency > $frequency_thresholds[4])::integer as f_score,
        1 + (monetary > $monetary_thresholds[1])::integer
            + (monetary > $monetary_thresholds[2])::integer
            + (monetary > $monetary_thresholds[3])::integer
            + (monetary > $monetary_thresholds[4])::integer as m_score,
        -- Standardized (z) log values; recency negated so that higher is better on all.
        coalesce(-(x_recency - $mean_log_recency) / nullif($sd_log_recency, 0), 0)
            as z_recency,
        coalesce((x_frequency - $mean_log_frequency) / nullif($sd_log_frequency, 0), 0)
            as z_frequency,
        coalesce((x_monetary - $mean_log_monetary) / nullif($sd_log_monetary, 0), 0)
            as z_monetary,
        -- Above the mean (the arrows of the 8 RFM types): R up means more recent.
        recency_days * $customers < $sum_recency as r_up,
        frequency * $customers > $sum_frequency as f_up,
        monetary * $customers > $sum_monetary as m_up,
        -- Squared distances to the cluster model's centroids, in its standardized space.
        list_transform(
            $centroids,
            lambda centroid:
                (s_recency - centroid[1]) * (s_recency - centroid[1])
                + (s_frequency - centroid[2]) * (s_frequency - centroid[2])
                + (s_monetary - centroid[3]) * (s_monetary - centroid[3])
        ) as centroid_distances,

    from features

),

labelled as (

    select
        *,
        (r_score - 1) * 25 + (f_score - 1) * 5 + m_score as cell_position,
        1 + 4 * (not r_up)::integer + 2 * (not f_up)::integer + (not m_up)::integer
            as type_position,
        list_position(centroid_distances, list_min(centroid_distances)) as nearest,

    from scored

),

final as (

    select
        customer_id,
        first_purchase_date,
        last_purchase_date,
        recency_days,
        frequency,
        monetary,
        tenure_days,
        case
            when frequency > 0 then round(monetary / frequency, 2)::decimal(18, 2)
        end as average_order_value,
        returned_amount,
        lifetime_net_spend,
        r_score::tinyint as r_score,
        f_score::tinyint as f_score,
        m_score::tinyint as m_score,
        concat(r_score, f_score, m_score) as rfm_cell,
        round(
            $weight_recency * z_recency
            + $weight_frequency * z_frequency
            + $weight_monetary * z_monetary,
            6
        )::double + 0.0 as weighted_score,  -- + 0.0 turns -0.0 into 0.0
        $pattern_by_type[type_position]::varchar as rfm_pattern,
        $type_by_type[type_position]::varchar as rfm_type,
        $segment_by_cell[cell_position]::varchar as segment,
        $cluster_ids[nearest]::integer as cluster_id,
        $cluster_names[nearest]::varchar as cluster_name,
        $model_version::date as model_version,

    from labelled

)

select * from final
