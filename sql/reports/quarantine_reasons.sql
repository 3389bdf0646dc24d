-- Quarantined rows per reason over [$start_date, $end_date].
-- Grain: one row per quarantine_reason.

with

quarantined_order_lines as (

    select * from read_parquet($quarantine_files, hive_partitioning = true)

),

final as (

    select
        quarantine_reason,
        count(*) as rows_quarantined,
        count(distinct export_date) as days,
        min(export_date) as first_export_date,

    from quarantined_order_lines
    where export_date between $start_date and $end_date
    group by quarantine_reason

)

select * from final
order by rows_quarantined desc, quarantine_reason
