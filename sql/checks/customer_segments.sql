-- Data checks of one customer_segments partition (the view customer_segments): each row
-- names a check and how many rows fail it. The step fails unless every count is zero.

with

customer_segments as (

    select * from customer_segments

),

counts as (

    select
        count(*) - count(distinct customer_id) as customer_id_not_unique,
        count(*) filter (where customer_id is null) as customer_id_null,
        count(*) filter (
            where r_score not between 1 and 5
                or f_score not between 1 and 5
                or m_score not between 1 and 5
                or r_score is null or f_score is null or m_score is null
        ) as score_outside_1_to_5,
        count(*) filter (where rfm_cell <> concat(r_score, f_score, m_score))
            as rfm_cell_not_its_scores,
        count(*) filter (
            where segment is null or segment not in (
                'Champions', 'Loyal', 'Potential Loyalist', 'New Customers', 'Promising',
                'Need Attention', 'About To Sleep', 'At Risk', 'Cannot Lose Them',
                'Hibernating', 'Lost'
            )
        ) as segment_not_accepted,
        count(*) filter (where rfm_type is null) as rfm_type_null,
        count(*) filter (where cluster_id is null or cluster_name is null) as cluster_null,
        count(*) filter (where recency_days < 0 or recency_days is null) as recency_negative,
        count(*) filter (where frequency < 0 or frequency is null) as frequency_negative,
        count(*) filter (where recency_days > tenure_days) as recency_above_tenure,
        count(*) filter (where weighted_score is null or isnan(weighted_score))
            as weighted_score_missing,

    from customer_segments

)

unpivot counts on columns(*) into name check_name value failing_rows
