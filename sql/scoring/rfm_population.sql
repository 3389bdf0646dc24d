-- The scored population as of a date in one row: what every customer's scores are
-- measured against. The step binds these figures into customer_segments, which then
-- reads each customer once, in order, with no join and no sort.
-- Input: the view customer_features.
-- Quintile thresholds: a customer's score is 1 + the fifth of customers strictly worse,
-- i.e. 1 + the number of s in 1..4 for which at least k_s = ceil(s x n / 5) customers
-- are strictly worse. That holds exactly when the value is better than the k_s-th worst
-- value, so the four k_s-th worst values are all a score needs. Equal values therefore
-- always get equal scores.
-- Means and variances are summed as decimals: exact, whatever the order of threads.

with

customer_features as (

    select * from customer_features

),

population as (

    select
        count(*) as customers,
        sum(recency_days) as sum_recency,
        sum(frequency) as sum_frequency,
        sum(monetary) as sum_monetary,
        sum(log_recency) / count(*) as mean_log_recency,
        sum(log_frequency) / count(*) as mean_log_frequency,
        sum(log_monetary) / count(*) as mean_log_monetary,
        sqrt(greatest(sum(log_recency * log_recency) / count(*)
            - (sum(log_recency) / count(*)) ^ 2, 0)) as sd_log_recency,
        sqrt(greatest(sum(log_frequency * log_frequency) / count(*)
            - (sum(log_frequency) / count(*)) ^ 2, 0)) as sd_log_frequency,
        sqrt(greatest(sum(log_monetary * log_monetary) / count(*)
            - (sum(log_monetary) / count(*)) ^ 2, 0)) as sd_log_monetary,

    from customer_features

),

fifths as (

    select
        fifth,
        (fifth * population.customers + 4) // 5 as worse_needed,

    from range(1, 5) as fifths(fifth)
    cross join population

),

-- How many customers are at or worse than each distinct value (recency: more days is
-- worse; frequency and monetary: less is worse).
recency_values as (

    select
        recency_days as value,
        sum(count(*)) over (order by recency_days desc) as at_or_worse,

    from customer_features
    group by recency_days

),

frequency_values as (

    select
        frequency as value,
        sum(count(*)) over (order by frequency) as at_or_worse,

    from customer_features
    group by frequency

),

monetary_values as (

    select
        monetary as value,
        sum(count(*)) over (order by monetary) as at_or_worse,

    from customer_features
    group by monetary

),

-- The k_s-th worst value for s = 1..4.
thresholds as (

    select
        list(
            (select max(value) from recency_values where at_or_worse >= worse_needed)
            order by fifth
        ) as recency_thresholds,
        list(
            (select min(value) from frequency_values where at_or_worse >= worse_needed)
            order by fifth
        ) as frequency_thresholds,
        list(
            (select min(value) from monetary_values where at_or_worse >= worse_needed)
            order by fifth
        ) as monetary_thresholds,

    from fifths

)

select * from population
cross join thresholds
