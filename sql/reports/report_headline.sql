-- The report's headline figures of one as-of date: who is known and scored, what they
-- spent, how many are in danger and how many entered it that day.
-- Grain: one row.
--
-- Parameters:
--   $segment_summary_file     the date's segment_summary partition
--   $lifecycle_file           the date's customer_lifecycle partition
--   $customer_days_file       the date's customer_days partition (the day's export)
--   $danger_alerts_file       the date's danger_alerts partition

with

segment_summary as (

    select * from read_parquet($segment_summary_file)

),

customer_lifecycle as (

    select * from read_parquet($lifecycle_file)

),

customer_days as (

    select * from read_parquet($customer_days_file)

),

danger_alerts as (

    select * from read_parquet($danger_alerts_file)

),

scored as (

    select
        coalesce(sum(customers), 0) as customers_scored,
        coalesce(sum(revenue), 0) as window_revenue,
        max(pareto_share) as pareto_share,
    from segment_summary
    where dimension = 'all'

),

known as (

    select
        count(*) as customers_known,
        count(*) filter (where stage = 'danger') as customers_in_danger,
    from customer_lifecycle

),

the_day as (

    select
        count(distinct customer_id) filter (where sale_lines > 0) as buyers_today,
        coalesce(sum(sale_orders), 0) as orders_today,
        coalesce(sum(net_amount), 0) as net_sales_today,
    from customer_days

),

entries as (

    select
        count(*) as danger_entries,
        coalesce(sum(value_at_risk), 0) as value_at_risk,
    from danger_alerts

),

final as (

    select
        scored.customers_scored,
        known.customers_known,
        known.customers_in_danger,
        scored.window_revenue,
        scored.pareto_share,
        the_day.buyers_today,
        the_day.orders_today,
        the_day.net_sales_today,
        entries.danger_entries,
        entries.value_at_risk,

    from scored
    cross join known
    cross join the_day
    cross join entries

)

select * from final
