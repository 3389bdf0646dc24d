-- The day's accepted order lines: the lake's order_lines partition for one export_date.
-- Grain: one row per order line; key (order_id, line_id) unique across the lookback.
-- Invariants: order_id, line_id, ordered_at, product_id, quantity, amount, currency not
-- null; quantity <> 0; line_kind in (sale, return, cancellation); returns are negative;
-- currency is the reporting currency (source.currency) on every line: a line sent in
-- another accepted currency is converted, its own figures kept in source_currency and
-- source_amount. The is_* flags mark accepted lines a reader may want to look at.
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
        source_currency,
        source_amount,
        exchange_rate,
        is_amount_derived,
        is_amount_inconsistent,
        is_nonexistent_local_time,
        is_ambiguous_local_time,

    from classified_lines
    where disposition = 'accepted'

)

select * from final
order by ordered_at, order_id, line_id
