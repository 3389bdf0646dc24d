-- Every stage episode of every customer, closed and open: valid_from inclusive,
-- valid_to exclusive and null while the episode is open. A view over the published
-- tables, created the same in the serving DuckDB file and in PostgreSQL.
select
    customer_key,
    stage,
    valid_from,
    valid_to,
    days_in_stage,
    next_stage
from customer_stage_history
union all
select
    customer_key,
    stage,
    stage_since as valid_from,
    cast(null as date) as valid_to,
    cast(null as bigint) as days_in_stage,
    cast(null as varchar) as next_stage
from customer_lifecycle
