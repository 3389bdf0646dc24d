"""The report's figures: small aggregates of the lake up to the as-of date, by SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb

from pipeline import sql
from pipeline.config import Settings, late_span_days
from pipeline.declarations import declaration, describe, run_tests
from pipeline.duck import rows
from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, PARTITION_KEY, Lake
from pipeline.publish.audit import audit_file
from pipeline.tables import (
    CLUSTER_PROFILES,
    CUSTOMER_DAYS,
    CUSTOMER_LIFECYCLE,
    CUSTOMER_SEGMENTS,
    CUSTOMER_STAGE_HISTORY,
    DANGER_ALERTS,
    FILES,
    LEDGER,
    MODEL_KEY,
    QUARANTINE,
    SEGMENT_SUMMARY,
    STAGE_COUNTS,
    STAGE_FLOWS,
    STAGE_TRANSITIONS,
)

Rows = list[dict[str, Any]]

# The lake tables whose declared tests (sql/<layer>/<table>.toml) the report re-runs on
# the date's partition, in the order the daily run writes them.
CHECKED_MODELS = (
    f"scoring/{CUSTOMER_DAYS}",
    f"scoring/{CUSTOMER_SEGMENTS}",
    f"scoring/{SEGMENT_SUMMARY}",
    f"lifecycle/{CUSTOMER_LIFECYCLE}",
    f"lifecycle/{STAGE_TRANSITIONS}",
    f"lifecycle/{CUSTOMER_STAGE_HISTORY}",
    f"lifecycle/{DANGER_ALERTS}",
    f"lifecycle/{STAGE_COUNTS}",
    f"lifecycle/{STAGE_FLOWS}",
)
# Written by the publish step (pipeline/publish): its contract results per date.


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, as small lists of rows (no per-customer data but the
    top alerts)."""

    as_of_date: date
    previous_date: date | None  # the previous run: the last scored date before
    trend_dates: list[date]  # weekly, oldest first, the as-of date last
    history_start: date
    flow_start: date
    model_version: date | None
    headline: dict[str, Any]
    ingest_files: Rows
    quarantine_reasons: Rows
    ingest_days: Rows
    checks: Rows
    publish_audit: Rows | None  # None: the date is not published (yet)
    segment_changes: Rows
    segment_trend: Rows
    rf_grid: Rows
    pareto_curve: Rows
    clusters: Rows
    stage_history: Rows
    stage_flows: Rows
    danger_entries: Rows
    top_alerts: Rows
    risk_model: dict[str, Any] | None = None  # the risk model in force: source, horizon, figures
    backtest: Rows | None = None  # the newest risk_backtest partition up to the date
    backtest_date: date | None = None
    # The file ledger's rejected and skipped files of the date (ingest_files).
    files_not_ingested: Rows = field(default_factory=list)

    @property
    def trend_start_date(self) -> date | None:
        return self.trend_dates[0] if len(self.trend_dates) > 1 else None


def collect(settings: Settings, day: date, con: duckdb.DuckDBPyConnection) -> ReportData:
    """Read the figures of ``day`` from the lake partitions of dates up to ``day``.

    Raises:
        NotScoredError: the date has not been ingested, scored and staged.
    """
    lake = Lake(settings.paths.lake)
    options = settings.report
    files = _required_files(lake, day)
    scored = [d for d in lake.partition_dates(SEGMENT_SUMMARY, AS_OF_KEY) if d <= day]
    previous = scored[-2] if len(scored) > 1 else None
    weekly = {day - timedelta(days=7 * week) for week in range(options.trend_weeks + 1)}
    trend_dates = sorted(d for d in scored if d in weekly)
    history_start = day - timedelta(days=options.history_days - 1)
    flow_start = day - timedelta(days=options.flow_days - 1)
    staged = [d for d in lake.partition_dates(STAGE_COUNTS, AS_OF_KEY) if history_start <= d <= day]
    model_version = _model_version(con, files[CUSTOMER_SEGMENTS])
    change_dates = sorted({*trend_dates, *([previous] if previous else [])})
    segment_files = _files(lake, SEGMENT_SUMMARY, change_dates, AS_OF_KEY)

    def rows(model: str, params: Mapping[str, Any]) -> Rows:
        return _rows(con, f"reports/{model}", params)

    ingested = [d for d in lake.partition_dates(LEDGER) if history_start <= d <= day]
    quarantine = lake.partition_file(QUARANTINE, day)
    file_ledger = lake.partition_file(FILES, day)
    audit = audit_file(settings.paths.published, day)
    profiles = (
        lake.partition_file(CLUSTER_PROFILES, model_version, MODEL_KEY) if model_version else None
    )
    risk_model, backtest_date, backtest = _risk_figures(settings, con, lake, day)
    return ReportData(
        risk_model=risk_model,
        backtest=backtest,
        backtest_date=backtest_date,
        as_of_date=day,
        previous_date=previous,
        trend_dates=trend_dates,
        history_start=history_start,
        flow_start=flow_start,
        model_version=model_version,
        headline=rows(
            "report_headline",
            {
                "segment_summary_file": files[SEGMENT_SUMMARY],
                "lifecycle_file": files[CUSTOMER_LIFECYCLE],
                "customer_days_file": files[CUSTOMER_DAYS],
                "danger_alerts_file": files[DANGER_ALERTS],
            },
        )[0],
        ingest_files=rows("report_ingest_files", {"ledger_file": files[LEDGER]}),
        files_not_ingested=(
            rows("ingest_files_not_ingested", {"file_ledger_files": [str(file_ledger)]})
            if file_ledger.is_file()
            else []
        ),
        quarantine_reasons=(
            rows(
                "quarantine_reasons",
                {"quarantine_files": [str(quarantine)], "start_date": day, "end_date": day},
            )
            if quarantine.is_file()
            else []
        ),
        ingest_days=rows(
            "ingest_days",
            {
                "ledger_files": _files(lake, LEDGER, ingested),
                "start_date": history_start,
                "end_date": day,
            },
        ),
        checks=_checks(con, settings, lake, day),
        publish_audit=rows("report_publish_audit", {"audit_file": str(audit)})
        if audit is not None
        else None,
        segment_changes=rows(
            "report_segment_changes",
            {
                "segment_summary_files": segment_files,
                "as_of_date": day,
                "previous_date": previous,
                "trend_start_date": trend_dates[0] if len(trend_dates) > 1 else None,
            },
        ),
        segment_trend=rows(
            "report_segment_trend",
            {"segment_summary_files": _files(lake, SEGMENT_SUMMARY, trend_dates, AS_OF_KEY)},
        ),
        rf_grid=rows("report_rf_grid", {"segments_file": files[CUSTOMER_SEGMENTS]}),
        pareto_curve=rows("report_pareto_curve", {"segments_file": files[CUSTOMER_SEGMENTS]}),
        clusters=rows(
            "report_cluster_profiles",
            {"profiles_file": str(profiles), "segment_summary_file": files[SEGMENT_SUMMARY]},
        )
        if profiles is not None and profiles.is_file()
        else [],
        stage_history=rows(
            "report_stage_history",
            {"stage_counts_files": _files(lake, STAGE_COUNTS, staged, AS_OF_KEY)},
        ),
        stage_flows=_flows(con, lake, day, flow_start),
        danger_entries=rows(
            "report_danger_entries",
            {
                "danger_alerts_files": _files(lake, DANGER_ALERTS, staged, AS_OF_KEY),
                "staged_dates": staged,
            },
        ),
        top_alerts=rows(
            "report_top_alerts",
            {"danger_alerts_file": files[DANGER_ALERTS], "top_alerts": options.top_alerts},
        ),
    )


def _required_files(lake: Lake, day: date) -> dict[str, str]:
    """The date's partitions the report cannot do without."""
    needed = {
        LEDGER: (PARTITION_KEY, "ingest"),
        CUSTOMER_DAYS: (PARTITION_KEY, "score"),
        CUSTOMER_SEGMENTS: (AS_OF_KEY, "score"),
        SEGMENT_SUMMARY: (AS_OF_KEY, "score"),
        CUSTOMER_LIFECYCLE: (AS_OF_KEY, "lifecycle"),
        STAGE_COUNTS: (AS_OF_KEY, "lifecycle"),
        DANGER_ALERTS: (AS_OF_KEY, "lifecycle"),
    }
    found: dict[str, str] = {}
    for table, (key, step) in needed.items():
        path = lake.partition_file(table, day, key)
        if not path.is_file():
            raise NotScoredError(
                f"no report for {day}: {table} has no partition for it; "
                f"run `rfm-pipeline {step} --date {day}` (or `run`) first"
            )
        found[table] = str(path)
    return found


def _files(lake: Lake, table: str, days: list[date], key: str = PARTITION_KEY) -> list[str]:
    return [str(path) for path in lake.existing_partitions(table, days, key)]


def _model_version(con: duckdb.DuckDBPyConnection, segments: str) -> date | None:
    """The cluster model in force on the date, as recorded in its customer_segments."""
    result = con.execute(
        "select max(model_version) from read_parquet($file)", {"file": segments}
    ).fetchall()
    version = result[0][0]
    return version if isinstance(version, date) else None


def _flows(con: duckdb.DuckDBPyConnection, lake: Lake, day: date, start: date) -> Rows:
    days = [d for d in lake.partition_dates(STAGE_FLOWS, AS_OF_KEY) if start <= d <= day]
    files = _files(lake, STAGE_FLOWS, days, AS_OF_KEY)
    if not files:
        return []
    return _rows(con, "reports/report_stage_flows", {"stage_flows_files": files, "as_of_date": day})


def _checks(con: duckdb.DuckDBPyConnection, settings: Settings, lake: Lake, day: date) -> Rows:
    """The lake's declared tests, run again on the date's partitions (read only)."""
    params = {"as_of_date": day, "late_span_days": late_span_days(settings.ingest)}
    results: Rows = []
    for model in CHECKED_MODELS:
        spec = declaration(model)
        partition = lake.partition_file(spec.table, day, spec.partition_by)
        if not partition.is_file():
            results.append({"table": spec.table, "checks": 0, "failed": None, "failing": ""})
            continue
        outcomes = run_tests(con, model, partition, params)
        failing = sorted(describe(outcome) for outcome in outcomes if outcome.failing_rows)
        results.append(
            {
                "table": spec.table,
                "checks": len(outcomes),
                "failed": len(failing),
                "failing": ", ".join(failing),
            }
        )
    return results


def _rows(con: duckdb.DuckDBPyConnection, model: str, params: Mapping[str, Any]) -> Rows:
    relation = sql.relation(con, model, params)
    return rows(relation)


def _risk_figures(
    settings: Settings, con: duckdb.DuckDBPyConnection, lake: Lake, day: date
) -> tuple[dict[str, Any] | None, date | None, Rows | None]:
    """The risk model in force on ``day`` and the newest backtest up to it."""
    from pipeline.lifecycle.backtest import RISK_BACKTEST
    from pipeline.lifecycle.risk import RiskStore

    store = RiskStore(settings.paths.models)
    stored = store.newest_on_or_before(day)
    model = None
    if stored is not None:
        meta = stored.model
        model = {
            "version": meta.version,
            "source": meta.source,
            "reason": meta.reason,
            "horizon_days": meta.horizon_days,
            "danger_risk": meta.danger_risk,
            "termination_risk": meta.termination_risk,
            "figures": meta.figures,
        }
    dates = [d for d in lake.partition_dates(RISK_BACKTEST, AS_OF_KEY) if d <= day]
    if not dates:
        return model, None, None
    relation = con.read_parquet(str(lake.partition_file(RISK_BACKTEST, dates[-1], AS_OF_KEY)))
    return model, dates[-1], rows(relation)
