"""Customer-day aggregates: one export date's order lines summed per customer and day."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from pipeline.config import Settings, late_span_days
from pipeline.declarations import build_intermediate, run_model
from pipeline.duck import connect, release
from pipeline.lake import AS_OF_KEY, Lake, remove_partition
from pipeline.scoring.inputs import register_order_lines, require_ingested
from pipeline.tables import CUSTOMER_DAYS, CUSTOMER_STATE, RECENT_ACTIVITY
from pipeline.workspace import workspace


def build_customer_days(settings: Settings, day: date) -> int:
    """Replace ``day``'s customer_days partition from its order lines; return its rows.

    When the partition's content changes (the date was re-ingested with other files),
    every state built from customer days (the customer state, the lifecycle's recent
    activity) from that date on is removed: it was computed from the old rows, and the
    next scoring or staging recomputes it.

    Raises:
        NotIngestedError: the date has no complete ingest.
    """
    lake = Lake(settings.paths.lake)
    require_ingested(lake, day)
    target = lake.partition_file(CUSTOMER_DAYS, day)
    with workspace(settings.paths.state, "customer-days", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            params = {"late_span_days": late_span_days(settings.ingest)}
            register_order_lines(con, lake, [day])
            build_intermediate(con, settings, "scoring/int_customer_lines", params)
            before = _digest(target)
            run_model(con, settings, "scoring/customer_days", day, params)
            count = con.execute(
                "select count(*) from read_parquet($path)", {"path": str(target)}
            ).fetchone()
        finally:
            release(con)
    if before is not None and before != _digest(target):
        invalidate_states_from(settings, day)
    return int(count[0]) if count else 0


def invalidate_states_from(settings: Settings, day: date) -> None:
    """Remove the states as of ``day`` and later (the customer state, the recent
    activity): their inputs changed."""
    state = Lake(settings.paths.state)
    for table in (CUSTOMER_STATE, RECENT_ACTIVITY):
        for as_of in state.partition_dates(table, AS_OF_KEY):
            if as_of >= day:
                remove_partition(state.partition_file(table, as_of, AS_OF_KEY), with_folder=True)


def _digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()
