-- The lifecycle of a week before, when none was staged then: no row, the columns the
-- rules read.
select
    null::varchar as customer_id,
    null::double as risk,
limit 0
