-- Published stage_transitions: each customer whose stage changed on $as_of_date.
-- Grain: (as_of_date, customer_key).
-- Input: the view lake_stage_transitions (the date's lake partition).

with

transitions as (

    select * from lake_stage_transitions

),

final as (

    select
        as_of_date,
        customer_key(customer_id) as customer_key,
        from_stage,
        to_stage,
        reason,
        danger_rules,
        is_win_back,
        is_first_run,

    from transitions

)

select * from final
order by customer_key
