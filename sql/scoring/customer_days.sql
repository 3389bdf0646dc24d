-- Customer-day aggregates: what each customer bought and returned per local day, per
-- export date. The lake's customer_days table, one partition per export_date; scoring
-- reads it instead of order lines, so its work grows with customers x active days.
-- Grain: one row per (export_date, customer_id, activity_date).
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

customer_lines as (

    select
        export_date,
        customer_id,
        greatest(
            least(order_date, export_date),
            export_date - $late_span_days::integer
        ) as activity_date,
        order_id,
        line_kind,
        amount,

    from order_lines
    where customer_id is not null
        and line_kind in ('sale', 'return')

),

final as (

    select
        export_date,
        customer_id,
        activity_date,
        count(distinct order_id) filter (where line_kind = 'sale') as sale_orders,
        count(*) filter (where line_kind = 'sale') as sale_lines,
        count(*) filter (where line_kind = 'return') as return_lines,
        coalesce(sum(amount) filter (where line_kind = 'sale'), 0)::decimal(18, 4)
            as sale_amount,
        coalesce(-sum(amount) filter (where line_kind = 'return'), 0)::decimal(18, 4)
            as returned_amount,
        sum(amount)::decimal(18, 4) as net_amount,

    from customer_lines
    group by export_date, customer_id, activity_date

)

select * from final
order by export_date, customer_id, activity_date
