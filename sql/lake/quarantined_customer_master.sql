-- The day's quarantined customer master rows, as they arrived (text), with a
-- machine-readable reason. Grain: one row per quarantined input row; key
-- (source_file, source_row).

with

classified_rows as (

    select * from int_customer_master_rows_classified

),

raw_customer_master_rows as (

    select * from raw_customer_master_rows

),

final as (

    select
        classified_rows.source_file,
        classified_rows.source_row,
        classified_rows.quarantine_reason,
        raw_customer_master_rows.customer_id,
        raw_customer_master_rows.signup_date,
        raw_customer_master_rows.email,
        raw_customer_master_rows.phone,
        raw_customer_master_rows.city,

    from classified_rows
    inner join raw_customer_master_rows
        on classified_rows.source_file = raw_customer_master_rows.source_file
        and classified_rows.source_row = raw_customer_master_rows.source_row
    where classified_rows.disposition = 'quarantined'

)

select * from final
order by source_file, source_row
