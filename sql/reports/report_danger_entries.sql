-- Danger entries (alerts) per staged date of the report's history, and the value at
-- risk they carried, with the mean of the last seven staged dates; a staged date without
-- any alert is a row of zeros.
-- Grain: one row per staged date.
--
-- Parameters:
--   $danger_alerts_files      danger_alerts partitions of the history's dates
--   $staged_dates             the history's staged dates

with

danger_alerts as (

    select * from read_parquet($danger_alerts_files, hive_partitioning = true)

),

staged_dates as (

    select unnest($staged_dates::date[]) as as_of_date

),

per_day as (

    select
        as_of_date,
        count(*) as alerts,
        sum(value_at_risk) as value_at_risk,
    from danger_alerts
    group by as_of_date

),

final as (

    select
        staged_dates.as_of_date,
        coalesce(per_day.alerts, 0) as alerts,
        coalesce(per_day.value_at_risk, 0) as value_at_risk,
        avg(coalesce(per_day.alerts, 0)) over (
            order by staged_dates.as_of_date rows between 6 preceding and current row
        ) as alerts_7_day_mean,

    from staged_dates
    left join per_day
        on staged_dates.as_of_date = per_day.as_of_date

)

select * from final
order by as_of_date
