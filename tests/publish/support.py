"""A small published-ready lake (the demo generator, every step run for each date) and
readers of what each target serves."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql as pg

from pipeline import steps
from pipeline.config import PublishConfig, Settings
from pipeline.demo.generate import generate
from pipeline.publish.catalog import load_catalog
from tests.support import with_paths

START = date(2025, 1, 1)
DAYS = 40
SECRET = "test-pseudonym-secret"


def day(n: int) -> date:
    """The n-th date of the demo history (0 = the first)."""
    return START + timedelta(days=n)


def build_history(root: Path, customers: int = 300, days: int = DAYS) -> Path:
    """Generate the demo's exports and run every step of the daily run but the publish
    for every date: the same steps as ``rfm-pipeline run`` (the crash tests re-run dates
    with it and expect the same bytes), the cluster model refitted on the same dates."""
    generate(root, start=START, days=days, customers=customers, seed=5)
    settings = with_paths(Settings(), root)
    for n in range(days):
        for name in steps.DAILY_STEPS:
            if name != "publish":
                steps.run_step(settings, name, day(n))
    return root


def settings_from(template: Path, root: Path, postgres_url: str = "", **publish: Any) -> Settings:
    """Settings over a copy of the template's lake and models, publishing under ``root``."""
    shutil.copytree(template / "lake", root / "lake")
    shutil.copytree(template / "models", root / "models")
    config = PublishConfig(**({"key_secret": SECRET, "postgres_url": postgres_url} | publish))
    return with_paths(Settings(), root).model_copy(update={"publish": config})


@dataclass(frozen=True)
class Served:
    """One target's view of the current version."""

    as_of_date: date
    segments_rows: int
    segments_dates: tuple[date, ...]
    lifecycle_dates: tuple[date, ...]
    latest_stage_counts: date
    stage_count_days: int


# One statement: PostgreSQL evaluates it on one snapshot, DuckDB on one file.
CONSISTENCY_QUERY = """
select
    (select as_of_date from {s}publish_info),
    (select count(*) from {s}customer_segments),
    (select string_agg(distinct cast(as_of_date as varchar), ',') from {s}customer_segments),
    (select string_agg(distinct cast(as_of_date as varchar), ',') from {s}customer_lifecycle),
    (select max(as_of_date) from {s}stage_counts),
    (select count(distinct as_of_date) from {s}stage_counts)
"""


def _served(row: tuple[Any, ...]) -> Served:
    return Served(
        as_of_date=row[0],
        segments_rows=int(row[1]),
        segments_dates=tuple(date.fromisoformat(d) for d in (row[2] or "").split(",") if d),
        lifecycle_dates=tuple(date.fromisoformat(d) for d in (row[3] or "").split(",") if d),
        latest_stage_counts=row[4],
        stage_count_days=int(row[5]),
    )


def served_by_duckdb(serving_file: Path) -> Served:
    con = duckdb.connect(str(serving_file), read_only=True)
    try:
        return _served(con.execute(CONSISTENCY_QUERY.format(s="")).fetchall()[0])
    finally:
        con.close()


def served_by_postgres(target: str | psycopg.Connection) -> Served:
    """What PostgreSQL serves, through a URL or an open connection."""
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            return served_by_postgres(conn)
    row = target.execute(pg.SQL(CONSISTENCY_QUERY.format(s="rfm."))).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return _served(row)


def expected_rows(settings: Settings) -> dict[date, int]:
    """customer_segments rows per published date, from the manifest."""
    catalog = load_catalog(settings.paths.published)
    return {d: e.rows for d, e in catalog.entries("customer_segments").items()}


def assert_whole(served: Served, rows_by_date: dict[date, int], published_days: list[date]) -> None:
    """What a reader saw is one whole published version."""
    as_of = served.as_of_date
    assert as_of in rows_by_date, f"serving {as_of}, never published"
    assert served.segments_dates == (as_of,), served
    assert served.lifecycle_dates == (as_of,), served
    assert served.segments_rows == rows_by_date[as_of], served
    assert served.latest_stage_counts == as_of, served
    assert served.stage_count_days == len([d for d in published_days if d <= as_of]), served
