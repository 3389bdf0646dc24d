-- Data checks of one stage_transitions partition: one row per changed customer.

with

transitions as (

    select * from stage_transitions

),

counts as (

    select
        count(*) - count(distinct customer_id) as customer_not_unique,
        count(*) filter (where from_stage is not distinct from to_stage) as not_a_change,
        count(*) filter (where reason is null) as reason_missing,
        count(*) filter (where is_win_back is null) as win_back_flag_missing,

    from transitions

)

unpivot counts on columns(*) into name check_name value failing_rows
