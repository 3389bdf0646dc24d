"""Where every date stands, step by step: what ``rfm-pipeline status`` shows.

For each date any step has touched: its ingest (ingested, recorded as an empty day,
incomplete, or files rejected), whether it is scored, staged and published, and its
alerts queued, delivered and given up per channel. It names the folders it looked in,
and lists leftovers of interrupted runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from pipeline.config import Settings
from pipeline.ingest.status import LakeStatus, lake_status
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.publish.leftovers import Leftovers, find_leftovers
from pipeline.tables import CUSTOMER_LIFECYCLE, CUSTOMER_SEGMENTS, FILES, LEDGER

# A step's scratch folder of a date (pipeline/workspace.py), removed when the step ends.

# Ingest outcomes of a date.
INGESTED = "ingested"
EMPTY = "empty day"
INCOMPLETE = "incomplete"
NOT_INGESTED = "-"


@dataclass(frozen=True)
class DateStatus:
    """One date, step by step."""

    day: date
    ingest: str  # INGESTED, EMPTY, INCOMPLETE or NOT_INGESTED
    files: int
    rows_in: int
    rejected_files: int
    scored: bool
    staged: bool
    published: bool
    # Alerts of the date per status (queued, delivered, given_up), all channels.
    alerts: dict[str, int] = field(default_factory=dict)

    def steps(self) -> tuple[object, ...]:
        """What a run of equal dates shares in the summary (everything but the counts)."""
        return (self.ingest, self.rejected_files > 0, self.scored, self.staged, self.published)


@dataclass(frozen=True)
class PipelineStatus:
    lake: Path
    published: Path
    state: Path
    dates: list[DateStatus]
    ingest: LakeStatus
    current_published: date | None
    publish_number: int
    leftovers: Leftovers


def pipeline_status(settings: Settings, start: date, end: date) -> PipelineStatus:
    """Every date between ``start`` and ``end`` (inclusive) that any step touched."""
    from pipeline.publish.catalog import load_catalog

    lake = Lake(settings.paths.lake)
    ingest = lake_status(lake, start, end)
    ledger_days = {
        row["export_date"]: row for row in ingest.days if isinstance(row["export_date"], date)
    }
    recorded = set(lake.partition_dates(LEDGER))
    scored = set(lake.partition_dates(CUSTOMER_SEGMENTS, AS_OF_KEY))
    staged = set(lake.partition_dates(CUSTOMER_LIFECYCLE, AS_OF_KEY))
    catalog = load_catalog(settings.paths.published)
    published = set(catalog.entries(CUSTOMER_SEGMENTS))
    alerts = _alerts_by_date(settings)
    rejected = ledger_outcomes(lake, start, end).get("rejected", Counter())
    days = sorted(
        day
        for day in recorded | scored | staged | published | set(alerts)
        | set(ingest.incomplete_dates) | set(rejected)
        if start <= day <= end
    )  # fmt: skip
    dates = []
    for day in days:
        row = ledger_days.get(day)
        if day in ingest.incomplete_dates:
            outcome = INCOMPLETE
        elif row is not None and int(str(row["files"])) > 0:
            outcome = INGESTED
        elif day in recorded:
            outcome = EMPTY
        else:
            outcome = NOT_INGESTED
        dates.append(
            DateStatus(
                day=day,
                ingest=outcome,
                files=int(str(row["files"])) if row else 0,
                rows_in=int(str(row["rows_in"])) if row else 0,
                rejected_files=rejected.get(day, 0),
                scored=day in scored,
                staged=day in staged,
                published=day in published,
                alerts=alerts.get(day, {}),
            )
        )
    return PipelineStatus(
        lake=settings.paths.lake,
        published=settings.paths.published,
        state=settings.paths.state,
        dates=dates,
        ingest=ingest,
        current_published=catalog.as_of_date,
        publish_number=catalog.publish_number,
        leftovers=leftovers(settings),
    )


def ledger_outcomes(lake: Lake, start: date, end: date) -> dict[str, Counter[date]]:
    """Files per outcome of the file ledger (``ingest_files``: ingested, rejected,
    skipped) and date, of each date's latest ingest attempt."""
    days = [day for day in lake.partition_dates(FILES) if start <= day <= end]
    files = [str(path) for path in lake.existing_partitions(FILES, days)]
    if not files:
        return {}
    con = duckdb.connect()
    try:
        con.execute(
            "select outcome, export_date, count(*) from read_parquet($files,"
            " hive_partitioning = true, union_by_name = true)"
            " where outcome is not null group by all",
            {"files": files},
        )
        outcomes: dict[str, Counter[date]] = {}
        for outcome, day, count in con.fetchall():
            outcomes.setdefault(str(outcome), Counter())[day] += int(count)
        return outcomes
    finally:
        con.close()


def _alerts_by_date(settings: Settings) -> dict[date, dict[str, int]]:
    from pipeline.alerts.outbox import deliveries

    counts: dict[date, dict[str, int]] = {}
    for delivery in deliveries(settings):
        per_status = counts.setdefault(delivery.as_of_date, {})
        per_status[delivery.status] = per_status.get(delivery.status, 0) + 1
    return counts


def leftovers(settings: Settings) -> Leftovers:
    """What interrupted runs left behind: scratch folders, temporary and orphan files,
    and targets behind the manifest (the publish step's own report of them)."""
    return find_leftovers(settings)
