-- Rows of each file read whole, and where they went: the sales exports' from the
-- classified lines, the customer master's from the classified master rows (loaded rows
-- count as accepted; a master has no duplicates: a repeated customer is quarantined).
-- Grain: one row per (file_kind, source_file) with at least one row.

with

classified_lines as (

    select * from int_sales_export_lines_classified

),

classified_master_rows as (

    select * from int_customer_master_rows_classified

),

sales_counts as (

    select
        'sales' as file_kind,
        source_file,
        count(*) as rows_in,
        count(*) filter (where disposition = 'accepted') as rows_accepted,
        count(*) filter (where disposition = 'quarantined') as rows_quarantined,
        count(*) filter (where disposition = 'duplicate') as rows_duplicate,

    from classified_lines
    group by source_file

),

master_counts as (

    select
        'customer_master' as file_kind,
        source_file,
        count(*) as rows_in,
        count(*) filter (where disposition = 'loaded') as rows_accepted,
        count(*) filter (where disposition = 'quarantined') as rows_quarantined,
        0 as rows_duplicate,

    from classified_master_rows
    group by source_file

),

final as (

    select * from sales_counts
    union all
    select * from master_counts

)

select * from final
