-- The day before's lifecycle on the first run: no row, the columns the rules read.
select
    null::varchar as customer_id,
    null::varchar as stage,
    null::date as stage_since,
    null::date as last_purchase_date,
    null::date as won_back_on,
    null::date as danger_entered_on,
    null::varchar as danger_rules,
    null::date as signup_date,
limit 0
