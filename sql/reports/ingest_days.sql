-- What landed per export date: files, rows in, and where they went.
-- Grain: one row per export_date with a ledger partition in [$start_date, $end_date].

with

ingest_ledger as (

    select * from read_parquet($ledger_files, hive_partitioning = true)

),

final as (

    select
        export_date,
        count(source_file) as files,
        coalesce(sum(rows_in), 0) as rows_in,
        coalesce(sum(rows_accepted), 0) as rows_accepted,
        coalesce(sum(rows_quarantined), 0) as rows_quarantined,
        coalesce(sum(rows_duplicate), 0) as rows_duplicate,

    from ingest_ledger
    where export_date between $start_date and $end_date
    group by export_date

)

select * from final
order by export_date
