-- What the lifecycle knows of every buyer as of $as_of_date: their rhythm, how far the
-- current silence is into it, recent spend and returns. The risk model's features and
-- the stage rules' inputs. Grain: one row per customer with a purchase day (the rows
-- of customer_segments). The daily step runs it on the date's segments; the backtest
-- runs the same query on the segments of past cut-off dates.
-- Inputs (views): customer_segments (as of the date), recent_activity (as of the date:
-- each customer's sales, returns and purchase days in the lifecycle's recent window),
-- gap_curve (the rhythm model's survival curves: stratum, x, cdf; empty without one).
-- Bound: $population_gap_days (the rhythm model's median gap between purchase days,
-- censoring-aware), $prior_gaps, $window_days, $returns_within_days.

with

segments as (

    select * from customer_segments
    where last_purchase_date is not null

),

recent as (

    select * from recent_activity

),

observed as (

    select
        segments.customer_id,
        segments.first_purchase_date,
        segments.last_purchase_date,
        $as_of_date::date - segments.last_purchase_date as days_since_last_purchase,
        segments.frequency as window_purchase_days,
        segments.tenure_days,
        -- Gaps seen: all purchases inside the window, or spread from the window's start.
        -- A customer silent for the whole window shows no gap there; when their first
        -- and last purchases differ they are still a repeat buyer: one gap, at most
        -- that long, is what the history says of them.
        case
            when segments.first_purchase_date > $as_of_date::date - $window_days::integer
                then segments.frequency - 1
            when segments.frequency > 0 then segments.frequency
            when segments.last_purchase_date > segments.first_purchase_date then 1
            else 0
        end as observed_gaps,
        case
            when segments.first_purchase_date > $as_of_date::date - $window_days::integer
                then segments.last_purchase_date - segments.first_purchase_date
            when segments.frequency > 0
                then segments.last_purchase_date - ($as_of_date::date - $window_days::integer)
            else segments.last_purchase_date - segments.first_purchase_date
        end as observed_span_days,
        least(segments.tenure_days, $window_days::integer) as observed_days,
        coalesce(segments.monetary, 0)::decimal(18, 2) as window_net_amount,
        (coalesce(segments.monetary, 0) + coalesce(segments.returned_amount, 0))::decimal(18, 2)
            as window_sale_amount,
        coalesce(recent.recent_sale_amount, 0)::decimal(18, 2) as recent_sale_amount,
        coalesce(recent.recent_returned_amount, 0)::decimal(18, 2) as recent_returned_amount,
        coalesce(recent.recent_return_lines, 0) as recent_return_lines,
        coalesce(recent.recent_purchase_days, 0) as recent_purchase_days,
        coalesce(recent.recent_net_amount, 0)::decimal(18, 2) as recent_net_amount,
        recent.last_return_date,
        segments.segment,
        segments.cluster_id,
        segments.cluster_name,

    from segments
    left join recent on segments.customer_id = recent.customer_id

),

rhythm as (

    select
        *,
        -- The customer's own mean gap, shrunk toward the shop's median gap by
        -- $prior_gaps gaps: a one-purchase customer gets the shop's, a regular their own.
        (observed_span_days + $prior_gaps * $population_gap_days)
            / (observed_gaps + $prior_gaps)::double as expected_gap_days,
        observed_span_days / nullif(observed_gaps, 0)::double as own_gap_days,
        -- A return soon after the last purchase, nothing bought since: a grievance.
        coalesce(
            last_return_date >= last_purchase_date
                and last_return_date - last_purchase_date <= $returns_within_days,
            false
        ) as returned_after_last_purchase,

    from observed

),

scaled as (

    select
        *,
        -- The silence in units of the customer's own rhythm (repeat buyers), or in days
        -- (one-time buyers: judged against how long returning customers wait).
        case
            when observed_gaps > 0 then days_since_last_purchase / expected_gap_days
        end as silence_in_gaps,
        case when observed_gaps = 0 then days_since_last_purchase::double end
            as silence_days_one_time,

    from rhythm

),

repeat_curve as (

    select x, cdf from gap_curve where stratum = 'repeat'

),

second_curve as (

    select x, cdf from gap_curve where stratum = 'second_purchase'

),

-- Each silence looked up once on its curve: an ASOF join sorts its left side, and
-- sorting the distinct silences costs far less than sorting every customer's row.
repeat_silences as (

    select distinct silence_in_gaps from scaled where silence_in_gaps is not null

),

repeat_placed as (

    select repeat_silences.silence_in_gaps, repeat_curve.cdf
    from repeat_silences
    asof left join repeat_curve on repeat_silences.silence_in_gaps > repeat_curve.x

),

second_silences as (

    select distinct silence_days_one_time
    from scaled
    where silence_days_one_time is not null

),

second_placed as (

    select second_silences.silence_days_one_time, second_curve.cdf
    from second_silences
    asof left join second_curve on second_silences.silence_days_one_time > second_curve.x

),

placed as (

    select
        scaled.*,
        -- The share of such gaps (of customers who did buy again) strictly shorter than
        -- this silence: 0.9 reads "9 in 10 of this customer's gaps were shorter".
        coalesce(repeat_placed.cdf, second_placed.cdf, 0.0) as rhythm_percentile,

    from scaled
    left join repeat_placed on scaled.silence_in_gaps = repeat_placed.silence_in_gaps
    left join second_placed
        on scaled.silence_days_one_time = second_placed.silence_days_one_time

),

final as (

    select
        customer_id,
        first_purchase_date,
        last_purchase_date,
        days_since_last_purchase,
        window_purchase_days::integer as window_purchase_days,
        tenure_days,
        observed_gaps::integer as observed_gaps,
        observed_span_days,
        observed_days,
        round(own_gap_days, 2) as own_gap_days,
        round(expected_gap_days, 2) as expected_gap_days,
        round(coalesce(silence_in_gaps, days_since_last_purchase / $population_gap_days), 4)
            as silence_in_gaps,
        round(rhythm_percentile, 4) as rhythm_percentile,
        window_net_amount,
        window_sale_amount,
        recent_sale_amount,
        recent_returned_amount,
        recent_return_lines,
        recent_purchase_days,
        recent_net_amount,
        last_return_date,
        returned_after_last_purchase,
        segment,
        cluster_id,
        cluster_name,

    from placed

)

select * from final
order by customer_id
