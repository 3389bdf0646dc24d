-- The file ledger of one date: one row per path a file pattern matched (sales exports
-- and customer master), with its outcome: ingested, rejected (a machine-readable
-- outcome_reason and the error text) or skipped (in transfer, or the date failed).
-- Grain: one row per source_file; key source_file.
-- Invariant: for an ingested file, rows_in = rows_accepted + rows_quarantined +
-- rows_duplicate; the row counts are null for a file not ingested.
-- Written by every attempt at the date, a failed one included.

with

file_outcomes as (

    select * from file_outcomes

),

row_counts as (

    select * from int_ingest_file_row_counts

),

final as (

    select
        file_outcomes.source_file,
        file_outcomes.file_kind,
        file_outcomes.outcome,
        file_outcomes.outcome_reason,
        file_outcomes.error,
        file_outcomes.file_sha256,
        file_outcomes.file_bytes,
        file_outcomes.file_format,
        file_outcomes.encoding,
        file_outcomes.delimiter,
        case when file_outcomes.outcome = 'ingested' then coalesce(row_counts.rows_in, 0) end
            as rows_in,
        case when file_outcomes.outcome = 'ingested' then coalesce(row_counts.rows_accepted, 0) end
            as rows_accepted,
        case
            when file_outcomes.outcome = 'ingested' then coalesce(row_counts.rows_quarantined, 0)
        end as rows_quarantined,
        case when file_outcomes.outcome = 'ingested' then coalesce(row_counts.rows_duplicate, 0) end
            as rows_duplicate,

    from file_outcomes
    left join row_counts
        on file_outcomes.file_kind = row_counts.file_kind
        and file_outcomes.source_file = row_counts.source_file

)

select * from final
order by source_file
