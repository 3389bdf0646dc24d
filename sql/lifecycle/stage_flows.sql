-- Customers moving between stages on $as_of_date (a Sankey's edges): the lake's
-- stage_flows table, one partition per as_of_date. Grain: one row per (from_stage,
-- to_stage) pair that moved at least one customer; from_stage is null for customers
-- seen for the first time.
-- Input: the view customer_lifecycle (the date's partition).

with

lifecycle as (

    select * from customer_lifecycle

),

final as (

    select
        previous_stage as from_stage,
        stage as to_stage,
        count(*)::bigint as customers,
        sum(window_net_amount)::decimal(18, 2) as window_net_amount,

    from lifecycle
    where previous_stage is distinct from stage
    group by previous_stage, stage

)

select * from final
order by from_stage nulls first, to_stage
