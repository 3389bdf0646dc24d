"""Build small purchase histories through the real ingest, for scoring tests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pipeline.config import ScoringConfig, Settings
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, read_lake, write_csv

STATUS = {"sale": "completed", "return": "returned", "cancellation": "cancelled"}
# The 11 named segments (docs/scoring.md).
SEGMENTS = {
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Cannot Lose Them",
    "Hibernating",
    "Lost",
}


@dataclass(frozen=True)
class Line:
    """One order line: exported on ``export_day``; ordered on ``ordered`` (default: then)."""

    export_day: date
    order_id: str
    customer_id: str  # "" for a guest
    amount: str
    kind: str = "sale"
    ordered: date | None = None
    line_id: int = 1


def with_window(settings: Settings, window_days: int, state_retention_days: int = 3660) -> Settings:
    """``settings`` with another window, keeping every daily state by default."""
    scoring = ScoringConfig(window_days=window_days, state_retention_days=state_retention_days)
    return settings.model_copy(update={"scoring": scoring})


def ingest_history(settings: Settings, lines: list[Line], first: date, last: date) -> None:
    """Write each day's export (header only when it has no line) and ingest it."""
    by_day: dict[date, list[str]] = defaultdict(list)
    for line in lines:
        ordered = line.ordered or line.export_day
        by_day[line.export_day].append(
            f"{line.order_id},{line.line_id},{line.customer_id},{ordered} 12:00:00,P1,1,"
            f"{line.amount},{line.amount},CNY,{STATUS[line.kind]}"
        )
    day = first
    while day <= last:
        name = f"sales_{day:%Y%m%d}.csv"
        write_csv(settings.paths.incoming / name, [WEB_HEADER, *by_day.get(day, [])])
        ingest_date(settings, day)
        day += timedelta(days=1)


def segments_of(settings: Settings, day: date) -> dict[str, dict[str, object]]:
    """customer_segments as of ``day``, by customer id."""
    rows = read_lake(settings, "customer_segments")
    return {str(row["customer_id"]): row for row in rows if row["as_of_date"] == day}


def write_late_uploads(incoming: Path, start: date, days: int, customers: int = 30) -> int:
    """Extra exports (``sales_YYYYMMDD_late.csv``) whose lines arrive one or two days late.

    Customers ``L001``... buy on a regular rhythm; every third purchase day some of the
    day's lines come a day or two late, and sometimes a late line repeats a purchase day
    that an earlier export already brought. What the demo generator does not produce.
    Returns the number of lines written.
    """
    files: dict[date, list[str]] = defaultdict(list)
    written = 0
    for number in range(1, customers + 1):
        customer = f"L{number:03d}"
        for offset in range(number % 5, days, 2 + number % 4):
            day = start + timedelta(days=offset)
            lateness = (offset + number) % 3  # 0 on time, 1 or 2 days late
            export = min(day + timedelta(days=lateness), start + timedelta(days=days - 1))
            amount = 10 + (number * 7 + offset) % 90
            order = f"{customer}-{offset}"
            files[export].append(
                f"{order},1,{customer},{day} 20:00:00,P1,1,{amount},{amount},CNY,completed"
            )
            written += 1
            if lateness and offset % 2:  # the rest of the day's basket arrived on time
                files[day].append(f"{order}b,1,{customer},{day} 09:00:00,P2,1,5,5,CNY,completed")
                written += 1
    for export, lines in files.items():
        write_csv(incoming / f"sales_{export:%Y%m%d}_late.csv", [WEB_HEADER, *lines])
    return written
