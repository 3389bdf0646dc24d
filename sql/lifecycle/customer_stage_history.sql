-- Stage episodes that ended on $as_of_date: the lake's customer_stage_history table,
-- one partition per as_of_date (the episode's end). Grain: one row per customer and
-- closed episode; valid_to is exclusive (the first day of the next stage). Episodes
-- still open are the stage and stage_since of customer_lifecycle; the model
-- customer_stage_episodes (sql/publish/views) joins both for BI.
-- Inputs: the views customer_lifecycle (the date) and previous_customer_lifecycle.

with

lifecycle as (

    select * from customer_lifecycle

),

previous as (

    select * from previous_customer_lifecycle

),

final as (

    select
        previous.customer_id,
        previous.stage,
        previous.stage_since as valid_from,
        $as_of_date::date as valid_to,
        $as_of_date::date - previous.stage_since as days_in_stage,
        lifecycle.stage as next_stage,

    from previous
    inner join lifecycle on previous.customer_id = lifecycle.customer_id
    where lifecycle.stage <> previous.stage

)

select * from final
order by customer_id
