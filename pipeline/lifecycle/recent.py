"""Each customer's activity in the lifecycle's recent window, kept under ``paths.state``.

The activity as of D comes from the activity as of D-1 and a bounded number of
customer_days partitions (incremental), or from the window's customer days (full). Both
give the same rows (tests/lifecycle/test_recent_activity.py), so a date's features do
not depend on which was used. The daily step keeps it; the risk model's backtest runs
the full query for its past cut-offs (:func:`build_as_of`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb

from pipeline.config import Settings, late_span_days
from pipeline.declarations import build_unwritten, input_dates, run_model
from pipeline.duck import counted_over
from pipeline.lake import AS_OF_KEY, Lake, remove_partition
from pipeline.scoring.inputs import register_parquet
from pipeline.tables import RECENT_ACTIVITY

MODEL = f"lifecycle/{RECENT_ACTIVITY}"
TABLE = RECENT_ACTIVITY  # also the view lifecycle_features reads
INCREMENTAL = "lifecycle/recent_activity_from_previous"
FULL = "lifecycle/recent_activity_from_days"
# The incremental query reads only the day before's activity: older ones are dropped
# (re-running an older date recomputes it from its window, at the cost of a day).
_KEPT_DAYS = 2

Mode = Literal["incremental", "full"]


@dataclass(frozen=True)
class RecentActivity:
    as_of_date: date
    mode: Mode
    path: Path


def build(con: duckdb.DuckDBPyConnection, settings: Settings, day: date) -> RecentActivity:
    """Write ``day``'s recent activity and register it as the view ``recent_activity``;
    incremental when the day before's is current (:func:`_is_current`)."""
    state = Lake(settings.paths.state)
    params = {"late_span_days": late_span_days(settings.ingest)}
    previous = state.partition_file(TABLE, day - timedelta(days=1), AS_OF_KEY)
    mode: Mode = "incremental" if _is_current(con, settings, previous) else "full"
    query = INCREMENTAL if mode == "incremental" else FULL
    target = run_model(con, settings, MODEL, day, params, query=query)
    register_parquet(con, TABLE, [str(target)])
    _prune(state, day)
    return RecentActivity(day, mode, target)


def build_as_of(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    *,
    customers: str | None = None,
    registered: Collection[str] = (),
) -> None:
    """The temporary table ``recent_activity`` as of ``day`` from the window's customer
    days (its full query), not written: for a past cut-off. ``customers`` and
    ``registered`` as :func:`pipeline.declarations.build_intermediate` takes them."""
    build_unwritten(
        con,
        settings,
        MODEL,
        day,
        {"late_span_days": late_span_days(settings.ingest)},
        query=FULL,
        customers=customers,
        registered=registered,
    )


def window_dates(settings: Settings, day: date) -> list[date]:
    """The customer_days partitions the full query reads as of ``day``."""
    return input_dates(settings, MODEL, "customer_days", day, {}, FULL)


def _is_current(con: duckdb.DuckDBPyConnection, settings: Settings, previous: Path) -> bool:
    """Whether the day before's activity exists and was counted over today's window.

    A customer_days partition whose content changes removes the activities from its
    date on (:func:`pipeline.scoring.customer_days.invalidate_states_from`), so one that
    exists saw the customer days as they are.
    """
    if not previous.is_file():
        return False
    # An empty activity says nothing of its window: counting today's is cheap then.
    return counted_over(con, previous, "recent_days") == settings.lifecycle.recent_days


def _prune(state: Lake, day: date) -> None:
    oldest_kept = day - timedelta(days=_KEPT_DAYS - 1)
    for as_of in state.partition_dates(TABLE, AS_OF_KEY):
        if as_of < oldest_kept:
            remove_partition(state.partition_file(TABLE, as_of, AS_OF_KEY), with_folder=True)
