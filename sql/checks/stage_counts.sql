-- Data checks of one stage_counts partition: the seven stages, shares adding up.

with

counts_by_stage as (

    select * from stage_counts

),

counts as (

    select
        abs(count(*) - 7) as not_seven_stages,
        count(*) - count(distinct stage) as stage_not_unique,
        count(*) filter (where customers < 0 or entered < 0 or exited < 0) as negative_count,
        -- Shares add up to 1, or to 0 while nobody is known.
        (abs(sum(customer_share) - least(sum(customers), 1)) > 1e-9)::integer
            as shares_do_not_add_up,

    from counts_by_stage

)

unpivot counts on columns(*) into name check_name value failing_rows
