-- Data checks of one danger_alerts partition: one alert per customer entering danger.

with

alerts as (

    select * from danger_alerts

),

counts as (

    select
        count(*) - count(distinct alert_id) as alert_not_unique,
        count(*) - count(distinct customer_id) as customer_alerted_twice,
        count(*) - count(distinct priority) as priority_not_unique,
        count(*) filter (where priority not between 1 and (select count(*) from alerts))
            as priority_outside_range,
        count(*) filter (where suggested_action is null) as action_missing,
        count(*) filter (where rules is null or reason is null) as reason_missing,
        count(*) filter (where from_stage in ('danger', 'termination', 'interruption'))
            as entry_from_a_stage_that_cannot_enter,

    from alerts

)

unpivot counts on columns(*) into name check_name value failing_rows
