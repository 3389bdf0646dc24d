-- The publish step's contract checks of one date, per published table: how many ran,
-- how many failed, and whether the date was published or held back.
-- Grain: one row per published table.
--
-- Parameters:
--   $audit_file               the date's audit partition under paths.published/audit

with

audit as (

    select * from read_parquet($audit_file)

),

final as (

    select
        table_name,
        count(*) as checks,
        count(*) filter (where not passed) as checks_failed,
        coalesce(sum(failing_rows) filter (where not passed), 0) as failing_rows,
        string_agg(distinct check_name, ', ' order by check_name) filter (where not passed)
            as failed_checks,
        min(publish_status) as publish_status,

    from audit
    group by table_name

)

select * from final
order by table_name
