-- What one date's ingest did with each sales export file, from its ledger partition.
-- Invariant: rows_in = rows_accepted + rows_quarantined + rows_duplicate.
-- Grain: one row per export file of the date.
--
-- Parameters:
--   $ledger_file              the date's ingest_ledger partition

with

ingest_ledger as (

    select * from read_parquet($ledger_file)

),

final as (

    select
        source_file,
        file_format,
        encoding,
        file_bytes,
        rows_in,
        rows_accepted,
        rows_quarantined,
        rows_duplicate,
        rows_in = rows_accepted + rows_quarantined + rows_duplicate as is_balanced,

    from ingest_ledger

)

select * from final
order by source_file
