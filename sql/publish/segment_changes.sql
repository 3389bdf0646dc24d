-- Published segment_changes: the customers whose RFM segment or cluster on $as_of_date
-- differs from the day before's, new customers and those no longer scored included.
-- The first scored date has no day before: nothing changed. Grain: (as_of_date, customer_key).
-- Inputs: the views lake_customer_segments (the date) and lake_previous_customer_segments
-- (the day before; empty on the first date).

with

today as (

    select * from lake_customer_segments

),

yesterday as (

    select * from lake_previous_customer_segments

),

compared as (

    select
        coalesce(today.customer_id, yesterday.customer_id) as customer_id,
        yesterday.segment as from_segment,
        today.segment as to_segment,
        yesterday.cluster_name as from_cluster_name,
        today.cluster_name as to_cluster_name,
        yesterday.rfm_cell as from_rfm_cell,
        today.rfm_cell as to_rfm_cell,
        yesterday.monetary as from_monetary,
        today.monetary as to_monetary,
        case
            when yesterday.customer_id is null then 'new'
            when today.customer_id is null then 'dropped'
            when yesterday.segment is distinct from today.segment then 'segment'
            else 'cluster'
        end as change,

    from today
    full outer join yesterday using (customer_id)
    where $has_previous
        and (
            yesterday.customer_id is null
            or today.customer_id is null
            or yesterday.segment is distinct from today.segment
            or yesterday.cluster_name is distinct from today.cluster_name
        )

),

final as (

    select
        $as_of_date::date as as_of_date,
        customer_key(customer_id) as customer_key,
        change,
        from_segment,
        to_segment,
        from_cluster_name,
        to_cluster_name,
        from_rfm_cell,
        to_rfm_cell,
        from_monetary,
        to_monetary,

    from compared

)

select * from final
order by customer_key
