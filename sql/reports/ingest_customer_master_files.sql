-- What one date's ingest did with each customer master file, counted from the
-- partitions just written: rows read from the file, loaded, quarantined.
-- Invariant: rows_in = rows_loaded + rows_quarantined.
-- Grain: one row per master file of the day.
--
-- Parameters:
--   $customer_master_file     the date's customer_master partition
--   $quarantine_file          the date's quarantined_customer_master partition

with

customer_master_files as (

    select * from customer_master_files

),

raw_customer_master_rows as (

    select * from raw_customer_master_rows

),

rows_read as (

    select source_file, count(*) as rows_in,
    from raw_customer_master_rows
    group by source_file

),

rows_loaded as (

    select source_file, count(*) as rows_loaded,
    from read_parquet($customer_master_file)
    group by source_file

),

rows_quarantined as (

    select source_file, count(*) as rows_quarantined,
    from read_parquet($quarantine_file)
    group by source_file

),

final as (

    select
        customer_master_files.source_file,
        customer_master_files.file_sha256,
        customer_master_files.file_bytes,
        customer_master_files.file_format,
        customer_master_files.encoding,
        customer_master_files.delimiter,
        coalesce(rows_read.rows_in, 0) as rows_in,
        coalesce(rows_loaded.rows_loaded, 0) as rows_loaded,
        coalesce(rows_quarantined.rows_quarantined, 0) as rows_quarantined,

    from customer_master_files
    left join rows_read
        on customer_master_files.source_file = rows_read.source_file
    left join rows_loaded
        on customer_master_files.source_file = rows_loaded.source_file
    left join rows_quarantined
        on customer_master_files.source_file = rows_quarantined.source_file

)

select * from final
order by source_file
