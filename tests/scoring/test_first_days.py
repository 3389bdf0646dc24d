"""The first dates of a lake: nobody has bought yet, or a date is not ingested."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.config import Settings
from pipeline.errors import NotIngestedError
from pipeline.scoring.run import score_date
from tests.scoring.history import Line, ingest_history, segments_of, with_window

DAY1, DAY2 = date(2025, 6, 1), date(2025, 6, 2)


def test_a_date_without_purchasers_scores_nobody_and_fits_no_model(settings: Settings) -> None:
    history = [
        Line(DAY1, "G1", "", "99"),  # a guest
        Line(DAY1, "R1", "A", "10", kind="return"),  # a return of an older purchase
        Line(DAY2, "S1", "A", "30"),
    ]
    ingest_history(settings, history, DAY1, DAY2)

    first = score_date(settings, DAY1)
    second = score_date(settings, DAY2)

    assert (first.customers, first.model_version, first.refitted) == (0, None, False)
    assert segments_of(settings, DAY1) == {}
    assert first.summary == []
    assert (second.customers, second.model_version, second.refitted) == (1, DAY2, True)
    # The return before the first purchase is netted in the window's spend.
    assert segments_of(settings, DAY2)["A"]["monetary"] == 20
    written = sorted(path.parent.name for path in settings.paths.lake.glob("segment_summary/*/*"))
    assert written == [f"as_of_date={DAY1}", f"as_of_date={DAY2}"]  # DAY1's is empty


def test_scoring_a_date_that_is_not_ingested_says_so(settings: Settings) -> None:
    with pytest.raises(NotIngestedError, match="2025-06-01 is not ingested"):
        score_date(settings, DAY1)


def test_a_date_ingested_after_later_dates_were_scored_is_not_missed(settings: Settings) -> None:
    """Day 2's export arrives after day 3 was scored: day 3's state never saw it, so day 4
    is recomputed from every line instead of being built on it."""
    days = [date(2025, 6, day) for day in range(1, 5)]
    history = [
        Line(days[0], "A1", "A", "10"),
        Line(days[1], "B1", "B", "20"),  # the late-arriving day
        Line(days[2], "A2", "A", "30"),
        Line(days[3], "C1", "C", "40"),
    ]
    ingest_history(settings, history, days[0], days[0])
    ingest_history(settings, history, days[2], days[3])  # day 2's export is late
    score_date(settings, days[0])
    score_date(settings, days[2])  # full: no state for day 2
    ingest_history(settings, history, days[1], days[1])  # day 2 arrives
    score_date(settings, days[1])

    fourth = score_date(settings, days[3])

    assert fourth.mode == "full"
    assert sorted(segments_of(settings, days[3])) == ["A", "B", "C"]


def test_a_state_of_another_window_is_not_built_on(settings: Settings) -> None:
    """scoring.window_days changed between two dates: the day before's state counted the
    old window (365 days), so the date is recomputed from every line with the new one
    (28 days), which A's first purchase has left."""
    first, before, day = date(2025, 6, 1), date(2025, 7, 4), date(2025, 7, 5)
    after = date(2025, 7, 6)
    history = [Line(first, "A1", "A", "10"), Line(day, "A2", "A", "30")]
    ingest_history(settings, history, first, after)
    score_date(settings, before)
    shorter = with_window(settings, 28)

    changed = score_date(shorter, day)

    assert changed.mode == "full"
    assert segments_of(shorter, day)["A"]["frequency"] == 1
    assert score_date(shorter, after).mode == "incremental"  # on the new window's state
