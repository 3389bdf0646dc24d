-- One row per export file of the day: what came in and where every row went.
-- Invariant: rows_in = rows_accepted + rows_quarantined + rows_duplicate.
-- A day with no file at all has an empty partition: the day is recorded as empty.

with

export_files as (

    select * from export_files

),

classified_lines as (

    select * from int_sales_export_lines_classified

),

rows_per_file as (

    select
        source_file,
        count(*) as rows_in,
        count(*) filter (where disposition = 'accepted') as rows_accepted,
        count(*) filter (where disposition = 'quarantined') as rows_quarantined,
        count(*) filter (where disposition = 'duplicate') as rows_duplicate,

    from classified_lines
    group by source_file

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
