-- Published stage_counts: customers per lifecycle stage on $as_of_date, with the day's
-- entries and exits. Grain: (as_of_date, stage).
-- Input: the view lake_stage_counts (the date's lake partition).

with

counts as (

    select * from lake_stage_counts

),

final as (

    select
        as_of_date,
        stage_order,
        stage,
        customers,
        customer_share,
        window_net_amount,
        entered,
        exited,

    from counts

)

select * from final
order by stage_order
