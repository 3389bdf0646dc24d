-- Every known customer's lifecycle stage as of $as_of_date: the lake's customer_lifecycle
-- table, one partition per as_of_date. Grain: one row per customer known by the date
-- (a buyer, or a prospect from the customer master).
-- Inputs (views): customer_segments (as of the date), customer_days (the exports of
-- the $recent_days window), previous_customer_lifecycle (the day before; empty on the
-- first run) and customer_master (the date's master rows; empty without a master).
-- Rules, in order (the first that holds wins): no purchase = prospect; no purchase for
-- $churn_horizon_days = interruption; a gap of termination_after_days = termination;
-- a danger rule = danger; one purchase day (or none since a win-back) = socialization;
-- established and not rising = maturity; otherwise growth. docs/lifecycle.md explains
-- each threshold.

with

segments as (

    select * from customer_segments

),

previous as (

    select * from previous_customer_lifecycle

),

master as (

    select
        customer_id,
        min(signup_date) as signup_date,

    from customer_master
    group by customer_id

),

recent as (

    select
        customer_id,
        sum(sale_amount)::decimal(18, 2) as recent_sale_amount,
        sum(returned_amount)::decimal(18, 2) as recent_returned_amount,
        sum(return_lines)::integer as recent_return_lines,
        count(distinct activity_date) filter (where sale_lines > 0)::integer
            as recent_purchase_days,
        sum(net_amount)::decimal(18, 2) as recent_net_amount,
        max(activity_date) filter (where return_lines > 0) as last_return_date,

    from customer_days
    where activity_date > $as_of_date::date - $recent_days::integer
        and export_date <= $as_of_date::date
    group by customer_id

),

known as (

    select customer_id from segments
    union
    select customer_id from previous
    union
    select customer_id from master

),

features as (

    select
        known.customer_id,
        coalesce(master.signup_date, previous.signup_date) as signup_date,
        segments.first_purchase_date,
        segments.last_purchase_date,
        $as_of_date::date - segments.last_purchase_date as days_since_last_purchase,
        coalesce(segments.frequency, 0) as window_purchase_days,
        segments.tenure_days,
        -- Gaps seen: all purchases inside the window, or spread from the window's start.
        case
            when segments.first_purchase_date > $as_of_date::date - $window_days::integer
                then segments.frequency - 1
            else segments.frequency
        end as observed_gaps,
        case
            when segments.first_purchase_date > $as_of_date::date - $window_days::integer
                then segments.last_purchase_date - segments.first_purchase_date
            else segments.last_purchase_date - ($as_of_date::date - $window_days::integer)
        end as observed_span_days,
        coalesce(segments.monetary, 0)::decimal(18, 2) as window_net_amount,
        coalesce(recent.recent_sale_amount, 0)::decimal(18, 2) as recent_sale_amount,
        coalesce(recent.recent_returned_amount, 0)::decimal(18, 2) as recent_returned_amount,
        coalesce(recent.recent_return_lines, 0) as recent_return_lines,
        coalesce(recent.recent_purchase_days, 0) as recent_purchase_days,
        (coalesce(segments.monetary, 0) + coalesce(segments.returned_amount, 0))::decimal(18, 2)
            as window_sale_amount,
        coalesce(recent.recent_net_amount, 0)::decimal(18, 2) as recent_net_amount,
        recent.last_return_date,
        previous.stage as previous_stage,
        previous.stage_since as previous_stage_since,
        previous.last_purchase_date as previous_last_purchase_date,
        previous.won_back_on as previous_won_back_on,
        previous.danger_entered_on as previous_danger_entered_on,
        segments.segment,
        segments.cluster_id,
        segments.cluster_name,

    from known
    left join segments on known.customer_id = segments.customer_id
    left join previous on known.customer_id = previous.customer_id
    left join master on known.customer_id = master.customer_id

    left join recent on known.customer_id = recent.customer_id

),

thresholds as (

    select
        *,
        -- The customer's own mean gap, shrunk toward similar customers' by $prior_gaps
        -- gaps: a one-purchase customer gets the population's, a regular buyer their own.
        coalesce(
            (observed_span_days + $prior_gaps * $population_gap_days)
                / nullif(observed_gaps + $prior_gaps, 0),
            $population_gap_days
        )::double as expected_gap_days,
        observed_span_days / nullif(observed_gaps, 0)::double as own_gap_days,
        -- P(alive) of the MBG/NBD model in force (bound $alive_*), on the same
        -- observation as the expected gap: frequency = observed gaps, recency = their
        -- span, T = the days observed (lifecycle/alive_inputs.sql fits on the same).
        case
            when $has_alive_model and last_purchase_date is not null then 1.0 / (
                1.0 + exp(
                    ln($alive_a / ($alive_b + observed_gaps))
                    + ($alive_r + observed_gaps) * ln(
                        ($alive_alpha + least(tenure_days, $window_days::integer))
                        / ($alive_alpha + greatest(observed_span_days, 0))
                    )
                )
            )
        end as p_alive,
        -- Daily spend rates: the recent window against the scoring window (or tenure).
        recent_net_amount / $recent_days::double as recent_daily_spend,
        window_net_amount / least(tenure_days + 1, $window_days)::double
            as window_daily_spend,
        -- Spend per purchase day (the basket), recent against the scoring window.
        recent_sale_amount / nullif(recent_purchase_days, 0)::double as recent_basket,
        window_sale_amount / nullif(window_purchase_days, 0)::double as window_basket,

    from features

),

signals as (

    select
        *,
        greatest($danger_gap_multiple * expected_gap_days, $danger_min_gap_days)
            as danger_after_days,
        greatest(
            $termination_gap_multiple * expected_gap_days,
            greatest($danger_gap_multiple * expected_gap_days, $danger_min_gap_days)
                + $danger_min_gap_days
        ) as termination_after_days,
        -- A quick return (within $returns_within_days of the last purchase: faulty, not
        -- as described), then silence: no purchase since, for $returns_gap_multiple of
        -- the expected gap and at least $returns_min_silence_days.
        $returns_gap_multiple > 0
            and recent_return_lines >= $returns_min_lines
            and recent_returned_amount >= $returns_ratio * greatest(recent_sale_amount, 0)
            and last_return_date >= last_purchase_date
            and last_return_date - last_purchase_date <= $returns_within_days
            and days_since_last_purchase >= greatest(
                $returns_gap_multiple * expected_gap_days, $returns_min_silence_days
            )
            as returns_signal,
        -- Spend decline: still buying, but baskets shrank against their own usual.
        $spend_decline_ratio > 0
            and window_purchase_days >= $established_purchase_days
            and tenure_days >= 2 * $recent_days
            and recent_purchase_days >= 2
            and recent_basket < $spend_decline_ratio * window_basket
            as spend_decline_signal,
        window_purchase_days >= $established_purchase_days
            and recent_daily_spend > $rising_spend_ratio * window_daily_spend
            as rising_spend,

    from thresholds

),

rules as (

    select
        *,
        days_since_last_purchase >= danger_after_days
            and observed_gaps >= $gap_min_observed_gaps as gap_signal,
        nullif(
            concat_ws(
                ',',
                case
                    when days_since_last_purchase >= danger_after_days
                        and observed_gaps >= $gap_min_observed_gaps
                        then 'gap'
                end,
                case when spend_decline_signal then 'spend_decline' end,
                case when returns_signal then 'returns' end
            ),
            ''
        ) as danger_rules,
        previous_last_purchase_date is null
            or last_purchase_date > previous_last_purchase_date as purchased_since,
        -- A purchase after termination or interruption wins the customer back.
        case
            when previous_stage in ('termination', 'interruption')
                and last_purchase_date > previous_last_purchase_date
                then last_purchase_date
            else previous_won_back_on
        end as won_back_on,

    from signals

),

staged as (

    select
        *,
        -- Only a purchase ends danger, termination or interruption: thresholds move
        -- a little every day (the window slides), and a customer must not flicker
        -- between stages without doing anything.
        case
            when last_purchase_date is null then 'prospect'
            when days_since_last_purchase >= $churn_horizon_days
                or (previous_stage = 'interruption' and not purchased_since)
                then 'interruption'
            when days_since_last_purchase >= termination_after_days
                or (previous_stage = 'termination' and not purchased_since)
                then 'termination'
            -- Back after termination or interruption: a new relationship starts.
            when previous_stage in ('termination', 'interruption') then 'socialization'
            when danger_rules is not null
                or (previous_stage = 'danger' and not purchased_since)
                then 'danger'
            when first_purchase_date = last_purchase_date
                or last_purchase_date = won_back_on then 'socialization'
            when window_purchase_days >= $established_purchase_days
                and tenure_days >= $maturity_tenure_days
                and not rising_spend then 'maturity'
            else 'growth'
        end as stage,

    from rules

),

final as (

    select
        customer_id,
        stage,
        case when stage = previous_stage then previous_stage_since else $as_of_date::date end
            as stage_since,
        previous_stage,
        case stage
            when 'prospect' then 'signed up, no purchase yet'
            when 'interruption' then format(
                'no purchase for {} days (churn horizon {} days)',
                days_since_last_purchase, $churn_horizon_days::integer
            )
            when 'termination' then format(
                'no purchase for {} days, {:.1f}x the expected gap of {:.0f} days',
                days_since_last_purchase,
                days_since_last_purchase / expected_gap_days,
                expected_gap_days
            )
            when 'danger' then coalesce(nullif(concat_ws(
                '; ',
                case when gap_signal then format(
                    'no purchase for {} days, {:.1f}x the expected gap of {:.0f} days',
                    days_since_last_purchase,
                    days_since_last_purchase / expected_gap_days,
                    expected_gap_days
                ) end,
                case when spend_decline_signal then format(
                    'spent {:.0f} per purchase day in the last {} days, {:.0f}% of the usual {:.0f}',
                    recent_basket,
                    $recent_days::integer,
                    100 * recent_basket / window_basket,
                    window_basket
                ) end,
                case when returns_signal then format(
                    'returned {:.2f} of {:.2f} bought in the last {} days (last return {}),'
                    || ' no purchase since {} ({} days)',
                    recent_returned_amount::double,
                    recent_sale_amount::double,
                    $recent_days::integer,
                    last_return_date,
                    last_purchase_date,
                    days_since_last_purchase
                ) end
            ), ''), format('no purchase since {}', last_purchase_date))
            when 'socialization' then case
                when last_purchase_date = won_back_on
                    then format('won back on {}', won_back_on)
                else format('first purchase on {}', first_purchase_date)
            end
            when 'maturity' then format(
                'established: {} purchase days in the window, a customer for {} days',
                window_purchase_days, tenure_days
            )
            else case
                when rising_spend then 'repeat buyer, spend rising'
                else format('repeat buyer, {} purchase days in the window', window_purchase_days)
            end
        end as stage_reason,
        danger_rules,
        case
            when stage in ('danger', 'termination')
                and previous_stage in ('danger', 'termination')
                then previous_danger_entered_on
            when stage = 'danger' then $as_of_date::date
        end as danger_entered_on,
        won_back_on,
        signup_date,
        first_purchase_date,
        last_purchase_date,
        days_since_last_purchase,
        window_purchase_days::integer as window_purchase_days,
        observed_gaps::integer as observed_gaps,
        round(own_gap_days, 2) as own_gap_days,
        round(expected_gap_days, 2) as expected_gap_days,
        round(danger_after_days, 2) as danger_after_days,
        round(termination_after_days, 2) as termination_after_days,
        round(p_alive, 4) as p_alive,
        window_net_amount,
        recent_sale_amount,
        recent_returned_amount,
        recent_return_lines,
        recent_net_amount,
        last_return_date,
        segment,
        cluster_id,
        cluster_name,

    from staged

)

select * from final
order by customer_id
