-- The R x F grid of one as-of date: customers and net spend in each of the 25 cells of
-- recency score and frequency score (empty cells included).
-- Grain: one row per (r_score, f_score).
--
-- Parameters:
--   $segments_file            the date's customer_segments partition

with

customer_segments as (

    select * from read_parquet($segments_file)

),

cells as (

    select r_score, f_score
    from range(1, 6) as recency(r_score)
    cross join range(1, 6) as frequency(f_score)

),

counted as (

    select
        r_score,
        f_score,
        count(*) as customers,
        sum(monetary) as revenue,
    from customer_segments
    group by r_score, f_score

),

final as (

    select
        cells.r_score::integer as r_score,
        cells.f_score::integer as f_score,
        coalesce(counted.customers, 0) as customers,
        coalesce(counted.revenue, 0) as revenue,
        coalesce(counted.customers, 0) / greatest(sum(counted.customers) over (), 1)
            as customer_share,

    from cells
    left join counted
        on cells.r_score = counted.r_score and cells.f_score = counted.f_score

)

select * from final
order by r_score, f_score
