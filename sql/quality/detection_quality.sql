-- How well danger detection finds the demo's hidden dissatisfaction episodes: one row
-- per detection method (the pipeline's danger alerts, the 90-day baseline).
-- Inputs (views): detections (method, customer_id, alert_date), episodes (the ground
-- truth: customer_id, onset_date, outcome, resolved_date) and last_purchases
-- (customer_id, last_purchase_date: the last purchase in the data).
-- An alert is true when it falls inside an episode of its customer: from the onset to
-- the recovery, or for a customer who churned up to $grace_days after the churn (the
-- customer is lost but can still be won back; $grace_days = 0 is the strict reading).
-- Recall counts the episodes starting in [$eval_start, $eval_end - $followup_days]
-- that an alert caught.

with

detections as (

    select * from detections
    where alert_date between $eval_start::date and $eval_end::date

),

episodes as (

    select
        *,
        case outcome
            when 'recovered' then resolved_date
            when 'churned' then resolved_date + $grace_days::integer
            else date '9999-12-31'
        end as caught_until,

    from episodes

),

methods as (

    select distinct method from detections

),

alerts_judged as (

    select
        detections.method,
        detections.customer_id,
        detections.alert_date,
        count(episodes.customer_id) > 0 as is_true,

    from detections
    left join episodes
        on detections.customer_id = episodes.customer_id
        and detections.alert_date between episodes.onset_date and episodes.caught_until
    group by all

),

episodes_judged as (

    select
        methods.method,
        episodes.customer_id,
        episodes.onset_date,
        episodes.outcome,
        episodes.resolved_date,
        min(detections.alert_date) as first_alert_date,

    from episodes
    cross join methods
    left join detections
        on methods.method = detections.method
        and episodes.customer_id = detections.customer_id
        and detections.alert_date between episodes.onset_date and episodes.caught_until
    where episodes.onset_date between $eval_start::date
        and $eval_end::date - $followup_days::integer
    group by all

),

alert_summary as (

    select
        method,
        count(*) as alerts,
        count(*) filter (where is_true) as true_alerts,

    from alerts_judged
    group by method

),

episode_summary as (

    select
        method,
        count(*) as episodes,
        count(first_alert_date) as caught,
        median(first_alert_date - onset_date) as median_days_onset_to_alert,
        median(resolved_date - first_alert_date) filter (where outcome = 'churned')
            as median_days_alert_to_churn,
        avg((first_alert_date <= resolved_date)::integer) filter (
            where outcome = 'churned' and first_alert_date is not null
        ) as share_alerted_before_churn,
        median(first_alert_date - last_purchases.last_purchase_date)
            as median_days_last_purchase_to_alert,

    from episodes_judged
    left join last_purchases using (customer_id)
    group by method

),

final as (

    select
        method,
        alerts,
        true_alerts,
        round(true_alerts / nullif(alerts, 0), 3) as precision,
        episodes,
        caught,
        round(caught / nullif(episodes, 0), 3) as recall,
        median_days_onset_to_alert,
        median_days_alert_to_churn,
        round(share_alerted_before_churn, 3) as share_alerted_before_churn,
        median_days_last_purchase_to_alert,

    from alert_summary
    inner join episode_summary using (method)

)

select * from final
order by method
