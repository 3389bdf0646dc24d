-- Customers per stage on $as_of_date, with the day's entries and exits: the lake's
-- stage_counts table, one partition per as_of_date. Grain: one row per stage (all of them,
-- zero rows included, so a BI chart has no holes).
-- Inputs: the view customer_lifecycle (the date's partition) and the seed lifecycle_stages.

with

lifecycle as (

    select * from customer_lifecycle

),

stages as (

    select stage_order, stage from lifecycle_stages

),

in_stage as (

    select
        stage,
        count(*) as customers,
        sum(window_net_amount)::decimal(18, 2) as window_net_amount,

    from lifecycle
    group by stage

),

entered as (

    select stage, count(*) as entered
    from lifecycle
    where previous_stage is distinct from stage
    group by stage

),

exited as (

    select previous_stage as stage, count(*) as exited
    from lifecycle
    where previous_stage is not null and previous_stage <> stage
    group by previous_stage

),

final as (

    select
        stages.stage_order::integer as stage_order,
        stages.stage,
        coalesce(in_stage.customers, 0)::bigint as customers,
        coalesce(in_stage.customers / nullif(sum(in_stage.customers) over (), 0), 0)::double
            as customer_share,
        coalesce(in_stage.window_net_amount, 0)::decimal(18, 2) as window_net_amount,
        coalesce(entered.entered, 0)::bigint as entered,
        coalesce(exited.exited, 0)::bigint as exited,

    from stages
    left join in_stage on stages.stage = in_stage.stage
    left join entered on stages.stage = entered.stage
    left join exited on stages.stage = exited.stage

)

select * from final
order by stage_order
