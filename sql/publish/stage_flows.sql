-- Published stage_flows: customers moving from one stage to another on $as_of_date.
-- Grain: (as_of_date, from_stage, to_stage).
-- Input: the view lake_stage_flows (the date's lake partition).

with

flows as (

    select * from lake_stage_flows

),

final as (

    select
        as_of_date,
        from_stage,
        to_stage,
        customers,
        window_net_amount,

    from flows

)

select * from final
order by from_stage nulls first, to_stage
