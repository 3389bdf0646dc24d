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
--   $thousands_separator    digit-group separator removed from numbers ('' for none)
--   $default_currency       the reporting currency; also used when a line has none
--   $accepted_currencies    currencies the pipeline accepts
--   $alias_names            currency values (upper case) that name a currency ...
--   $alias_codes            ... and the ISO codes they name, position by position
--   $return_statuses        status values marking a return (lowercase)
--   $cancellation_statuses  status values marking a cancellation (lowercase)
--   $cancellation_prefix    an order id starting with it is a cancellation ('' for none)
--   $order_id_headers       normalized header names of order_id (repeated_header) ...
--   $ordered_at_headers     ... and of ordered_at
--   $footer_pattern         a regular expression (lower case) for a totals row's text
--   $has_dst_gaps, $dst_gaps    local-time ranges [s, e) that do not exist (DST gap)
--   $has_dst_folds, $dst_folds  local-time ranges [s, e) that occur twice (DST fold)
--   $dst_policy             'flag' or 'quarantine' for those local times
--   $amount_tolerance       share of quantity x unit_price an amount may differ by
--   $inconsistent_amount    'flag' or 'quarantine'
--   $max_quantity, $max_unit_price, $max_amount   plausibility bounds (absolute values)
-- Reads exchange_rates (rate_date, currency, rate): one rate per currency per day.

with

raw_export_lines as (

    select * from raw_export_lines

),

exchange_rates as (

    select * from exchange_rates

),

trimmed as (

    select
        source_file,
        file_order,
        source_row,
        load_problem,
        -- A control character (NUL, ESC, ...; not tab, LF or CR) in any field: a corrupt
        -- or binary row. Only files whose bytes hold one are looked at row by row.
        -- (A case, not an and: only its chosen branch is computed.)
        case
            when coalesce(may_have_control_bytes, true)
                then regexp_matches(
                    concat_ws(
                        '', order_id, line_id, customer_id, ordered_at, product_id, quantity,
                        unit_price, amount, currency, status
                    ),
                    '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]'
                )
            else false
        end as has_control_character,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(line_id), '') as line_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(ordered_at), '') as ordered_at_text,
        nullif(trim(product_id), '') as product_id,
        nullif(trim(quantity), '') as quantity_text,
        nullif(trim(unit_price), '') as unit_price_text,
        nullif(trim(amount), '') as amount_text,
        upper(coalesce(nullif(trim(currency), ''), $default_currency)) as currency_text,
        lower(nullif(trim(status), '')) as status,

    from raw_export_lines

),

currencies as (

    select
        * exclude (currency_text),
        coalesce(
            list_extract($alias_codes, list_position($alias_names, currency_text)),
            currency_text
        ) as currency,

    from trimmed

),

parsed as (

    select
        *,

        -- A string ending in Z or a UTC offset is an absolute time; anything else is
        -- local time in the source's timezone.
        case
            when not regexp_matches(
                ordered_at_text,
                '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$'
            )
                then try_strptime(ordered_at_text, $timestamp_formats)
        end as ordered_at_local,

        try_cast(
            replace(replace(quantity_text, $thousands_separator, ''), $decimal_separator, '.')
            as decimal(18, 3)
        ) as quantity_given,
        try_cast(
            replace(replace(unit_price_text, $thousands_separator, ''), $decimal_separator, '.')
            as decimal(18, 4)
        ) as unit_price,
        try_cast(
            replace(replace(amount_text, $thousands_separator, ''), $decimal_separator, '.')
            as decimal(18, 4)
        ) as amount_given,

        coalesce(list_contains($return_statuses, status), false) as has_return_status,
        coalesce(list_contains($cancellation_statuses, status), false)
            or ($cancellation_prefix <> '' and starts_with(order_id, $cancellation_prefix))
            as is_cancellation,

    from currencies

),

times as (

    select
        *,
        -- DST: a time in the gap is read with the offset before the switch (02:30 in
        -- Berlin on the last Sunday of March is 01:30 UTC), a time in the fold as its
        -- second occurrence (standard time): ICU's resolution, flagged below.
        case
            when ordered_at_local is null then try_cast(ordered_at_text as timestamptz)
            else timezone($timezone, ordered_at_local)
        end as ordered_at,
        coalesce(
            $has_dst_gaps and len(
                list_filter(
                    $dst_gaps, lambda r: ordered_at_local >= r.s and ordered_at_local < r.e
                )
            ) > 0,
            false
        ) as is_nonexistent_local_time,
        coalesce(
            $has_dst_folds and len(
                list_filter(
                    $dst_folds, lambda r: ordered_at_local >= r.s and ordered_at_local < r.e
                )
            ) > 0,
            false
        ) as is_ambiguous_local_time,

    from parsed

),

amounts as (

    select
        *,
        coalesce(
            amount_given,
            cast(round(quantity_given * unit_price, 2) as decimal(18, 4))
        ) as amount_computed,
        -- No amount in the row (the column is absent or the value empty): computed.
        amount_given is null and amount_text is null as is_amount_derived,
        -- In double precision (cents matter, not the 38th digit): a third of the cost.
        coalesce(
            abs(abs(amount_given::double) - abs(quantity_given::double * unit_price::double))
            > greatest(0.01 + 1e-9, $amount_tolerance * abs(quantity_given::double * unit_price::double)),
            false
        ) as is_amount_inconsistent,

    from times

),

classified_kind as (

    select
        *,
        case
            when is_cancellation then 'cancellation'
            when has_return_status or quantity_given < 0 or amount_computed < 0 then 'return'
            else 'sale'
        end as line_kind,

    from amounts

),

converted as (

    select
        classified_kind.*,
        exchange_rates.rate as exchange_rate,

    from classified_kind
    left join exchange_rates
        on classified_kind.currency = exchange_rates.currency
        and cast(timezone($timezone, classified_kind.ordered_at) as date)
        = exchange_rates.rate_date

),

validated as (

    select
        *,
        case
            when load_problem is not null then load_problem
            when has_control_character then 'invalid_character'
            -- Both checks look only at rows whose time does not parse (cheap on big days).
            when ordered_at is null
                and list_contains($order_id_headers, lower(order_id))
                and list_contains($ordered_at_headers, lower(ordered_at_text))
                then 'repeated_header'
            when ordered_at is null
                and regexp_matches(
                    lower(concat_ws(' ', order_id, line_id, customer_id, product_id)),
                    $footer_pattern
                )
                then 'footer_row'
            when order_id is null then 'missing_order_id'
            when line_id is null then 'missing_line_id'
            when ordered_at_text is null then 'missing_ordered_at'
            when ordered_at is null then 'unparseable_ordered_at'
            when $dst_policy = 'quarantine' and is_nonexistent_local_time
                then 'nonexistent_local_time'
            when $dst_policy = 'quarantine' and is_ambiguous_local_time
                then 'ambiguous_local_time'
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
            when abs(quantity_given) > cast($max_quantity as decimal(18, 3))
                or abs(unit_price) > cast($max_unit_price as decimal(18, 4))
                or abs(amount_computed) > cast($max_amount as decimal(18, 4))
                then 'outlier'
            when $inconsistent_amount = 'quarantine' and is_amount_inconsistent
                then 'inconsistent_amount'
            when not list_contains($accepted_currencies, currency)
                then
                    case
                        when regexp_matches(currency, '^[A-Z]{3}$') then 'unaccepted_currency'
                        else 'unknown_currency'
                    end
            when currency <> $default_currency and exchange_rate is null
                then 'unconvertible_currency'
        end as quarantine_reason,

    from converted

),

signed as (

    select
        *,
        case when line_kind = 'return' then -abs(amount_computed) else amount_computed end
            as amount_signed,

    from validated

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
        -- Amounts in the reporting currency; the line's own in source_amount.
        case
            when currency = $default_currency then unit_price
            else cast(round(unit_price * exchange_rate, 4) as decimal(18, 4))
        end as unit_price,
        case
            when currency = $default_currency then amount_signed
            else cast(round(amount_signed * exchange_rate, 2) as decimal(18, 4))
        end as amount,
        $default_currency as currency,
        line_kind,
        -- The three are null for a line in the reporting currency (nothing converted).
        case when currency <> $default_currency then currency end as source_currency,
        case when currency <> $default_currency then amount_signed end as source_amount,
        case when currency <> $default_currency then exchange_rate end as exchange_rate,
        is_amount_derived,
        is_amount_inconsistent,
        is_nonexistent_local_time,
        is_ambiguous_local_time,
        quarantine_reason,

    from signed

)

select * from final
