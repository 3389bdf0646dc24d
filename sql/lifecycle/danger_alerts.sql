-- The day's danger alerts: one per customer entering danger on $as_of_date, ranked by
-- value at risk. The lake's danger_alerts table, one partition per as_of_date; the
-- outbox delivers each alert_id once. A customer who recovers and falls back enters a
-- new episode on another date, so gets a new alert_id.
-- Inputs: the view customer_lifecycle (the date's partition) and the bound lists of
-- the seed danger_actions ($action_keys 'rule|from_stage', $action_texts).
-- Priority: value at risk (trailing 12-month spend) times the risk.

with

lifecycle as (

    select * from customer_lifecycle

),

entries as (

    select
        *,
        -- The action is chosen by the signal: returns first (a concrete grievance),
        -- then an overdue second purchase or a rising risk (the silence).
        case
            when danger_rules like '%returns%' then 'returns'
            else 'gap'
        end as action_rule,

    from lifecycle
    where stage = 'danger'
        and previous_stage is distinct from 'danger'
        and (not $first_run or $alert_on_first_run)
        -- Only entries worth the CRM team's call: the customer still enters danger
        -- (customer_lifecycle, stage_transitions), without an alert.
        and greatest(window_net_amount, 0) >= $alert_min_value_at_risk

),

final as (

    select
        'danger-' || left(sha256(customer_id || '|' || $as_of_date::varchar), 24) as alert_id,
        $as_of_date::date as as_of_date,
        customer_id,
        previous_stage as from_stage,
        danger_rules as rules,
        stage_reason as reason,
        days_since_last_purchase,
        expected_gap_days,
        rhythm_percentile,
        risk,
        risk_week_ago,
        horizon_days,
        expected_purchases,
        window_purchase_days,
        recent_net_amount,
        recent_returned_amount,
        recent_return_lines,
        -- Trailing 12-month net spend: what the retailer stands to lose.
        greatest(window_net_amount, 0)::decimal(18, 2) as value_at_risk,
        segment,
        cluster_id,
        cluster_name,
        coalesce(
            $action_texts[
                list_position($action_keys, action_rule || '|' || coalesce(previous_stage, '*'))
            ],
            $action_texts[list_position($action_keys, action_rule || '|*')]
        )::varchar as suggested_action,
        row_number() over (
            order by greatest(window_net_amount, 0) * risk desc, customer_id
        )::integer as priority,

    from entries

)

select * from final
order by priority
