-- The day's accepted order lines: the lake's order_lines partition for one export_date.
-- Grain: one row per order line; key (order_id, line_id) unique across the lookback.
-- Invariants: order_id, line_id, ordered_at, product_id, quantity, amount, currency not
-- null; quantity <> 0; line_kind in (sale, return, cancellation); returns are negative.
-- Rows are sorted so that the same input always gives the same bytes.

with

classified_lines as (

    select * from int_sales_export_lines_classified

),

final as (

    select
        order_id,
        line_id,
        customer_id,
        ordered_at,
        order_date,
        product_id,
        quantity,
        unit_price,
        amount,
        currency,
        line_kind,
        source_file,
        source_row,

    from classified_lines
    where disposition = 'accepted'

)

select * from final
order by ordered_at, order_id, line_id
