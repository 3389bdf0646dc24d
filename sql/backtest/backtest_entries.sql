-- Danger entries and the fixed-silence baseline's alarms in the $entry_window_days up to
-- $cutoff_date, each with what the customer did in the $horizon_days after it.
-- Grain: one row per (method, customer_id, entry_date).
-- Inputs (views): danger_entries (customer_id, entry_date: the danger_alerts of the
-- window), int_purchase_days (purchase days known by $known_by).
-- The baseline alarms once a customer's silence reaches $baseline_days (the day after
-- the last purchase before it plus $baseline_days, if no purchase came first).

with

purchase_days as (

    select * from int_purchase_days

),

sequenced as (

    select
        customer_id,
        activity_date,
        lead(activity_date) over (partition by customer_id order by activity_date)
            as next_purchase_date,

    from purchase_days

),

baseline_alarms as (

    select
        'recency_' || $baseline_days::integer || '_days' as method,
        customer_id,
        activity_date + $baseline_days::integer as entry_date,
        activity_date as last_purchase_date,

    from sequenced
    where activity_date + $baseline_days::integer
            > $cutoff_date::date - $entry_window_days::integer
        and activity_date + $baseline_days::integer <= $cutoff_date::date
        and (
            next_purchase_date is null
            or next_purchase_date > activity_date + $baseline_days::integer
        )

),

danger as (

    select
        'danger_entries' as method,
        danger_entries.customer_id,
        danger_entries.entry_date,
        max(purchase_days.activity_date) as last_purchase_date,

    from danger_entries
    left join purchase_days
        on danger_entries.customer_id = purchase_days.customer_id
        and purchase_days.activity_date <= danger_entries.entry_date
    where danger_entries.entry_date > $cutoff_date::date - $entry_window_days::integer
        and danger_entries.entry_date <= $cutoff_date::date
    group by all

),

entries as (

    select * from danger
    union all
    select * from baseline_alarms

),

final as (

    select
        entries.method,
        entries.customer_id,
        entries.entry_date,
        entries.last_purchase_date,
        -- Days ahead of the fixed-silence rule (negative: later than it).
        entries.last_purchase_date + $baseline_days::integer - entries.entry_date
            as days_ahead_of_baseline,
        count(purchase_days.activity_date) = 0 as no_purchase,

    from entries
    left join purchase_days
        on entries.customer_id = purchase_days.customer_id
        and purchase_days.activity_date > entries.entry_date
        and purchase_days.activity_date <= entries.entry_date + $horizon_days::integer
    group by all

)

select * from final
order by method, customer_id, entry_date
