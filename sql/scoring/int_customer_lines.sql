-- The order lines that count for customers: what customer_days and the full recompute
-- of the customer state both aggregate, so that the two agree by construction.
-- Grain: one row per order line (sale or return) of a known customer: (export_date,
-- order_id, line_id).
-- Input: the view order_lines (lake order_lines files read with their export_date).
-- Guests (no customer_id) and cancellations are left out; returns count on the day they
-- were recorded, as negative amounts.
-- activity_date is the line's local order_date, clamped into
-- [export_date - $late_span_days, export_date]: a till clock running a little fast cannot
-- put a purchase in the future, and every day's rows stay within the span that
-- incremental scoring looks back over.

with

order_lines as (

    select * from order_lines

),

final as (

    select
        export_date,
        customer_id,
        greatest(
            least(order_date, export_date),
            export_date - $late_span_days::integer
        ) as activity_date,
        order_id,
        line_id,
        line_kind = 'sale' as is_sale,
        amount,

    from order_lines
    where customer_id is not null
        and line_kind in ('sale', 'return')

)

select * from final
