"""The lifecycle's recent activity kept day by day equals the one counted from its window.

The history is the demo generator's exports (returns, guests, re-sent files) over 45
days, plus exports whose lines arrive one or two days late, some repeating a purchase
day an earlier export brought; with a 14-day window so that many days enter and leave
it. The two queries agree row for row on hand-worked rows in
sql/lifecycle/recent_activity.toml; here the kept state must hold the same rows as the
window's count on every date. (Rows, not bytes: DuckDB's Parquet writer marks the key
column required or optional by how the query produced it, though it holds the same
values. What the lifecycle writes from it is the same bytes: tests/test_steps.py.)
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.config import PathsConfig, Settings
from pipeline.demo.generate import generate
from pipeline.ingest.run import ingest_date
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.lifecycle import recent
from pipeline.scoring.customer_days import build_customer_days
from tests.scoring.history import write_late_uploads
from tests.support import with_paths

START = date(2025, 3, 1)
DAYS = 45
WINDOW = 14


def _dates(first: date, count: int) -> list[date]:
    return [first + timedelta(days=offset) for offset in range(count)]


def _with_recent_days(settings: Settings, days: int) -> Settings:
    lifecycle = settings.lifecycle.model_copy(update={"recent_days": days})
    return settings.model_copy(update={"lifecycle": lifecycle})


def _elsewhere(settings: Settings, folder: Path) -> Settings:
    """The same lake, another state folder: no day before's activity there."""
    paths = settings.paths.model_copy(update={"state": folder})
    return settings.model_copy(update={"paths": paths})


def _rows(path: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        return con.execute("select * from read_parquet($path)", {"path": str(path)}).fetchall()
    finally:
        con.close()


def _build(settings: Settings, day: date) -> recent.RecentActivity:
    con = duckdb.connect()
    try:
        built = recent.build(con, settings, day)
        # Registered for lifecycle_features, as the step reads it.
        assert con.execute("select count(*) from recent_activity").fetchall()[0][0] >= 0
        return built
    finally:
        con.close()


@pytest.fixture(scope="module")
def history(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, dict[date, list[tuple[object, ...]]]]:
    """Every date's customer days, and its recent activity built day after day (the
    rows of each, read before the next date prunes it)."""
    root = tmp_path_factory.mktemp("recent")
    generate(root, start=START, days=DAYS, customers=250, seed=5)
    write_late_uploads(root / "incoming", START, DAYS)
    settings = _with_recent_days(with_paths(Settings(), root), WINDOW)
    kept: dict[date, list[tuple[object, ...]]] = {}
    modes = []
    for day in _dates(START, DAYS):
        ingest_date(settings, day)
        build_customer_days(settings, day)
        built = _build(settings, day)
        modes.append(built.mode)
        kept[day] = _rows(built.path)
    assert modes == ["full"] + ["incremental"] * (DAYS - 1)
    return settings, kept


def test_the_kept_activity_equals_the_windows_count_on_every_date(
    history: tuple[Settings, dict[date, list[tuple[object, ...]]]], tmp_path: Path
) -> None:
    settings, kept = history
    for day in _dates(START, DAYS):
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
        built = _build(_elsewhere(settings, tmp_path / "state"), day)
        assert built.mode == "full"
        assert _rows(built.path) == kept[day], day


def test_only_the_day_before_is_kept(
    history: tuple[Settings, dict[date, list[tuple[object, ...]]]],
) -> None:
    settings, _ = history
    state = Lake(settings.paths.state)
    end = START + timedelta(days=DAYS - 1)
    assert state.partition_dates(recent.TABLE, AS_OF_KEY) == [end - timedelta(days=1), end]
    # The pruned dates' folders go too: listing the state costs what is kept.
    assert len(list(state.table_dir(recent.TABLE).iterdir())) == 2


def test_a_longer_window_is_not_built_on_a_shorter_one(
    history: tuple[Settings, dict[date, list[tuple[object, ...]]]], tmp_path: Path
) -> None:
    """Changing lifecycle.recent_days: the day before's activity was counted over the
    old window, so the date is counted from the new one."""
    settings, _ = history
    state = tmp_path / "state"
    shutil.copytree(settings.paths.state, state)
    wider = _with_recent_days(_elsewhere(settings, state), WINDOW + 7)
    end = START + timedelta(days=DAYS - 1)

    built = _build(wider, end)

    assert built.mode == "full"
    shutil.rmtree(tmp_path / "fresh", ignore_errors=True)
    fresh = _build(_elsewhere(wider, tmp_path / "fresh"), end)
    assert _rows(built.path) == _rows(fresh.path)


def test_changed_customer_days_remove_the_activity_built_on_them(
    tmp_path: Path, history: tuple[Settings, dict[date, list[tuple[object, ...]]]]
) -> None:
    """A date re-ingested with other lines: its customer days change, so the activity
    from that date on is dropped and the next date is counted from its window."""
    source, _ = history
    root = tmp_path / "copy"
    shutil.copytree(source.paths.lake.parent, root)
    settings = _with_recent_days(with_paths(Settings(), root), WINDOW)
    assert PathsConfig.under(root).state == settings.paths.state
    end = START + timedelta(days=DAYS - 1)
    export = sorted(settings.paths.incoming.glob(f"sales_{end:%Y%m%d}_store.tsv"))[0]
    lines = export.read_bytes().splitlines(keepends=True)  # GB18030, like the stores'
    export.write_bytes(b"".join(lines[: len(lines) // 2]))  # half the day's lines
    ingest_date(settings, end)

    build_customer_days(settings, end)

    state = Lake(settings.paths.state)
    assert state.partition_dates(recent.TABLE, AS_OF_KEY) == [end - timedelta(days=1)]
    built = _build(settings, end)
    assert built.mode == "incremental"
    fresh = _build(_elsewhere(settings, tmp_path / "fresh"), end)
    assert _rows(built.path) == _rows(fresh.path)
