-- Rename and cast one logical date's export lines (all text in raw_export_lines) into
-- typed order lines, and name the first reason, if any, that keeps a line out of the lake.
-- Grain: one row per input row (source_file, source_row).
--
-- Parameters:
--   $timezone               the source's IANA timezone: local times are converted to UTC
--   $timestamp_formats      strptime formats tried in order for local times
--   $window_start_utc       earliest accepted ordered_at (day start minus late tolerance)
--   $window_end_utc         first rejected ordered_at (day end plus early tolerance)
--   $decimal_separator      '.' or ','
--   $default_currency       used when the export has no currency value
--   $accepted_currencies    currencies the pipeline accepts
--   $return_statuses        status values marking a return (lowercase)
--   $cancellation_statuses  status values marking a cancellation (lowercase)

with

raw_export_lines as (

    select * from raw_export_lines

),

trimmed as (

    select
        source_file,
        file_order,
        source_row,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(line_id), '') as line_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(ordered_at), '') as ordered_at_text,
        nullif(trim(product_id), '') as product_id,
        nullif(trim(quantity), '') as quantity_text,
        nullif(trim(unit_price), '') as unit_price_text,
        nullif(trim(amount), '') as amount_text,
        upper(coalesce(nullif(trim(currency), ''), $default_currency)) as currency,
        lower(nullif(trim(status), '')) as status,

    from raw_export_lines

),

parsed as (

    select
        *,

        -- A string ending in Z or a UTC offset is an absolute time; anything else is
        -- local time in the source's timezone (DST gaps and overlaps resolved by ICU).
        case
            when regexp_matches(
                ordered_at_text,
                '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$'
            )
                then try_cast(ordered_at_text as timestamptz)
            else timezone($timezone, try_strptime(ordered_at_text, $timestamp_formats))
        end as ordered_at,

        try_cast(replace(quantity_text, $decimal_separator, '.') as decimal(18, 3))
            as quantity_given,
        try_cast(replace(unit_price_text, $decimal_separator, '.') as decimal(18, 4))
            as unit_price,
        try_cast(replace(amount_text, $decimal_separator, '.') as decimal(18, 4))
            as amount_given,

        coalesce(list_contains($return_statuses, status), false) as has_return_status,
        coalesce(list_contains($cancellation_statuses, status), false)
            as has_cancellation_status,

    from trimmed

),

amounts as (

    select
        *,
        coalesce(
            amount_given,
            cast(round(quantity_given * unit_price, 2) as decimal(18, 4))
        ) as amount_computed,

    from parsed

),

classified_kind as (

    select
        *,
        case
            when has_cancellation_status then 'cancellation'
            when has_return_status or quantity_given < 0 or amount_computed < 0 then 'return'
            else 'sale'
        end as line_kind,

    from amounts

),

validated as (

    select
        *,
        case
            when order_id is null then 'missing_order_id'
            when line_id is null then 'missing_line_id'
            when ordered_at_text is null then 'missing_ordered_at'
            when ordered_at is null then 'unparseable_ordered_at'
            when ordered_at < $window_start_utc or ordered_at >= $window_end_utc
                then 'ordered_at_outside_window'
            when product_id is null then 'missing_product_id'
            when quantity_text is null then 'missing_quantity'
            when quantity_given is null then 'unparseable_quantity'
            when quantity_given = 0 then 'zero_quantity'
            when unit_price_text is not null and unit_price is null
                then 'unparseable_unit_price'
            when amount_text is not null and amount_given is null then 'unparseable_amount'
            when amount_computed is null then 'missing_amount'
            -- A status-marked return may carry positive figures: its signs are normalized
            -- below. Otherwise quantity and amount must agree on the sign.
            when not has_return_status and sign(quantity_given) * sign(amount_computed) < 0
                then 'sign_mismatch'
            when not list_contains($accepted_currencies, currency) then 'unknown_currency'
        end as quarantine_reason,

    from classified_kind

),

final as (

    select
        source_file,
        file_order,
        source_row,
        order_id,
        line_id,
        customer_id,
        ordered_at,
        cast(timezone($timezone, ordered_at) as date) as order_date,
        product_id,
        case when line_kind = 'return' then -abs(quantity_given) else quantity_given end
            as quantity,
        unit_price,
        case when line_kind = 'return' then -abs(amount_computed) else amount_computed end
            as amount,
        currency,
        line_kind,
        quarantine_reason,

    from validated

)

select * from final
