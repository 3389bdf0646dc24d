"""Lifecycle stages on a hand-built history, through the real ingest, scoring and staging.

Settings: window 120 days, recent window 30, no shrinkage (prior_gaps 0: the expected gap
is the customer's own mean gap; a one-purchase customer gets the shop's median gap),
other rules at their defaults. Day n is 2025-01-01 + n. Every purchase is 100; X's
return is 20.

Fourteen customers are too few to learn a risk model from (the backtest needs at least
20 customers who did and 20 who did not buy again): every date runs on the documented
fallback, where the risk is the rhythm percentile, the share of the customer's own gaps
(in units of their mean gap) or of returning customers' waits for a second purchase
(one-time buyers) strictly shorter than the current silence. The thresholds are the
fallback's: danger at 0.9, termination at 0.98 after 2 usual gaps of silence,
interruption after 4 at 0.99. The horizon is the shop's median gap of 10 days in whole
weeks: 14 days.

    customer  purchases (days)                               what it shows
    W         every 7 days 0..70, then 120 and 127           fast rhythm: danger a day
                                                             late; termination; win-back
    Q         0, 45, 90                                      slow rhythm: no danger at 40
    R         every 5 days 0..50, then 65, 70, 75, 80        danger, recovery, danger again
    X         every 10 days 0..100, returns 20 on day 103    a return, then silence
    D         every 10 days 0..120; 10 instead of 100 from   buys on: stays mature
              day 100
    S1, S2    every 10 days 0..120                           steady: maturity throughout
    G         every 10 days 52..122                          socialization -> growth ->
                                                             maturity
    H         30, 40, then 110                               danger on the first run ->
                                                             interruption -> win-back
    M         every 10 days 0..90 (100), 100..120 (300)      rising spend: back to growth
    O         60 only                                        one-time buyer: overdue
    V         every 10 days 0..80, then 93, 100, 110, 120    danger, then recovered
    P1        in the customer master of day 55, never buys   prospect
    P2        in the master of day 55, buys on day 70        prospect -> socialization

Worked out (sql/lifecycle/customer_lifecycle.sql):
    W  own gap 7; nearly every completed gap of every buyer is 1 gap long, so a silence
       of 8 days (1.14 gaps) is longer than 97% of them: danger on day 78, one day late;
       termination on day 89 (19 days, at least 2 gaps, percentile above 0.98);
       interruption on day 98 (28 days: 4 gaps); the purchase on day 120 is a win-back
       (socialization), the next one on 127 makes them mature again.
    Q  own gap 45: on day 85 a silence of 40 days is 0.9 gaps: still growth.
    R  own gap 5: danger on day 56, termination on 60 (10 days, 2 gaps); back on day 65
       (win-back), mature on 70; own gap now 80/14 = 5.7: danger on 86, termination on
       95, interruption on 103.
    X  buys on day 100, returns on 103: danger on day 111 (rules "risk,returns": the
       return is the reason shown), termination on 125.
    O  bought on day 60; the customers who came back for a second purchase did so
       within 10 days (or 5, 7 and 45): overdue on day 71 (82% had come back by then),
       termination on 106, interruption on 107.
    P2 bought on day 70: overdue on day 81, termination on 116, interruption on 117.
    V  own gap 10: danger on day 91 (11 days), recovered by the purchase on day 93.
    G  new on day 52; repeat buyer on 62; mature on 82 (4 purchase days).
    H  own gap 10, silent since day 40: growth on the first run (day 50, silence 10 is
       not longer than the gap), danger on 51, termination on 60 (2 gaps), interruption
       on 80 (4 gaps); the purchase on day 110 wins them back.
    M  on day 110 the last 30 days' spend (100 + 300 + 300 = 700, 23.3 a day) is above
       1.5x the window's rate (1600 / 111 = 14.4 a day): growth again.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline import sql
from pipeline.alerts import deliveries
from pipeline.config import LifecycleConfig, ScoringConfig, Settings
from pipeline.lifecycle.risk import RiskStore
from pipeline.lifecycle.run import stage_date
from pipeline.scoring.run import score_date
from tests.scoring.history import Line, ingest_history
from tests.support import read_lake, with_paths, write_csv

pytestmark = pytest.mark.slow  # 128 days through every step; the rules themselves are unit-tested in sql/lifecycle/customer_lifecycle.toml

DAY0 = date(2025, 1, 1)
FIRST_RUN, LAST = 50, 127
RULES = LifecycleConfig(
    prior_gaps=0,
    established_purchase_days=4,
    recent_days=30,
    rising_spend_ratio=1.5,
    returns_within_days=14,
)


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def _purchases(customer: str, days: list[int], amount: str = "100") -> list[Line]:
    return [Line(day(n), f"{customer}-{n}", customer, amount) for n in days]


def history() -> list[Line]:
    steady = list(range(0, 121, 10))
    return [
        *_purchases("W", [*range(0, 71, 7), 120, 127]),
        *_purchases("Q", [0, 45, 90]),
        *_purchases("R", [*range(0, 51, 5), 65, 70, 75, 80]),
        *_purchases("X", list(range(0, 101, 10))),
        Line(day(103), "X-100R", "X", "20", kind="return"),
        *_purchases("D", list(range(0, 91, 10))),
        *_purchases("D", list(range(100, 121, 10)), amount="10"),
        *_purchases("S1", steady),
        *_purchases("S2", steady),
        *_purchases("G", list(range(52, 123, 10))),
        *_purchases("H", [30, 40, 110]),
        *_purchases("M", list(range(0, 91, 10))),
        *_purchases("M", list(range(100, 121, 10)), amount="300"),
        *_purchases("O", [60]),
        *_purchases("V", [*range(0, 81, 10), 93, 100, 110, 120]),
        *_purchases("P2", [70]),
    ]


def settings_for(root: Path) -> Settings:
    base = with_paths(Settings(), root)
    return base.model_copy(
        update={
            "scoring": ScoringConfig(window_days=120, state_retention_days=3660),
            "lifecycle": RULES,
            # A webhook nobody listens to: alerts stay queued, so the outbox can be counted.
            "alerts": base.alerts.model_copy(update={"webhook_url": "http://127.0.0.1:9/"}),
        }
    )


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("lifecycle"))
    write_csv(
        settings.paths.incoming / f"customers_{day(55):%Y%m%d}.csv",
        [
            "customer_id,signup_date,email,phone,city",
            f"P1,{day(55)},p1@example.com,,Hangzhou",
            f"P2,{day(55)},p2@example.com,,Suzhou",
        ],
    )
    ingest_history(settings, history(), day(0), day(LAST))
    for n in range(LAST + 1):
        score_date(settings, day(n))
        if n >= FIRST_RUN:
            stage_date(settings, day(n))
    return settings


def _transitions(settings: Settings) -> list[tuple[int, str, str | None, str]]:
    return sorted(
        ((row["as_of_date"] - DAY0).days, row["customer_id"], row["from_stage"], row["to_stage"])
        for row in read_lake(settings, "stage_transitions")
        if row["as_of_date"] > day(FIRST_RUN)
    )


def _stage(settings: Settings, customer: str, n: int) -> str:
    rows = read_lake(settings, "customer_lifecycle")
    return next(
        str(row["stage"])
        for row in rows
        if row["customer_id"] == customer and row["as_of_date"] == day(n)
    )


def test_every_transition_after_the_first_run_is_the_worked_out_one(staged: Settings) -> None:
    assert _transitions(staged) == [
        (51, "H", "growth", "danger"),
        (52, "G", None, "socialization"),
        (55, "P1", None, "prospect"),
        (55, "P2", None, "prospect"),
        (56, "R", "maturity", "danger"),
        (60, "H", "danger", "termination"),
        (60, "O", None, "socialization"),
        (60, "R", "danger", "termination"),
        (62, "G", "socialization", "growth"),
        (65, "R", "termination", "socialization"),
        (70, "P2", "prospect", "socialization"),
        (70, "R", "socialization", "maturity"),
        (71, "O", "socialization", "danger"),
        (78, "W", "maturity", "danger"),
        (80, "H", "termination", "interruption"),
        (81, "P2", "socialization", "danger"),
        (82, "G", "growth", "maturity"),
        (86, "R", "maturity", "danger"),
        (89, "W", "danger", "termination"),
        (91, "V", "maturity", "danger"),
        (93, "V", "danger", "maturity"),
        (95, "R", "danger", "termination"),
        (98, "W", "termination", "interruption"),
        (103, "R", "termination", "interruption"),
        (106, "O", "danger", "termination"),
        (107, "O", "termination", "interruption"),
        (110, "H", "interruption", "socialization"),
        (110, "M", "maturity", "growth"),
        (111, "X", "maturity", "danger"),
        (116, "P2", "danger", "termination"),
        (117, "P2", "termination", "interruption"),
        (120, "W", "interruption", "socialization"),
        (125, "X", "danger", "termination"),
        (127, "W", "socialization", "maturity"),
    ]


def test_the_first_run_records_every_stage_and_alerts_nobody(staged: Settings) -> None:
    first = [row for row in read_lake(staged, "stage_transitions") if row["as_of_date"] == day(50)]
    assert {row["customer_id"]: row["to_stage"] for row in first} == {
        "W": "maturity",
        "Q": "growth",
        "R": "maturity",
        "X": "maturity",
        "D": "maturity",
        "S1": "maturity",
        "S2": "maturity",
        "V": "maturity",
        "H": "growth",
        "M": "maturity",
    }
    assert all(row["is_first_run"] and row["from_stage"] is None for row in first)
    assert not [row for row in read_lake(staged, "danger_alerts") if row["as_of_date"] == day(50)]


def test_each_danger_entry_is_one_alert_with_its_rule_and_numbers(staged: Settings) -> None:
    alerts = sorted(
        ((row["as_of_date"] - DAY0).days, row["customer_id"], row["from_stage"], row["rules"])
        for row in read_lake(staged, "danger_alerts")
    )
    assert alerts == [
        (51, "H", "growth", "risk"),
        (56, "R", "maturity", "risk"),
        (71, "O", "socialization", "second_purchase_overdue"),
        (78, "W", "maturity", "risk"),
        (81, "P2", "socialization", "second_purchase_overdue"),
        (86, "R", "maturity", "risk"),
        (91, "V", "maturity", "risk"),
        (111, "X", "maturity", "risk,returns"),
    ]
    w = next(row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "W")
    assert w["days_since_last_purchase"] == 8
    assert w["expected_gap_days"] == pytest.approx(7.0)
    assert w["value_at_risk"] == 1100  # 11 purchases of 100 in the window
    assert w["horizon_days"] == 14
    assert w["risk"] == pytest.approx(w["rhythm_percentile"])  # the fallback
    assert w["risk"] >= 0.9 and w["risk_week_ago"] == 0
    assert w["reason"].startswith("no purchase for 8 days; 97% of this customer's gaps were")
    assert "usual gap 7 days" in w["reason"] and "up from 0.00 a week ago" in w["reason"]
    assert w["suggested_action"].startswith("Priority contact")
    x = next(row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "X")
    assert "returned 20.00 on 2025-04-14, 3 days after the last purchase" in x["reason"]
    assert x["suggested_action"].startswith("Contact about the recent returns")
    o = next(row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "O")
    assert "of customers who came back for a second purchase had done so" in o["reason"]


def test_a_recovered_customer_who_falls_back_gets_a_second_alert(staged: Settings) -> None:
    r_alerts = [row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "R"]
    assert len(r_alerts) == 2
    assert r_alerts[0]["alert_id"] != r_alerts[1]["alert_id"]
    won_back = [
        row
        for row in read_lake(staged, "stage_transitions")
        if row["customer_id"] == "R" and row["as_of_date"] == day(65)
    ]
    assert won_back[0]["reason"].startswith("win-back") and won_back[0]["is_win_back"]
    recovered = [
        row
        for row in read_lake(staged, "stage_transitions")
        if row["customer_id"] == "V" and row["as_of_date"] == day(93)
    ]
    assert (recovered[0]["from_stage"], recovered[0]["to_stage"]) == ("danger", "maturity")
    assert recovered[0]["reason"].startswith("recovered")


def test_slow_and_fast_buyers_are_judged_by_their_own_rhythm(staged: Settings) -> None:
    # Day 85: the weekly buyer is 15 days quiet and in danger; the buyer whose gap is 45
    # days has been quiet 40 days and is not.
    assert _stage(staged, "W", 85) == "danger"
    assert _stage(staged, "Q", 85) == "growth"
    assert _stage(staged, "S1", LAST) == "maturity"


def test_every_stage_occurs(staged: Settings) -> None:
    stages = {str(row["stage"]) for row in read_lake(staged, "customer_lifecycle")}
    assert stages == {
        "prospect",
        "socialization",
        "growth",
        "maturity",
        "danger",
        "termination",
        "interruption",
    }


def test_a_win_back_is_marked_and_closes_the_termination_episode(staged: Settings) -> None:
    win_back = [
        row
        for row in read_lake(staged, "stage_transitions")
        if row["customer_id"] == "W" and row["as_of_date"] == day(120)
    ]
    assert win_back[0]["is_win_back"] and win_back[0]["reason"].startswith("win-back")
    episodes = [
        (row["stage"], (row["valid_from"] - DAY0).days, (row["valid_to"] - DAY0).days)
        for row in read_lake(staged, "customer_stage_history")
        if row["customer_id"] == "W"
    ]
    assert sorted(episodes, key=lambda episode: episode[1]) == [
        ("maturity", 50, 78),
        ("danger", 78, 89),
        ("termination", 89, 98),
        ("interruption", 98, 120),
        ("socialization", 120, 127),
    ]


def test_stage_counts_and_flows_add_up(staged: Settings) -> None:
    counts = [row for row in read_lake(staged, "stage_counts") if row["as_of_date"] == day(110)]
    assert sum(row["customers"] for row in counts) == 14
    by_stage = {row["stage"]: row for row in counts}
    assert {stage: row["customers"] for stage, row in by_stage.items()} == {
        "prospect": 1,  # P1
        "socialization": 1,  # H, won back
        "growth": 2,  # Q, M
        "maturity": 6,  # S1, S2, D, G, X, V
        "danger": 1,  # P2
        "termination": 0,
        "interruption": 3,  # W, R, O
    }
    assert by_stage["socialization"]["entered"] == 1 and by_stage["growth"]["entered"] == 1
    flows = [row for row in read_lake(staged, "stage_flows") if row["as_of_date"] == day(110)]
    assert {(row["from_stage"], row["to_stage"]): row["customers"] for row in flows} == {
        ("interruption", "socialization"): 1,
        ("maturity", "growth"): 1,
    }


def test_rerunning_a_date_gives_the_same_bytes_and_queues_no_alert_twice(
    staged: Settings,
) -> None:
    queued_before = sorted(delivery.alert_id for delivery in deliveries(staged))
    assert len(queued_before) == 8
    tables = ("customer_lifecycle", "stage_transitions", "danger_alerts", "stage_counts")
    files = [
        staged.paths.lake / table / f"as_of_date={day(78)}" / "data.parquet" for table in tables
    ]
    alerts_file = staged.paths.alerts / f"danger_alerts_{day(78)}.csv"
    before = [path.read_bytes() for path in [*files, alerts_file]]
    report = stage_date(staged, day(78))
    assert report.alerts == 1 and report.queued == 0
    assert [path.read_bytes() for path in [*files, alerts_file]] == before
    assert sorted(delivery.alert_id for delivery in deliveries(staged)) == queued_before


def test_too_few_customers_to_backtest_fall_back_to_the_rhythm(staged: Settings) -> None:
    store = RiskStore(staged.paths.models)
    stored = store.newest_on_or_before(day(LAST))
    assert stored is not None
    model = stored.model
    assert model.source == "rhythm_fallback" and model.estimator is None
    assert "at least 20 of each are needed" in model.reason
    assert (model.horizon_days, model.population_gap_days) == (14, 10.0)
    rows = [row for row in read_lake(staged, "customer_lifecycle") if row["last_purchase_date"]]
    assert {row["risk_source"] for row in rows} == {"rhythm_fallback"}
    assert all(row["risk"] == row["rhythm_percentile"] for row in rows)
    # P(alive) and expected purchases stay null: 14 customers never fit a usable MBG/NBD.
    assert all(row["p_alive"] is None and row["expected_purchases"] is None for row in rows)


def test_stage_episodes_join_closed_and_open_history(staged: Settings) -> None:
    con = duckdb.connect()
    lake = staged.paths.lake
    # The published view (sql/publish/views), over the lake's tables keyed by customer_id.
    con.read_parquet(
        str(lake / "customer_stage_history" / "*" / "*.parquet"), hive_partitioning=True
    ).project("*, customer_id as customer_key").create_view("customer_stage_history")
    con.read_parquet(
        str(lake / "customer_lifecycle" / f"as_of_date={day(LAST)}" / "data.parquet")
    ).project("*, customer_id as customer_key").create_view("customer_lifecycle")
    relation = (
        con.sql(sql.load("publish/views/customer_stage_episodes"))
        .project("customer_key, stage, valid_from, valid_to")
        .order("customer_key, valid_from")
    )
    episodes = [
        (stage, (start - DAY0).days, None if end is None else (end - DAY0).days)
        for customer, stage, start, end in relation.fetchall()
        if customer == "W"
    ]
    assert episodes == [
        ("maturity", 50, 78),
        ("danger", 78, 89),
        ("termination", 89, 98),
        ("interruption", 98, 120),
        ("socialization", 120, 127),
        ("maturity", 127, None),
    ]
