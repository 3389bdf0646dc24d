"""Each customer's running purchase state as of a date, kept under ``paths.state``.

The state as of D is computed from the state as of D-1 plus a bounded number of
customer_days partitions (incremental), or from every order line up to D (full). Both
give the same bytes; a test holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipeline.config import Settings, late_span_days
from pipeline.declarations import build_intermediate, input_dates, run_model
from pipeline.duck import counted_over
from pipeline.lake import AS_OF_KEY, Lake, remove_partition
from pipeline.scoring.customer_days import build_customer_days
from pipeline.scoring.inputs import ingested_dates, register_order_lines
from pipeline.tables import CUSTOMER_DAYS, CUSTOMER_STATE, LEDGER

Mode = Literal["incremental", "full"]


@dataclass(frozen=True)
class StateReport:
    as_of_date: date
    mode: Mode
    customers: int


def state_file(settings: Settings, day: date) -> str:
    return str(Lake(settings.paths.state).partition_file(CUSTOMER_STATE, day, AS_OF_KEY))


def build_customer_state(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date, *, full: bool = False
) -> StateReport:
    """Write the customer state as of ``day``; incremental when the day before's exists.

    The caller holds the date's scoring lock and has built ``day``'s customer_days.
    """
    state = Lake(settings.paths.state)
    previous = state.partition_file(CUSTOMER_STATE, day - timedelta(days=1), AS_OF_KEY)
    window = settings.scoring.window_days
    params = {
        "as_of_date": day,
        "window_days": window,
        "late_span_days": late_span_days(settings.ingest),
    }
    mode: Mode
    lake = Lake(settings.paths.lake)
    if not full and _is_current(con, previous, lake, day - timedelta(days=1), window):
        mode = "incremental"
        _build_missing_customer_days(settings, day, params)
        query = "scoring/customer_state_from_previous"
    else:
        mode = "full"
        register_order_lines(con, lake, ingested_dates(lake, day))
        build_intermediate(con, settings, "scoring/int_customer_lines", params)
        query = "scoring/customer_state_from_history"
    target = run_model(con, settings, "scoring/customer_state", day, params, query=query)
    count = con.execute("select count(*) from read_parquet($path)", {"path": str(target)})
    customers = count.fetchall()[0][0]
    _prune(state, day, settings.scoring.state_retention_days)
    return StateReport(day, mode, int(customers))


def _is_current(
    con: duckdb.DuckDBPyConnection, state: Path, lake: Lake, as_of: date, window_days: int
) -> bool:
    """Whether a state exists, saw every date ingested up to its as-of date, and was
    counted over ``window_days``.

    A date ingested after the state was written (late, out of order, or re-ingested)
    makes it stale, as does another ``scoring.window_days``: the next date is then
    recomputed in full instead of built on it.
    """
    try:
        written = state.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    if not all(
        lake.partition_file(LEDGER, ingested).stat().st_mtime_ns <= written
        for ingested in ingested_dates(lake, as_of)
    ):
        return False
    # A state written before it kept its window is recomputed once; an empty one costs
    # little to recompute.
    return counted_over(con, state, "window_days") == window_days


def _build_missing_customer_days(settings: Settings, day: date, params: dict[str, Any]) -> None:
    """Build the customer_days partitions the incremental query reads (declared in
    sql/scoring/customer_state.toml) that an ingested date lacks: a lake scored for the
    first time."""
    lake = Lake(settings.paths.lake)
    ingested = set(ingested_dates(lake, day))
    for needed in input_dates(settings, "scoring/customer_state", "customer_days", day, params):
        if needed in ingested and not lake.partition_file(CUSTOMER_DAYS, needed).is_file():
            build_customer_days(settings, needed)


def _prune(state: Lake, day: date, retention_days: int) -> None:
    """Drop states older than the retention; re-running such a date recomputes in full."""
    oldest_kept = day - timedelta(days=retention_days)
    for as_of in state.partition_dates(CUSTOMER_STATE, AS_OF_KEY):
        if as_of < oldest_kept:
            remove_partition(
                state.partition_file(CUSTOMER_STATE, as_of, AS_OF_KEY), with_folder=True
            )
