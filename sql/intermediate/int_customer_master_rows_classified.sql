-- Decide where each staged customer master row of the day goes: loaded into the lake, or
-- quarantined (its staging reason, or a later copy of a customer already loaded).
-- Grain: one row per input row (source_file, source_row).
--
-- Key of the master: customer_id, unique within a date. Among the rows that pass the
-- staging checks, the first in file precedence (file_order), then row order, is loaded;
-- every later row of the same customer is quarantined as duplicate_customer_id, whether
-- or not its values agree, so no row is silently dropped.

with

staged_rows as (

    select * from stg_customer_master_rows

),

occurrences as (

    select
        *,
        -- Rows already quarantined are numbered apart, so they never take the first place.
        case
            when quarantine_reason is null
                then
                    row_number() over (
                        partition by quarantine_reason is null, customer_id
                        order by file_order, source_row
                    )
        end as occurrence_in_day,

    from staged_rows

),

final as (

    select
        * exclude (quarantine_reason, occurrence_in_day),
        coalesce(
            quarantine_reason,
            case when occurrence_in_day > 1 then 'duplicate_customer_id' end
        ) as quarantine_reason,
        case
            when quarantine_reason is null and occurrence_in_day = 1 then 'loaded'
            else 'quarantined'
        end as disposition,

    from occurrences

)

select * from final
