-- The customer master of a date without one: no row.
select
    null::varchar as customer_id,
    null::date as signup_date,
limit 0
