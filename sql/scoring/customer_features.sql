-- The RFM profile of every scored customer as of $as_of_date, and the log-scaled
-- features that K-means and the weighted score standardize.
-- Grain: one row per customer with at least one purchase day up to the date (guests and
-- customers whose only lines are returns are not scored). Key: customer_id.
-- Input: the view customer_state (as of the date).
-- recency_days: days since the last purchase day, over all history. frequency: purchase
-- days in the window (several orders on one day count once). monetary: net spend in the
-- window, returns netted, cancellations excluded; negative when returns outweigh sales.

with

customer_state as (

    select * from customer_state

),

profiles as (

    select
        customer_id,
        first_purchase_date,
        last_purchase_date,
        ($as_of_date::date - last_purchase_date)::integer as recency_days,
        window_purchase_days::integer as frequency,
        round(window_net_amount, 2)::decimal(18, 2) as monetary,
        ($as_of_date::date - first_purchase_date)::integer as tenure_days,
        round(window_returned_amount, 2)::decimal(18, 2) as returned_amount,
        round(lifetime_net_amount, 2)::decimal(18, 2) as lifetime_net_spend,

    from customer_state
    where first_purchase_date is not null

),

-- Log scale tames the long tails of F and M; what K-means and the weighted score use.
features as (

    select
        *,
        ln(1 + recency_days)::decimal(18, 12) as log_recency,
        ln(1 + frequency)::decimal(18, 12) as log_frequency,
        ln(1 + greatest(monetary, 0))::decimal(18, 12) as log_monetary,

    from profiles

)

select * from features
