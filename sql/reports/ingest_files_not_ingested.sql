-- The files of the file ledger that were not ingested: rejected (with the error) or
-- skipped (in transfer, or read but the date failed).
-- Grain: one row per (export_date, source_file) whose outcome is not 'ingested'.
--
-- Parameters:
--   $file_ledger_files        ingest_files partitions to read

with

ingest_files as (

    select * from read_parquet($file_ledger_files, hive_partitioning = true)

),

final as (

    select
        export_date,
        source_file,
        file_kind,
        outcome,
        outcome_reason,
        error,

    from ingest_files
    where outcome <> 'ingested'

)

select * from final
order by export_date, source_file
