-- Data checks of one customer_stage_history partition: episodes closed on the date.

with

episodes as (

    select * from customer_stage_history

),

counts as (

    select
        count(*) - count(distinct customer_id) as customer_not_unique,
        count(*) filter (where valid_from >= valid_to) as empty_or_reversed_episode,
        count(*) filter (where stage = next_stage) as not_a_change,

    from episodes

)

unpivot counts on columns(*) into name check_name value failing_rows
