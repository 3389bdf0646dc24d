-- Stands in for earlier_order_lines when no earlier date is in the lake (a first ingest,
-- or ingest.dedup_lookback_days = 0): no rows, shaped like the staged lines and their
-- export date.

select *, null::date as export_date
from stg_sales_export_lines
limit 0
