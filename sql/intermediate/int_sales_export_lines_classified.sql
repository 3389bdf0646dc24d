-- Decide where each staged line of the day goes: accepted into the lake, counted as a
-- duplicate, or quarantined (its staging reason, or a conflicting duplicate).
-- Grain: one row per input row (source_file, source_row).
--
-- Natural key of an order line: (order_id, line_id). A line whose key was already
-- accepted, earlier in the day's files (in file_order, then row order) or in the lookback
-- partitions of earlier dates (earlier_order_lines), is a duplicate when every value
-- agrees, and a conflicting duplicate (quarantined, never silently dropped) when not.

with

staged_lines as (

    select * from stg_sales_export_lines

),

earlier_order_lines as (

    select * from earlier_order_lines

),

line_contents as (

    select
        *,
        struct_pack(
            customer_id, ordered_at, product_id, quantity, unit_price, amount, currency,
            line_kind
        ) as line_content,

    from staged_lines

),

valid_lines as (

    select
        *,
        row_number() over (
            partition by order_id, line_id order by file_order, source_row
        ) as occurrence_in_day,

    from line_contents
    where quarantine_reason is null

),

first_in_day as (

    select order_id, line_id, line_content
    from valid_lines
    where occurrence_in_day = 1

),

first_earlier as (

    select
        order_id,
        line_id,
        struct_pack(
            customer_id, ordered_at, product_id, quantity, unit_price, amount, currency,
            line_kind
        ) as line_content,

    from earlier_order_lines
    qualify row_number() over (partition by order_id, line_id order by export_date) = 1

),

valid_dispositions as (

    select
        valid_lines.source_file,
        valid_lines.source_row,
        case
            when first_earlier.order_id is not null
                then
                    case
                        when first_earlier.line_content is not distinct from valid_lines.line_content
                            then 'duplicate'
                        else 'conflicting_duplicate'
                    end
            when valid_lines.occurrence_in_day > 1
                then
                    case
                        when first_in_day.line_content is not distinct from valid_lines.line_content
                            then 'duplicate'
                        else 'conflicting_duplicate'
                    end
            else 'accepted'
        end as verdict,

    from valid_lines
    left join first_earlier
        on valid_lines.order_id = first_earlier.order_id
        and valid_lines.line_id = first_earlier.line_id
    left join first_in_day
        on valid_lines.order_id = first_in_day.order_id
        and valid_lines.line_id = first_in_day.line_id

),

final as (

    select
        staged_lines.*
            exclude (quarantine_reason),
        case
            when valid_dispositions.verdict = 'accepted' then 'accepted'
            when valid_dispositions.verdict = 'duplicate' then 'duplicate'
            else 'quarantined'
        end as disposition,
        coalesce(
            staged_lines.quarantine_reason,
            case when valid_dispositions.verdict = 'conflicting_duplicate' then 'conflicting_duplicate' end
        ) as quarantine_reason,

    from staged_lines
    left join valid_dispositions
        on staged_lines.source_file = valid_dispositions.source_file
        and staged_lines.source_row = valid_dispositions.source_row

)

select * from final
