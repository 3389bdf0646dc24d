-- Customers per lifecycle stage on each staged date of the report's history.
-- Grain: one row per (as_of_date, stage), the seven stages of every date.
--
-- Parameters:
--   $stage_counts_files       stage_counts partitions of the history's dates

with

stage_counts as (

    select * from read_parquet($stage_counts_files, hive_partitioning = true)

),

final as (

    select
        as_of_date,
        stage_order,
        stage,
        customers,
        entered,
        exited,

    from stage_counts

)

select * from final
order by as_of_date, stage_order
