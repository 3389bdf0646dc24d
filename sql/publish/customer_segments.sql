-- Published customer_segments: every scored customer on $as_of_date, keyed by the
-- pseudonymous customer_key (a keyed hash; see docs/bi.md). Grain: customer_key.
-- Input: the view lake_customer_segments (the date's lake partition).

with

segments as (

    select * from lake_customer_segments

),

final as (

    select
        customer_key(customer_id) as customer_key,
        as_of_date,
        segment,
        rfm_cell,
        r_score,
        f_score,
        m_score,
        weighted_score,
        rfm_pattern,
        rfm_type,
        cluster_id,
        cluster_name,
        model_version,
        recency_days,
        frequency,
        monetary,
        tenure_days,
        average_order_value,
        returned_amount,
        lifetime_net_spend,
        first_purchase_date,
        last_purchase_date,

    from segments

)

select * from final
order by customer_key
