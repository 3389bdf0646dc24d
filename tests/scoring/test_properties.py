"""Properties of RFM scoring over generated purchase histories.

Each example writes a small history as daily CSV exports, ingests it through the real
ingest and scores its last date with a full recompute (so one scoring per example),
then checks the customer_segments rows:

- scores stay in 1..5 (and are the documented quintiles), the cell is the three
  scores, the segment one of the 11 names, and exactly the customers with a sale are
  scored;
- the order of the lines within a day's exports, and how they are split across the
  day's files, changes nothing;
- a customer at least as good on R, F and M as another never scores lower, on any of
  r/f/m nor on the weighted score; equal R, F and M give equal scores.

A history is 2-5 export days ending on the as-of date: the days before it, days around
the 30-day window's start (customers whose purchases left the window: frequency 0,
monetary 0 or below) or anywhere in the last 45 days. Lines: up to 12 customers and a
few guests, several orders a day, sales, returns and cancellations, lines ordered up to
2 days before their export, and few distinct amounts so that ties are common.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings
from pipeline.ingest.run import ingest_date
from pipeline.scoring.run import score_date
from tests.scoring.history import (
    SEGMENTS,
    STATUS,
    Line,
    ingest_history,
    segments_of,
    with_window,
)
from tests.support import WEB_HEADER, read_lake, with_paths, write_csv

AS_OF = date(2025, 3, 31)
WINDOW_DAYS = 30
CUSTOMERS = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "会员7"]
KINDS = ["sale", "sale", "sale", "return", "cancellation"]
# Few amounts, so that customers often tie on M ("20" = "20.00"; "19.995" rounds to it).
AMOUNTS = st.one_of(
    st.sampled_from(["10", "20", "20.00", "19.995", "35.5", "100", "0.01"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2).map(str),
)
SCORES = ("r_score", "f_score", "m_score")
# Everything a customer's row derives from its (recency, frequency, monetary) alone.
DERIVED = (
    *SCORES,
    "rfm_cell",
    "weighted_score",
    "rfm_pattern",
    "rfm_type",
    "segment",
    "cluster_id",
    "cluster_name",
)


@dataclass(frozen=True)
class History:
    lines: list[Line]
    days: list[date]  # the export days ingested, AS_OF last

    def buyers(self) -> set[str]:
        """Who must be scored: every known customer with at least one sale line."""
        return {line.customer_id for line in self.lines if line.customer_id and line.kind == "sale"}


@st.composite
def histories(draw: st.DrawFn) -> History:
    # Export days before AS_OF, as days back: the day before, around the window's start
    # (29 back is its first day, 30 is out of it; a late line moves a day further out)
    # or anywhere in the last 45 days.
    back = draw(
        st.sets(
            st.one_of(st.integers(1, 3), st.sampled_from([28, 29, 30, 31]), st.integers(4, 45)),
            min_size=1,
            max_size=4,
        )
    )
    days = [*sorted(AS_OF - timedelta(days=n) for n in back), AS_OF]
    line = st.tuples(
        st.sampled_from(days),
        st.integers(0, 2),  # order number within the customer's export day
        st.sampled_from(KINDS),
        AMOUNTS,
        st.integers(0, 2),  # days ordered before the export
    )

    def lines_of(least: int, most: int) -> st.SearchStrategy[list[tuple]]:
        return st.lists(line, min_size=least, max_size=most)

    # Up to 12 customers (a score of 5 needs about 5 and more) with 1-3 lines each,
    # and a few guest lines ("" customer id).
    count = draw(st.integers(0, len(CUSTOMERS)))
    specs = [(customer, spec) for customer in CUSTOMERS[:count] for spec in draw(lines_of(1, 3))]
    specs += [("", spec) for spec in draw(lines_of(0, 3))]
    lines, line_ids = [], defaultdict(int)
    for customer, (day, order_no, kind, amount, late) in specs:
        order_id = f"{day:%m%d}-{customer or 'guest'}-{order_no}"
        line_ids[order_id] += 1
        ordered = day - timedelta(days=late) if late else None
        lines.append(Line(day, order_id, customer, amount, kind, ordered, line_ids[order_id]))
    return History(lines, days)


def _settings(root: str) -> Settings:
    return with_window(with_paths(Settings(), Path(root)), WINDOW_DAYS)


def _scored(settings: Settings) -> dict[str, dict[str, object]]:
    """Score AS_OF from every ingested line; its customer_segments rows by customer."""
    score_date(settings, AS_OF, full=True)
    return segments_of(settings, AS_OF)


def _ingest(settings: Settings, history: History) -> None:
    for day in history.days:
        ingest_history(settings, history.lines, day, day)


def _csv_line(line: Line) -> str:
    """The export line ``ingest_history`` writes for ``line``."""
    ordered = line.ordered or line.export_day
    return (
        f"{line.order_id},{line.line_id},{line.customer_id},{ordered} 12:00:00,P1,1,"
        f"{line.amount},{line.amount},CNY,{STATUS[line.kind]}"
    )


def _ingest_shuffled(
    settings: Settings, history: History, order: list[int], suffixes: list[str]
) -> None:
    """Ingest the history with its lines in ``order``, line i in the day's file
    ``sales_YYYYMMDD{suffixes[i]}.csv`` (a header-only file for a day with no line)."""
    files: dict[str, list[str]] = defaultdict(list)
    for index in order:
        line = history.lines[index]
        files[f"sales_{line.export_day:%Y%m%d}{suffixes[index]}.csv"].append(_csv_line(line))
    for day in history.days:
        names = [name for name in files if name.startswith(f"sales_{day:%Y%m%d}")]
        for name in names or [f"sales_{day:%Y%m%d}.csv"]:
            write_csv(settings.paths.incoming / name, [WEB_HEADER, *files[name]])
        ingest_date(settings, day)


def _summary(settings: Settings) -> list[dict[str, object]]:
    return [row for row in read_lake(settings, "segment_summary") if row["as_of_date"] == AS_OF]


def _scored_history(history: History) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as root:
        settings = _settings(root)
        _ingest(settings, history)
        return _scored(settings)


def _assert_scores_in_range(history: History, rows: dict[str, dict[str, object]]) -> None:
    assert set(rows) == history.buyers()
    for customer, row in rows.items():
        scores = [row[name] for name in SCORES]
        assert all(score in {1, 2, 3, 4, 5} for score in scores), (customer, scores)
        assert row["rfm_cell"] == "".join(str(score) for score in scores), (customer, row)
        assert row["segment"] in SEGMENTS, (customer, row["segment"])
    # And each is the documented quintile: 1 + floor(5 x customers strictly worse / n).
    for name, column, worse in (
        ("r_score", "recency_days", lambda mine, other: other > mine),
        ("f_score", "frequency", lambda mine, other: other < mine),
        ("m_score", "monetary", lambda mine, other: other < mine),
    ):
        values = [row[column] for row in rows.values()]
        quintiles = {
            customer: 1 + 5 * sum(worse(row[column], value) for value in values) // len(values)
            for customer, row in rows.items()
        }
        assert {customer: row[name] for customer, row in rows.items()} == quintiles, name


def _assert_dominance(rows: dict[str, dict[str, object]]) -> None:
    """Over all pairs: at least as good on R, F and M never scores lower; equal, equal."""
    profile = {
        customer: (row["recency_days"], row["frequency"], row["monetary"])
        for customer, row in rows.items()
    }
    for better, b in rows.items():
        for worse, w in rows.items():
            (rb, fb, mb), (rw, fw, mw) = profile[better], profile[worse]
            if not (rb <= rw and fb >= fw and mb >= mw):  # type: ignore[operator]
                continue
            pair = (better, profile[better], worse, profile[worse])
            for name in (*SCORES, "weighted_score"):
                assert b[name] >= w[name], (name, b[name], w[name], pair)  # type: ignore[operator]
            if profile[better] == profile[worse]:
                assert {n: b[n] for n in DERIVED} == {n: w[n] for n in DERIVED}, pair


def _assert_order_changes_nothing(history: History, data: st.DataObject) -> None:
    count = len(history.lines)
    order = data.draw(st.permutations(range(count)), label="order")
    suffixes = data.draw(
        st.lists(st.sampled_from(["", "_a", "_b"]), min_size=count, max_size=count),
        label="files",
    )
    with tempfile.TemporaryDirectory() as root:
        settings = _settings(root)
        _ingest(settings, history)
        expected, expected_summary = _scored(settings), _summary(settings)
    with tempfile.TemporaryDirectory() as root:
        settings = _settings(root)
        _ingest_shuffled(settings, history, order, suffixes)
        actual, actual_summary = _scored(settings), _summary(settings)

    assert actual == expected
    assert actual_summary == expected_summary


@given(history=histories())
def test_scores_cells_and_segments_stay_in_range(history: History) -> None:
    _assert_scores_in_range(history, _scored_history(history))


@given(history=histories(), data=st.data())
def test_line_order_and_file_split_change_nothing(history: History, data: st.DataObject) -> None:
    _assert_order_changes_nothing(history, data)


@given(history=histories())
def test_better_on_r_f_and_m_never_scores_lower(history: History) -> None:
    _assert_dominance(_scored_history(history))
