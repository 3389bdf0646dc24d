-- Data checks of one stage_flows partition: one row per pair of stages that moved.

with

flows as (

    select * from stage_flows

),

counts as (

    select
        count(*) - count(distinct (from_stage, to_stage)) as pair_not_unique,
        count(*) filter (where customers <= 0) as empty_flow,
        count(*) filter (where from_stage is not distinct from to_stage) as not_a_change,

    from flows

)

unpivot counts on columns(*) into name check_name value failing_rows
