-- The day's stage changes: the lake's stage_transitions table, one partition per
-- as_of_date (the date of the change). Grain: one row per customer whose stage on
-- $as_of_date differs from the day before's (or who is new: from_stage is null).
-- Entering danger is a row with to_stage = 'danger'.
-- Input: the view customer_lifecycle (the date's partition, just written).

with

lifecycle as (

    select * from customer_lifecycle

),

final as (

    select
        customer_id,
        previous_stage as from_stage,
        stage as to_stage,
        case
            when $first_run then 'first run: ' || stage_reason
            when previous_stage in ('termination', 'interruption')
                and won_back_on = $as_of_date::date
                then 'win-back: ' || stage_reason
            when previous_stage = 'danger' and stage not in ('termination', 'interruption')
                then 'recovered: ' || stage_reason
            else stage_reason
        end as reason,
        danger_rules,
        coalesce(won_back_on = $as_of_date::date, false) and previous_stage is not null
            as is_win_back,
        $first_run as is_first_run,

    from lifecycle
    where previous_stage is distinct from stage

)

select * from final
order by customer_id
