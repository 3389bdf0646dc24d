-- Moves between lifecycle stages summed over the report's flow window, and on the day.
-- Grain: one row per (from_stage, to_stage) pair that moved someone in the window.
--
-- Parameters:
--   $stage_flows_files        stage_flows partitions of the window's dates
--   $as_of_date               the report's date (the window's last)

with

stage_flows as (

    select * from read_parquet($stage_flows_files, hive_partitioning = true)

),

final as (

    select
        from_stage,
        to_stage,
        sum(customers) as customers,
        coalesce(sum(customers) filter (where as_of_date = $as_of_date::date), 0)
            as customers_today,

    from stage_flows
    group by from_stage, to_stage

)

select * from final
order by customers desc, from_stage, to_stage
