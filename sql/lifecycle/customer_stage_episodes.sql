-- Every stage episode of every customer as of $as_of_date, closed and open: what BI
-- tools read as the stage history (one row per customer per episode, valid_to exclusive,
-- null while the episode is open). Publishing materializes it; nothing in the daily
-- step reads it, and it reads all history, so it is not run daily.
-- Inputs (views): customer_stage_history (every partition up to the date) and
-- customer_lifecycle (the date's partition).

with

closed as (

    select
        customer_id,
        stage,
        valid_from,
        valid_to,

    from customer_stage_history
    where valid_to <= $as_of_date::date

),

open_now as (

    select
        customer_id,
        stage,
        stage_since as valid_from,
        null::date as valid_to,

    from customer_lifecycle

),

final as (

    select * from closed
    union all
    select * from open_now

)

select * from final
order by customer_id, valid_from
