"""RFM on a small history whose every figure is worked out by hand below.

Window: 30 days, so as of 2025-01-31 frequency and monetary count 2025-01-02..01-31.

    customer  purchases (local day: amount)                        R   F  M
    A         01-05: 100+50; 01-20: two orders 30, 20; 01-30: 200;  1   3  410
              and a late order of 01-30 (10) exported on 01-31
    B         01-10: 400; return of 100 on 01-15                    21  1  300
    F         01-10: 300 (ties B on R, F and M)                     21  1  300
    C         01-01: 500 (left the window on 01-31)                 30  0  0
    G         01-31: 50                                             0   1  50
    D         only a return (80) on 01-12                           not scored
    E         only a cancelled order on 01-25                       not scored
    guest     01-20: 1000, no customer id                           not scored
    01-26 is an empty day (header-only export).

Quintile score = 1 + floor(5 x (customers strictly worse) / 5) = 1 + strictly worse:
    R (fewer days is better): C 1, B 2, F 2, A 4, G 5
    F: C 1, B 2, F 2, G 2, A 5
    M: C 1, G 2, B 3, F 3, A 5
Segments (R row x FM = round-half-up((F+M)/2) column of the grid in docs/scoring.md):
    A 4/5 Champions; B, F 2/3 At Risk; C 1/1 Lost; G 5/2 Potential Loyalist.
Types against the means (R 14.6 days, F 1.2, M 212): A R↑F↑M↑; B, F R↓F↓M↑;
C R↓F↓M↓; G R↑F↓M↓.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from pipeline.config import Settings
from pipeline.scoring.run import score_date
from tests.scoring.history import Line, ingest_history, segments_of, with_window
from tests.support import read_lake, with_paths

FIRST, AS_OF = date(2025, 1, 1), date(2025, 1, 31)
JAN = [date(2025, 1, day) for day in range(1, 32)]
HISTORY = [
    Line(JAN[4], "A1", "A", "100"),
    Line(JAN[4], "A1", "A", "50", line_id=2),
    Line(JAN[19], "A2", "A", "30"),
    Line(JAN[19], "A3", "A", "20"),
    Line(JAN[29], "A4", "A", "200"),
    Line(JAN[30], "A5", "A", "10", ordered=JAN[29]),
    Line(JAN[9], "B1", "B", "400"),
    Line(JAN[14], "B1R", "B", "100", kind="return"),
    Line(JAN[9], "F1", "F", "300"),
    Line(JAN[0], "C1", "C", "500"),
    Line(JAN[30], "G1", "G", "50"),
    Line(JAN[11], "D1R", "D", "80", kind="return"),
    Line(JAN[24], "E1", "E", "300", kind="cancellation"),
    Line(JAN[19], "GUEST1", "", "1000"),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = with_window(with_paths(Settings(), tmp_path_factory.mktemp("rfm")), 30)
    ingest_history(settings, HISTORY, FIRST, AS_OF)
    for day in JAN:
        score_date(settings, day)
    return settings


def test_profiles(scored: Settings) -> None:
    rows = segments_of(scored, AS_OF)

    assert sorted(rows) == ["A", "B", "C", "F", "G"]  # no D, E or guest
    profile = {
        customer: (row["recency_days"], row["frequency"], row["monetary"])
        for customer, row in rows.items()
    }
    assert profile == {
        "A": (1, 3, Decimal("410.00")),
        "B": (21, 1, Decimal("300.00")),
        "F": (21, 1, Decimal("300.00")),
        "C": (30, 0, Decimal("0.00")),
        "G": (0, 1, Decimal("50.00")),
    }
    assert rows["A"]["first_purchase_date"] == JAN[4]
    assert rows["A"]["tenure_days"] == 26
    assert rows["A"]["average_order_value"] == Decimal("136.67")
    assert rows["B"]["returned_amount"] == Decimal("100.00")
    assert rows["C"]["average_order_value"] is None
    assert rows["C"]["lifetime_net_spend"] == Decimal("500.00")


def test_quintile_scores_and_cells(scored: Settings) -> None:
    rows = segments_of(scored, AS_OF)

    cells = {customer: row["rfm_cell"] for customer, row in rows.items()}

    assert cells == {"A": "455", "B": "223", "F": "223", "C": "111", "G": "522"}


def test_named_segments_and_types(scored: Settings) -> None:
    rows = segments_of(scored, AS_OF)

    assert {c: row["segment"] for c, row in rows.items()} == {
        "A": "Champions",
        "B": "At Risk",
        "F": "At Risk",
        "C": "Lost",
        "G": "Potential Loyalist",
    }
    assert {c: row["rfm_pattern"] for c, row in rows.items()} == {
        "A": "R↑F↑M↑",
        "B": "R↓F↓M↑",
        "F": "R↓F↓M↑",
        "C": "R↓F↓M↓",
        "G": "R↑F↓M↓",
    }
    assert rows["A"]["rfm_type"] == "important value"
    assert rows["C"]["rfm_type"] == "general win-back"


def test_weighted_score_is_the_ahp_weighted_sum_of_z_scores(scored: Settings) -> None:
    rows = segments_of(scored, AS_OF)
    customers = sorted(rows)
    logs = np.log1p(
        [
            [rows[c]["recency_days"], rows[c]["frequency"], float(rows[c]["monetary"])]  # type: ignore[arg-type]
            for c in customers
        ]
    )
    z = (logs - logs.mean(axis=0)) / logs.std(axis=0)
    expected = z @ np.array([-0.199, 0.414, 0.387])

    actual = [rows[c]["weighted_score"] for c in customers]

    assert actual == pytest.approx(expected, abs=1e-6)
    assert rows["B"]["weighted_score"] == rows["F"]["weighted_score"]
    assert max(actual) == rows["A"]["weighted_score"]


def test_summary_adds_up(scored: Settings) -> None:
    summary = [row for row in read_lake(scored, "segment_summary") if row["as_of_date"] == AS_OF]
    everyone = next(row for row in summary if row["dimension"] == "all")
    at_risk = next(row for row in summary if row["group_id"] == "At Risk")

    assert everyone["customers"] == 5
    assert everyone["revenue"] == Decimal("1060.00")
    # Top 20% of 5 customers is A alone: 410 of 1060.
    assert everyone["pareto_share"] == pytest.approx(410 / 1060, abs=1e-6)
    assert at_risk["customers"] == 2
    assert at_risk["revenue_share"] == pytest.approx(600 / 1060, abs=1e-6)
    assert at_risk["pareto_share"] == pytest.approx(0.5)  # one of two equal customers
    clusters = [row for row in summary if row["dimension"] == "cluster"]
    assert sum(int(str(row["customers"])) for row in clusters) == 5


def test_empty_day_and_first_day(scored: Settings) -> None:
    first = segments_of(scored, FIRST)
    empty_day = segments_of(scored, JAN[25])

    assert sorted(first) == ["C"]
    assert first["C"]["rfm_cell"] == "111"  # alone: nobody is strictly worse
    assert sorted(empty_day) == ["A", "B", "C", "F"]  # E's cancellation is no purchase
    assert empty_day["A"]["recency_days"] == 6
