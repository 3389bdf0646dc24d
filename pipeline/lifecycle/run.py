"""Stage every customer as of a date, record the day's transitions and danger alerts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql
from pipeline.alerts import enqueue
from pipeline.checks import check_partition
from pipeline.config import Settings
from pipeline.duck import connect, count_rows
from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, Lake, write_partition
from pipeline.lifecycle.alive import NO_MODEL, alive_model
from pipeline.lifecycle.seeds import action_lookups
from pipeline.scoring.inputs import date_range, register_parquet
from pipeline.scoring.run import CUSTOMER_SEGMENTS
from pipeline.timing import Timings
from pipeline.workspace import workspace

CUSTOMER_LIFECYCLE = "customer_lifecycle"
STAGE_TRANSITIONS = "stage_transitions"
CUSTOMER_STAGE_HISTORY = "customer_stage_history"
DANGER_ALERTS = "danger_alerts"
STAGE_COUNTS = "stage_counts"
STAGE_FLOWS = "stage_flows"
CUSTOMER_MASTER = "customer_master"
CUSTOMER_DAYS = "customer_days"
# Written after customer_lifecycle, from it (and the day before's).
_DERIVED = (STAGE_TRANSITIONS, CUSTOMER_STAGE_HISTORY, DANGER_ALERTS, STAGE_COUNTS, STAGE_FLOWS)


@dataclass(frozen=True)
class LifecycleReport:
    """What staging a date did."""

    as_of_date: date
    first_run: bool
    stage_counts: list[dict[str, Any]]
    transitions: int
    alerts: int
    alerts_file: Path
    queued: int  # alerts newly queued for delivery (0 without a channel, or on a re-run)
    population_gap_days: float
    timings: dict[str, float]


def stage_date(settings: Settings, day: date) -> LifecycleReport:
    """Write ``day``'s customer_lifecycle and the tables derived from it.

    Reads the date's customer_segments and the day before's customer_lifecycle: stages
    depend on the day before only through the previous stage (transitions, win-backs,
    danger episodes), so re-running a date with the same inputs gives the same bytes.

    Raises:
        NotScoredError: ``day`` is not scored, or an earlier date was staged but the
            day before was not (stage dates in order; the first date starts afresh).
    """
    lake = Lake(settings.paths.lake)
    segments = lake.partition_file(CUSTOMER_SEGMENTS, day, AS_OF_KEY)
    if not segments.is_file():
        raise NotScoredError(f"{day} is not scored: run `rfm-pipeline score --date {day}` first")
    previous = _previous_lifecycle(lake, day)
    first_run = previous is None
    timings = Timings()
    with workspace(settings.paths.state, "lifecycle", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            _register_inputs(con, settings, lake, day, segments, previous)
            params = _params(settings, day, first_run)
            params |= _population(con, params)
            with timings.phase("alive_model"):
                model = alive_model(con, settings, day, params)
            params |= model.sql_params() if model else NO_MODEL
            lifecycle = lake.partition_file(CUSTOMER_LIFECYCLE, day, AS_OF_KEY)
            with timings.phase(CUSTOMER_LIFECYCLE):
                write_partition(
                    sql.relation(con, f"lifecycle/{CUSTOMER_LIFECYCLE}", params), lifecycle
                )
                check_partition(con, CUSTOMER_LIFECYCLE, lifecycle, params)
            params |= action_lookups(con)
            with timings.phase("derived"):
                for table in _DERIVED:
                    # The check replaced the view with the written partition: read that.
                    register_parquet(con, CUSTOMER_LIFECYCLE, [str(lifecycle)])
                    target = lake.partition_file(table, day, AS_OF_KEY)
                    write_partition(sql.relation(con, f"lifecycle/{table}", params), target)
                    check_partition(con, table, target, params)
            alerts = lake.partition_file(DANGER_ALERTS, day, AS_OF_KEY)
            with timings.phase("alerts_file"):
                alerts_file = _write_alerts_file(con, settings.paths.alerts, day, alerts)
            # Queued for the optional channels; re-running the date queues nothing twice.
            queued = enqueue(settings, day, alerts)
            return LifecycleReport(
                as_of_date=day,
                first_run=first_run,
                stage_counts=_rows(con, lake.partition_file(STAGE_COUNTS, day, AS_OF_KEY)),
                transitions=count_rows(con, lake.partition_file(STAGE_TRANSITIONS, day, AS_OF_KEY)),
                alerts=count_rows(con, alerts),
                alerts_file=alerts_file,
                queued=queued,
                population_gap_days=float(params["population_gap_days"]),
                timings=timings.seconds,
            )
        finally:
            con.close()


def _previous_lifecycle(lake: Lake, day: date) -> Path | None:
    """The day before's partition; None on the first run (no earlier date staged)."""
    previous = lake.partition_file(CUSTOMER_LIFECYCLE, day - timedelta(days=1), AS_OF_KEY)
    if previous.is_file():
        return previous
    earlier = [
        staged for staged in lake.partition_dates(CUSTOMER_LIFECYCLE, AS_OF_KEY) if staged < day
    ]
    if earlier:
        raise NotScoredError(
            f"the lifecycle of {day - timedelta(days=1)} is missing (last staged: {earlier[-1]}):"
            " stage the dates in order, e.g. with `rfm-pipeline backfill`"
        )
    return None


def _register_inputs(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    lake: Lake,
    day: date,
    segments: Path,
    previous: Path | None,
) -> None:
    register_parquet(con, CUSTOMER_SEGMENTS, [str(segments)])
    if previous is None:
        sql.relation(con, "lifecycle/no_previous_lifecycle").create_view(
            "previous_customer_lifecycle", replace=True
        )
    else:
        register_parquet(con, "previous_customer_lifecycle", [str(previous)])
    master = lake.partition_file(CUSTOMER_MASTER, day)
    if master.is_file():
        register_parquet(con, CUSTOMER_MASTER, [str(master)])
    else:
        sql.relation(con, "lifecycle/no_customer_master").create_view(CUSTOMER_MASTER, replace=True)
    # Lines of the recent window's days arrive in its exports (never before their day).
    window = date_range(day - timedelta(days=settings.lifecycle.recent_days - 1), day)
    days_files = [str(path) for path in lake.existing_partitions(CUSTOMER_DAYS, window)]
    if not days_files:
        raise NotScoredError(f"no {CUSTOMER_DAYS} partition up to {day}: score the date first")
    register_parquet(con, CUSTOMER_DAYS, days_files)


def _params(settings: Settings, day: date, first_run: bool) -> dict[str, Any]:
    rules = settings.lifecycle
    return {
        "as_of_date": day,
        "first_run": first_run,
        "alert_on_first_run": rules.alert_on_first_run,
        "window_days": settings.scoring.window_days,
        "recent_days": rules.recent_days,
        "danger_gap_multiple": rules.danger_gap_multiple,
        "danger_min_gap_days": rules.danger_min_gap_days,
        "termination_gap_multiple": rules.termination_gap_multiple,
        "churn_horizon_days": rules.churn_horizon_days,
        "prior_gaps": rules.prior_gaps,
        "population_gap_quantile": rules.population_gap_quantile,
        "established_purchase_days": rules.established_purchase_days,
        "maturity_tenure_days": rules.maturity_tenure_days,
        "rising_spend_ratio": rules.rising_spend_ratio,
        "spend_decline_ratio": rules.spend_decline_ratio,
        "gap_min_observed_gaps": rules.gap_min_observed_gaps,
        "returns_within_days": rules.returns_within_days,
        "returns_min_silence_days": rules.returns_min_silence_days,
        "returns_gap_multiple": rules.returns_gap_multiple,
        "returns_ratio": rules.returns_ratio,
        "returns_min_lines": rules.returns_min_lines,
        # Without a single repeat buyer, a one-purchase customer is judged against the
        # churn horizon: termination comes no later than interruption would.
        "fallback_gap_days": rules.churn_horizon_days / rules.termination_gap_multiple,
    }


def _population(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> dict[str, Any]:
    relation = sql.relation(con, "lifecycle/lifecycle_population", params)
    return dict(zip(relation.columns, relation.fetchall()[0], strict=True))


def _write_alerts_file(
    con: duckdb.DuckDBPyConnection, folder: Path, day: date, alerts: Path
) -> Path:
    """The day's alerts as CSV for the CRM team, replaced atomically (header only if none)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"danger_alerts_{day:%Y-%m-%d}.csv"
    # Beside the target, so the rename stays on one filesystem (and is atomic).
    temporary = folder / f".{target.name}.partial"
    con.read_parquet(str(alerts)).order("priority").write_csv(str(temporary), header=True)
    os.replace(temporary, target)
    return target


def _rows(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, Any]]:
    relation = con.read_parquet(str(path)).order("stage_order")
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
