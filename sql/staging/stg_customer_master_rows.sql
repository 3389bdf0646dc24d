-- Rename and cast one logical date's customer master rows (all text in
-- raw_customer_master_rows) and name the first reason, if any, that keeps a row out of
-- the lake. Grain: one row per input row (source_file, source_row).
--
-- Parameters:
--   $export_date            the logical date: a signup after it is not plausible
--   $timezone               the source's IANA timezone: absolute times are dated in it
--   $signup_date_formats    strptime date formats tried first
--   $timestamp_formats      strptime local-time formats tried next (the date part is kept)

with

raw_customer_master_rows as (

    select * from raw_customer_master_rows

),

trimmed as (

    select
        source_file,
        file_order,
        source_row,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(signup_date), '') as signup_date_text,
        nullif(trim(email), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(city), '') as city,

    from raw_customer_master_rows

),

parsed as (

    select
        *,

        -- A time ending in Z or a UTC offset is an absolute time, dated in the source's
        -- timezone; anything else is a local date, or a local time whose date is kept.
        case
            when regexp_matches(
                signup_date_text,
                '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$'
            )
                then cast(timezone($timezone, try_cast(signup_date_text as timestamptz)) as date)
            else
                coalesce(
                    cast(try_strptime(signup_date_text, $signup_date_formats) as date),
                    cast(try_strptime(signup_date_text, $timestamp_formats) as date)
                )
        end as signup_date,

    from trimmed

),

validated as (

    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when signup_date_text is not null and signup_date is null then 'bad_signup_date'
            when signup_date > $export_date then 'signup_date_after_export_date'
        end as quarantine_reason,

    from parsed

),

final as (

    select
        source_file,
        file_order,
        source_row,
        customer_id,
        signup_date,
        email,
        phone,
        city,
        quarantine_reason,

    from validated

)

select * from final
