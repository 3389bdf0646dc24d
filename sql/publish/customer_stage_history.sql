-- Published customer_stage_history: the stage episodes that closed on $as_of_date
-- (valid_to exclusive). With customer_lifecycle's open episodes they make the view
-- customer_stage_episodes. Grain: (customer_key, valid_from).
-- Input: the view lake_customer_stage_history (the date's lake partition).

with

history as (

    select * from lake_customer_stage_history

),

final as (

    select
        as_of_date,
        customer_key(customer_id) as customer_key,
        stage,
        valid_from,
        valid_to,
        days_in_stage,
        next_stage,

    from history

)

select * from final
order by customer_key, valid_from
