"""Stage every customer as of a date, record the day's transitions and danger alerts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline import atomic
from pipeline.alerts import enqueue
from pipeline.config import Settings
from pipeline.declarations import run_model
from pipeline.duck import connect, count_rows, release, rows
from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, Lake, write_partition
from pipeline.lifecycle import judge, recent
from pipeline.lifecycle.alive import AliveModel, alive_model
from pipeline.lifecycle.risk import (
    RiskModel,
    build_features,
    risk_model_in_force,
)
from pipeline.lifecycle.risk_model import risk_model_row
from pipeline.lifecycle.seeds import action_lookups
from pipeline.scoring.inputs import register_parquet
from pipeline.tables import (
    CUSTOMER_LIFECYCLE,
    CUSTOMER_SEGMENTS,
    CUSTOMER_STAGE_HISTORY,
    DANGER_ALERTS,
    RISK_MODEL,
    STAGE_COUNTS,
    STAGE_FLOWS,
    STAGE_TRANSITIONS,
)
from pipeline.timing import Timings
from pipeline.workspace import workspace

log = logging.getLogger(__name__)

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
    risk_source: str  # "model", or "rhythm_fallback" while the lake is too young
    risk_model_version: date
    risk_reason: str  # why the fallback stands in ("" with a model)
    horizon_days: int
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
            # The models' declarations name their lake inputs (the date's segments, the
            # day before's recent activity and the customer days entering and leaving
            # its window, the day before's stages, the week before's, the customer
            # master); building each registers them.
            params = _params(settings, day, first_run)
            with timings.phase("alive_model"):
                alive = alive_model(con, settings, day, params)
            with timings.phase("risk_model"):
                model, curve = risk_model_in_force(settings, day, alive)
            params |= model.sql_params()
            with timings.phase(recent.TABLE):
                recent.build(con, settings, day)
            with timings.phase("risk"):
                _register_risk(con, settings, day, model, curve, alive)
            with timings.phase(CUSTOMER_LIFECYCLE):
                lifecycle = run_model(con, settings, f"lifecycle/{CUSTOMER_LIFECYCLE}", day, params)
            params |= action_lookups()
            with timings.phase("derived"):
                for table in _DERIVED:
                    # A model's tests replace its view with what was written: read the
                    # written customer_lifecycle again.
                    register_parquet(con, CUSTOMER_LIFECYCLE, [str(lifecycle)])
                    run_model(con, settings, f"lifecycle/{table}", day, params)
            alerts = lake.partition_file(DANGER_ALERTS, day, AS_OF_KEY)
            with timings.phase("alerts_file"):
                alerts_file = _write_alerts_file(con, settings.paths.alerts, day, alerts)
            if model.version == day:
                # On the model schedule: judge a horizon ago by what happened since.
                with timings.phase("backtest"):
                    _backtest_if_possible(settings, day)
            write_partition(
                con.from_arrow(risk_model_row(settings, day, model)),
                lake.partition_file(RISK_MODEL, day, AS_OF_KEY),
            )
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
                risk_source=model.source,
                risk_model_version=model.version,
                risk_reason=model.reason,
                horizon_days=model.horizon_days,
                timings=timings.seconds,
            )
        finally:
            release(con)


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


def _params(settings: Settings, day: date, first_run: bool) -> dict[str, Any]:
    """What the lifecycle's SQL binds beyond its declared configuration sections."""
    return {"as_of_date": day, "first_run": first_run}


def _register_risk(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    model: RiskModel,
    curve: pa.Table,
    alive: AliveModel | None,
) -> None:
    """The views lifecycle_features and customer_risk: every buyer's features (the
    date's recent activity registered), their risk under ``model``, and the BTYD
    model's expected purchases and P(alive)."""
    con.register("gap_curve", curve)
    build_features(con, settings, day, model.population_gap_days, registered=(recent.TABLE,))
    features = con.table("lifecycle_features").to_arrow_table()
    count = features.num_rows
    expected = judge.expected_purchases(alive, features, model.horizon_days)
    alive_share = judge.p_alive(alive, features)
    risk = pa.table(
        {
            "customer_id": features.column("customer_id"),
            "risk": pa.array(model.predict(features), pa.float64()),
            "expected_purchases": _finite_or_null(expected, count),
            "p_alive": _finite_or_null(alive_share, count),
        }
    )
    con.register("customer_risk", risk)


def _backtest_if_possible(settings: Settings, day: date) -> None:
    from pipeline.lifecycle.backtest import backtest

    try:
        backtest(settings, day)
    except NotScoredError as reason:  # a young lake: nothing staged a horizon ago yet
        log.info("no backtest as of %s: %s", day, reason)


def _finite_or_null(values: npt.NDArray[np.float64] | None, count: int) -> pa.Array:
    """A BTYD figure per customer; null where there is no model or it is not finite."""
    if values is None:
        return pa.nulls(count, pa.float64())
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))


def _write_alerts_file(
    con: duckdb.DuckDBPyConnection, folder: Path, day: date, alerts: Path
) -> Path:
    """The day's alerts as CSV for the CRM team, replaced atomically (header only if none)."""
    target = folder / f"danger_alerts_{day:%Y-%m-%d}.csv"
    with atomic.replacing(target) as temporary:
        con.read_parquet(str(alerts)).order("priority").write_csv(str(temporary), header=True)
    return target


def _rows(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, Any]]:
    relation = con.read_parquet(str(path)).order("stage_order")
    return rows(relation)
