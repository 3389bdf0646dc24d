"""Scoring day by day gives exactly the bytes that a recompute from all lines gives.

The history is the demo generator's (web, store and app exports with returns, guests,
re-sent files and bad rows) over 100 days, plus extra exports whose lines arrive one or
two days late, some repeating a purchase day an earlier export brought; with a 30-day
window so that many days enter and leave it.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.demo.generate import generate
from pipeline.ingest.run import ingest_date
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.scoring.customer_state import state_file
from pipeline.scoring.run import score_date
from pipeline.tables import CUSTOMER_SEGMENTS, SEGMENT_SUMMARY
from tests.scoring.history import with_window, write_late_uploads
from tests.support import with_paths

pytestmark = pytest.mark.slow  # byte identity over a long history; the two queries agree row for row in sql/scoring/customer_state.toml

START = date(2025, 3, 1)
DAYS = 100
END = START + timedelta(days=DAYS - 1)
CHECKED = [START + timedelta(days=offset) for offset in (0, 1, 29, 30, 31, 64, DAYS - 1)]


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _scored_bytes(settings: Settings, day: date) -> dict[str, bytes]:
    lake = Lake(settings.paths.lake)
    return {
        "customer_state": Path(state_file(settings, day)).read_bytes(),
        CUSTOMER_SEGMENTS: lake.partition_file(CUSTOMER_SEGMENTS, day, AS_OF_KEY).read_bytes(),
        SEGMENT_SUMMARY: lake.partition_file(SEGMENT_SUMMARY, day, AS_OF_KEY).read_bytes(),
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[date, str]]:
    """The demo's exports ingested and scored day by day; the mode of each date."""
    root = tmp_path_factory.mktemp("incremental")
    generate(root, start=START, days=DAYS, customers=400, seed=11)
    write_late_uploads(root / "incoming", START, DAYS)
    settings = with_window(with_paths(Settings(), root), 30)
    modes = {}
    for day in _dates(START, END):
        ingest_date(settings, day)
        modes[day] = score_date(settings, day).mode
    return settings, modes


def test_every_date_after_the_first_is_incremental(
    history: tuple[Settings, dict[date, str]],
) -> None:
    _, modes = history
    assert modes[START] == "full"
    assert set(list(modes.values())[1:]) == {"incremental"}


@pytest.mark.parametrize("day", CHECKED, ids=str)
def test_incremental_equals_full_recompute(
    history: tuple[Settings, dict[date, str]], day: date
) -> None:
    settings, _ = history
    incremental = _scored_bytes(settings, day)

    report = score_date(settings, day, full=True)

    assert report.mode == "full"
    assert _scored_bytes(settings, day) == incremental


def test_rerunning_a_date_gives_the_same_bytes(
    history: tuple[Settings, dict[date, str]],
) -> None:
    settings, _ = history
    day = START + timedelta(days=50)
    before = _scored_bytes(settings, day)

    score_date(settings, day)

    assert _scored_bytes(settings, day) == before


def test_reingesting_a_changed_day_invalidates_later_state(
    history: tuple[Settings, dict[date, str]],
) -> None:
    """A corrected export of an old date: the states from that date on are dropped, and
    rescoring forward gives what a full recompute gives."""
    settings, _ = history
    changed = END - timedelta(days=5)
    export = sorted(settings.paths.incoming.glob(f"sales_{changed:%Y%m%d}_store.tsv"))[0]
    lines = export.read_bytes().splitlines(keepends=True)  # GB18030, like the stores'
    export.write_bytes(b"".join(lines[: len(lines) // 2]))  # half the day's lines
    ingest_date(settings, changed)

    score_date(settings, changed)

    state = Lake(settings.paths.state)
    assert not state.partition_file("customer_state", END, AS_OF_KEY).exists()
    for day in _dates(changed + timedelta(days=1), END):
        assert score_date(settings, day).mode == "incremental"
    incremental = _scored_bytes(settings, END)
    score_date(settings, END, full=True)
    assert _scored_bytes(settings, END) == incremental
