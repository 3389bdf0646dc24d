-- Each segment's and cluster's customers and revenue share as of the date, and how they
-- changed since the previous run and since the start of the trend.
-- Grain: one row per (dimension, group_id) present on any of the three dates.
--
-- Parameters:
--   $segment_summary_files    segment_summary partitions (at least the three dates)
--   $as_of_date               the report's date
--   $previous_date            the previous run's date (null: none)
--   $trend_start_date         the first date of the trend (null: none)

with

segment_summary as (

    select * from read_parquet($segment_summary_files, hive_partitioning = true)
    where dimension in ('segment', 'cluster')

),

groups as (

    select distinct dimension, group_id
    from segment_summary
    where as_of_date in ($as_of_date::date, $previous_date::date, $trend_start_date::date)

),

on_date as (

    select * from segment_summary where as_of_date = $as_of_date::date

),

on_previous as (

    select * from segment_summary where as_of_date = $previous_date::date

),

on_trend_start as (

    select * from segment_summary where as_of_date = $trend_start_date::date

),

final as (

    select
        groups.dimension,
        groups.group_id,
        coalesce(on_date.group_name, on_previous.group_name, on_trend_start.group_name)
            as group_name,
        coalesce(on_date.customers, 0) as customers,
        coalesce(on_date.customer_share, 0) as customer_share,
        coalesce(on_date.revenue, 0) as revenue,
        coalesce(on_date.revenue_share, 0) as revenue_share,
        on_date.mean_weighted_score,
        case when $previous_date::date is not null
            then coalesce(on_date.customers, 0) - coalesce(on_previous.customers, 0)
        end as customers_change_since_previous,
        case when $trend_start_date::date is not null
            then coalesce(on_date.customers, 0) - coalesce(on_trend_start.customers, 0)
        end as customers_change_over_trend,
        case when $trend_start_date::date is not null
            then coalesce(on_date.revenue_share, 0) - coalesce(on_trend_start.revenue_share, 0)
        end as revenue_share_change_over_trend,

    from groups
    left join on_date
        on groups.dimension = on_date.dimension and groups.group_id = on_date.group_id
    left join on_previous
        on groups.dimension = on_previous.dimension and groups.group_id = on_previous.group_id
    left join on_trend_start
        on groups.dimension = on_trend_start.dimension
        and groups.group_id = on_trend_start.group_id

)

select * from final
order by dimension, try_cast(group_id as integer), group_id
