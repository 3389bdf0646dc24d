-- Data checks of one segment_summary partition (the view segment_summary): each row
-- names a check and how many rows fail it. The step fails unless every count is zero.

with

segment_summary as (

    select * from segment_summary

),

counts as (

    select
        count(*) - count(distinct (dimension, group_id)) as key_not_unique,
        count(*) filter (where dimension not in ('all', 'segment', 'cluster'))
            as dimension_not_accepted,
        count(*) filter (where customer_share not between 0 and 1) as share_outside_0_to_1,
        count(*) filter (where pareto_share not between 0 and 1) as pareto_outside_0_to_1,
        count(*) filter (where customers <= 0) as empty_group,
        -- One 'all' row, or no row at all while nobody has purchased.
        abs(count(*) filter (where dimension = 'all') - least(count(*), 1)) as not_one_all_row,
        abs(
            coalesce(sum(customers) filter (where dimension = 'segment'), 0)
            - coalesce(sum(customers) filter (where dimension = 'all'), 0)
        ) as segments_do_not_add_up,
        abs(
            coalesce(sum(customers) filter (where dimension = 'cluster'), 0)
            - coalesce(sum(customers) filter (where dimension = 'all'), 0)
        ) as clusters_do_not_add_up,

    from segment_summary

)

unpivot counts on columns(*) into name check_name value failing_rows
