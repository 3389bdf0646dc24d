-- One row per export file of the day: what came in and where every row went.
-- Invariant: rows_in = rows_accepted + rows_quarantined + rows_duplicate.
-- A day with no file at all has an empty partition: the day is recorded as empty.

with

export_files as (

    select * from export_files

),

-- Where each sales file's rows went, counted once for the ledger and the file outcomes.
rows_per_file as (

    select
        source_file,
        rows_in,
        rows_accepted,
        rows_quarantined,
        rows_duplicate,

    from int_ingest_file_row_counts
    where file_kind = 'sales'

),

final as (

    select
        export_files.source_file,
        export_files.file_sha256,
        export_files.file_bytes,
        export_files.file_format,
        export_files.encoding,
        export_files.delimiter,
        coalesce(rows_per_file.rows_in, 0) as rows_in,
        coalesce(rows_per_file.rows_accepted, 0) as rows_accepted,
        coalesce(rows_per_file.rows_quarantined, 0) as rows_quarantined,
        coalesce(rows_per_file.rows_duplicate, 0) as rows_duplicate,

    from export_files
    left join rows_per_file
        on export_files.source_file = rows_per_file.source_file

)

select * from final
order by source_file
