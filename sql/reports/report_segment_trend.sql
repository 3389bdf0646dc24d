-- Customers and revenue per segment and per cluster on the report's trend dates (the
-- as-of date, the previous run, and weekly before it).
-- Grain: one row per (as_of_date, dimension, group_id), dimension 'segment' or 'cluster'.
--
-- Parameters:
--   $segment_summary_files    segment_summary partitions of the trend dates

with

segment_summary as (

    select * from read_parquet($segment_summary_files, hive_partitioning = true)

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

    from segment_summary
    where dimension in ('segment', 'cluster')

)

select * from final
order by as_of_date, dimension, try_cast(group_id as integer), group_id
