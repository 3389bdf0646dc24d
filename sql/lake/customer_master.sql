-- The day's customer master: the lake's customer_master partition for one export_date.
-- Grain: one row per customer; key customer_id, unique within the date.
-- Invariants: customer_id not null; signup_date null only when the source gave none, and
-- never after export_date. Rows are sorted so that the same input gives the same bytes.

with

classified_rows as (

    select * from int_customer_master_rows_classified

),

final as (

    select
        customer_id,
        signup_date,
        email,
        phone,
        city,
        source_file,
        source_row,

    from classified_rows
    where disposition = 'loaded'

)

select * from final
order by customer_id
