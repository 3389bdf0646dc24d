-- The revenue concentration (Pareto) curve of one as-of date: the share of the window's
-- positive net spend that the top p% of customers bring, for p = 0, 1, ..., 100.
-- Customers are ranked by net spend; negative spend counts as 0, as in pareto_share.
-- Grain: one row per percent of customers.
--
-- Parameters:
--   $segments_file            the date's customer_segments partition

with

customer_segments as (

    select * from read_parquet($segments_file)

),

ranked as (

    select
        row_number() over (order by monetary desc) as customer_rank,
        sum(greatest(monetary, 0)) over (
            order by monetary desc rows between unbounded preceding and current row
        ) as cumulative_spend,
    from customer_segments

),

totals as (

    select count(*) as customers, coalesce(sum(greatest(monetary, 0)), 0) as spend,
    from customer_segments

),

percents as (

    select percent::integer as percent, ceil(percent * totals.customers / 100)::bigint as rank_at,
    from range(0, 101) as points(percent)
    cross join totals

),

final as (

    select
        percents.percent,
        percents.percent / 100 as customer_share,
        case
            when totals.spend > 0 then coalesce(ranked.cumulative_spend, 0) / totals.spend
            else 0
        end as revenue_share,

    from percents
    cross join totals
    left join ranked
        on ranked.customer_rank = percents.rank_at

)

select * from final
order by percent
