-- The day's quarantined input rows, as they arrived (text), with a machine-readable
-- reason. Grain: one row per quarantined input row; key (source_file, source_row).

with

classified_lines as (

    select * from int_sales_export_lines_classified

),

raw_export_lines as (

    select * from raw_export_lines

),

final as (

    select
        classified_lines.source_file,
        classified_lines.source_row,
        classified_lines.quarantine_reason,
        raw_export_lines.order_id,
        raw_export_lines.line_id,
        raw_export_lines.customer_id,
        raw_export_lines.ordered_at,
        raw_export_lines.product_id,
        raw_export_lines.quantity,
        raw_export_lines.unit_price,
        raw_export_lines.amount,
        raw_export_lines.currency,
        raw_export_lines.status,
        -- For a row that did not split into the header's fields (wrong_field_count):
        -- its line number in the file (1 = the first line) and its text.
        raw_export_lines.source_line,
        raw_export_lines.raw_text,

    from classified_lines
    inner join raw_export_lines
        on classified_lines.source_file = raw_export_lines.source_file
        and classified_lines.source_row = raw_export_lines.source_row
    where classified_lines.disposition = 'quarantined'

)

select * from final
order by source_file, source_row
