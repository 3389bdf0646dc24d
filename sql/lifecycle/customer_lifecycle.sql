-- Every known customer's lifecycle stage as of $as_of_date: the lake's customer_lifecycle
-- table, one partition per as_of_date. Grain: one row per customer known by the date
-- (a buyer, or a prospect from the customer master).
-- Inputs (views): lifecycle_features (lifecycle_features.sql on the date's segments),
-- customer_risk (each buyer's risk of no purchase within $horizon_days and expected
-- purchases, from the risk model in force), week_ago_customer_lifecycle (the partition
-- of 7 days before, empty if none), previous_customer_lifecycle (the day before; empty
-- on the first run) and customer_master (the date's master rows; empty without one).
-- Rules, in order (the first that holds wins), docs/lifecycle.md explains each:
--   prospect       no purchase yet;
--   interruption   from termination: the silence is past $interruption_percentile of
--                  the customer's rhythm and $interruption_min_gaps usual gaps, the risk
--                  at the termination level (or still interrupted: only a purchase ends it);
--   termination    from danger: risk >= $termination_risk and a silence of at least
--                  $termination_min_gaps usual gaps (or still terminated);
--   socialization  back after termination or interruption (a win-back);
--   danger         from an active stage: a repeat buyer's risk >= $danger_risk, a one-time
--                  buyer whose silence passed $socialization_percentile of returning
--                  customers' waits (or whose only purchase was followed by a return and
--                  the risk is high); or in danger yesterday, no purchase since, and a
--                  one-time buyer or a risk still >= $danger_exit_risk;
--   socialization  one purchase day (or none since a win-back);
--   maturity       $established_purchase_days purchase days in the window, spend not rising;
--   growth         any other repeat buyer.

with

features as (

    select * from lifecycle_features

),

risk as (

    select * from customer_risk

),

week_ago as (

    select customer_id, risk from week_ago_customer_lifecycle

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

known as (

    select customer_id from features
    union
    select customer_id from previous
    union
    select customer_id from master

),

joined as (

    select
        known.customer_id,
        coalesce(master.signup_date, previous.signup_date) as signup_date,
        features.* exclude (customer_id),
        risk.risk,
        risk.expected_purchases,
        risk.p_alive,
        week_ago.risk as risk_week_ago,
        previous.stage as previous_stage,
        previous.stage_since as previous_stage_since,
        previous.last_purchase_date as previous_last_purchase_date,
        previous.won_back_on as previous_won_back_on,
        previous.danger_entered_on as previous_danger_entered_on,
        previous.danger_rules as previous_danger_rules,

    from known
    left join features on known.customer_id = features.customer_id
    left join risk on known.customer_id = risk.customer_id
    left join week_ago on known.customer_id = week_ago.customer_id
    left join previous on known.customer_id = previous.customer_id
    left join master on known.customer_id = master.customer_id

),

signals as (

    select
        *,
        -- Daily spend rates: the recent window against the scoring window (or tenure).
        window_purchase_days >= $established_purchase_days
            and recent_net_amount / $recent_days::double > $rising_spend_ratio
                * window_net_amount / least(tenure_days + 1, $window_days)::double
            as rising_spend,
        coalesce(risk >= $danger_risk, false) as risk_signal,
        -- Danger is entered from an active stage (any stage on the first run); the
        -- relationship ends (termination, interruption) only after danger.
        $first_run or previous_stage in ('socialization', 'growth', 'maturity', 'danger')
            as may_enter_danger,
        coalesce(
            observed_gaps = 0 and rhythm_percentile >= $socialization_percentile, false
        ) as overdue_signal,
        previous_last_purchase_date is null
            or last_purchase_date > previous_last_purchase_date as purchased_since,
        -- A purchase after termination or interruption wins the customer back.
        case
            when previous_stage in ('termination', 'interruption')
                and last_purchase_date > previous_last_purchase_date
                then last_purchase_date
            else previous_won_back_on
        end as won_back_on,

    from joined

),

rules as (

    select
        *,
        -- The risk model speaks for repeat buyers; a one-time buyer is judged by the
        -- wait for a second purchase, unless a return follows their only purchase.
        risk_signal and (observed_gaps > 0 or returned_after_last_purchase) as danger_signal,
        nullif(
            concat_ws(
                ',',
                case when risk_signal and (observed_gaps > 0 or returned_after_last_purchase)
                    then 'risk' end,
                case when overdue_signal then 'second_purchase_overdue' end,
                case when returned_after_last_purchase then 'returns' end
            ),
            ''
        ) as signals_seen,

    from signals

),

staged as (

    select
        *,
        -- Only a purchase ends termination or interruption; danger ends with a purchase
        -- or when the risk falls below $danger_exit_risk (hysteresis: no flickering).
        case
            when last_purchase_date is null then 'prospect'
            when previous_stage = 'interruption' and not purchased_since then 'interruption'
            -- A purchase since yesterday, even a late-arriving one dated weeks back,
            -- ends termination: it is a win-back below, never an interruption.
            when ($first_run or previous_stage = 'termination' and not purchased_since)
                and rhythm_percentile >= $interruption_percentile
                and silence_in_gaps >= $interruption_min_gaps
                and risk >= $termination_risk then 'interruption'
            when previous_stage = 'termination' and not purchased_since then 'termination'
            when ($first_run or previous_stage = 'danger')
                and silence_in_gaps >= $termination_min_gaps
                and risk >= $termination_risk then 'termination'
            -- Back after termination or interruption: a new relationship starts.
            when previous_stage in ('termination', 'interruption') then 'socialization'
            when may_enter_danger and (danger_signal or overdue_signal) then 'danger'
            when previous_stage = 'danger' and not purchased_since
                and (observed_gaps = 0 or coalesce(risk >= $danger_exit_risk, false))
                then 'danger'
            when first_purchase_date = last_purchase_date
                or last_purchase_date = won_back_on then 'socialization'
            when window_purchase_days >= $established_purchase_days
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
            when 'socialization' then case
                when last_purchase_date = won_back_on
                    then format('won back on {}', won_back_on)
                else format(
                    'first purchase on {}; {:.0f}% of returning customers had come back by now',
                    first_purchase_date, 100 * rhythm_percentile
                )
            end
            when 'maturity' then format(
                'established: {} purchase days in the window; risk {:.2f}',
                window_purchase_days, risk
            )
            when 'growth' then case
                when rising_spend then format('repeat buyer, spend rising; risk {:.2f}', risk)
                else format(
                    'repeat buyer, {} purchase days in the window; risk {:.2f}',
                    window_purchase_days, risk
                )
            end
            else concat_ws(
                '; ',
                format('no purchase for {} days', days_since_last_purchase),
                case
                    when observed_gaps = 0 then format(
                        '{:.0f}% of customers who came back for a second purchase had done so by now',
                        100 * rhythm_percentile
                    )
                    else format(
                        '{:.0f}% of this customer''s gaps were shorter (usual gap {:.0f} days)',
                        100 * rhythm_percentile, expected_gap_days
                    )
                end,
                format('risk {:.2f}', risk)
                    || case
                        when risk_week_ago is not null
                            then format(
                                ', {} from {:.2f} a week ago',
                                case when risk >= risk_week_ago then 'up' else 'down' end,
                                risk_week_ago
                            )
                        else ''
                    end,
                case
                    when returned_after_last_purchase then format(
                        'returned {:.2f} on {}, {} days after the last purchase',
                        recent_returned_amount::double,
                        last_return_date,
                        last_return_date - last_purchase_date
                    )
                end
            )
        end as stage_reason,
        -- The rules that hold today; on a day none does (the customer stays in danger
        -- until a purchase, or until the risk falls below the exit level), the last ones.
        case
            when stage = 'danger' then coalesce(
                signals_seen,
                case when previous_stage = 'danger' then previous_danger_rules end
            )
        end as danger_rules,
        case
            when stage in ('danger', 'termination', 'interruption')
                and previous_stage in ('danger', 'termination', 'interruption')
                then previous_danger_entered_on
            when stage = 'danger' then $as_of_date::date
        end as danger_entered_on,
        won_back_on,
        signup_date,
        first_purchase_date,
        last_purchase_date,
        days_since_last_purchase,
        window_purchase_days,
        observed_gaps,
        own_gap_days,
        expected_gap_days,
        silence_in_gaps,
        rhythm_percentile,
        round(risk, 4) as risk,
        round(risk_week_ago, 4) as risk_week_ago,
        $risk_source::varchar as risk_source,
        $horizon_days::integer as horizon_days,
        round(expected_purchases, 4) as expected_purchases,
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
