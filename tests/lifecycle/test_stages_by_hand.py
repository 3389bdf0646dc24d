"""Lifecycle stages on a hand-built history, through the real ingest, scoring and staging.

Settings: window 120 days, churn horizon 60, recent window 30, danger at 2x the expected
gap (at least 7 days), termination at 4x (at least 7 days after danger), no shrinkage
(prior_gaps 0: the expected gap is the customer's own mean gap; a one-purchase customer
gets the population's, the median of repeat buyers' mean gaps), spend decline at half
the usual spend per purchase day, returns rule (a return within 14 days of the last
purchase) at 1x the expected gap; the gap rule applies to one-order customers too. Day n is 2025-01-01 + n.
Every purchase is 100; X's return is 20.

    customer  purchases (days)                               what it shows
    W         every 7 days 0..70, then 120 and 127           fast rhythm: danger after 14
                                                             days; termination; win-back
    Q         0, 45, 90                                      slow rhythm: no danger at 40
    R         every 5 days 0..50, then 65, 70, 75, 80        danger, recovery, danger again
    X         every 10 days 0..100, returns 20 on day 103    returns, then silence
    D         every 10 days 0..120; 10 instead of 100 from   spend decline
              day 100
    S1, S2    every 10 days 0..120                           steady: maturity throughout
    G         every 10 days 52..122                          socialization -> growth ->
                                                             maturity
    H         30, 40, then 110                               growth -> danger -> ... ->
                                                             interruption -> win-back
    M         every 10 days 0..90 (100), 100..120 (300)      rising spend: back to growth
    O         60 only                                        one-order customer
    P1        in the customer master of day 55, never buys   prospect
    P2        in the master of day 55, buys on day 70        prospect -> socialization

The population gap (median of repeat buyers' mean gaps: R 5-5.7, W 7, S1, S2, X, D 10,
Q 45) stays 10 from day 50 on, so a one-purchase customer is in danger after 20 days and
terminated after 40. The lifecycle runs first on day 50 (every stage found then is
recorded as a first-run transition, nothing is alerted).

Worked out (from the rules in sql/lifecycle/customer_lifecycle.sql):
    W  own gap 70/10 = 7: danger at 14 days (day 84), termination at 28 (day 98);
       a purchase on day 120 is a win-back (socialization), the next one on day 127
       makes them mature again (11 purchase days in the window, tenure 127).
    Q  own gap 45: danger only after 90 days, so not on day 85 (40 days).
    R  own gap 50/10 = 5: danger at 10 days (day 60); buys on day 65 (recovered);
       own gap 80/14 = 5.71: danger at 11.43 days (day 92), termination at 22.86 (103).
    X  returned goods on day 103 after buying on 100: danger once 10 days pass (day 110),
       before the gap rule (20 days) would fire.
    D  on day 110 the last 30 days' spend per purchase day ((100 + 10 + 10) / 3 = 40) is
       below half the window's (1020 / 12 = 85); on day 109 it is not (210 / 3 = 70
       against 1010 / 11 = 91.8).
    O  bought on day 60: danger on 80, termination on 100, interruption on 120 (60 days).
    P2 bought on day 70: danger on 90, termination on 110.
    G  new on day 52; repeat buyer on 62; mature on 92 (5 purchase days, tenure 40).
    H  own gap 10: danger on 60, termination on 80, interruption on 100 (60 days);
       the purchase on day 110 wins them back.
    M  on day 110 the last 30 days' spend (100 + 300 + 300 = 700, 23.3 a day) is above
       1.5x the window's rate (1600 / 111 = 14.4 a day): growth again. On day 100 it is
       not (500 / 30 = 16.7 against 1.5 x 1300 / 101 = 19.3).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline import sql
from pipeline.alerts import deliveries
from pipeline.config import LifecycleConfig, ScoringConfig, Settings
from pipeline.lifecycle import btyd
from pipeline.lifecycle.alive import AliveStore
from pipeline.lifecycle.run import stage_date
from pipeline.scoring.run import score_date
from tests.scoring.history import Line, ingest_history
from tests.support import read_lake, with_paths, write_csv

DAY0 = date(2025, 1, 1)
FIRST_RUN, LAST = 50, 127
RULES = LifecycleConfig(
    danger_gap_multiple=2.0,
    danger_min_gap_days=7,
    termination_gap_multiple=4.0,
    churn_horizon_days=60,
    prior_gaps=0,
    population_gap_quantile=0.5,
    established_purchase_days=4,
    maturity_tenure_days=40,
    recent_days=30,
    rising_spend_ratio=1.5,
    spend_decline_ratio=0.5,
    gap_min_observed_gaps=0,
    returns_within_days=14,
    returns_gap_multiple=1.0,
    returns_min_silence_days=0,
    returns_ratio=0.0,
    returns_min_lines=1,
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
        (52, "G", None, "socialization"),
        (55, "P1", None, "prospect"),
        (55, "P2", None, "prospect"),
        (60, "H", "growth", "danger"),
        (60, "O", None, "socialization"),
        (60, "R", "maturity", "danger"),
        (62, "G", "socialization", "growth"),
        (65, "R", "danger", "maturity"),
        (70, "P2", "prospect", "socialization"),
        (80, "H", "danger", "termination"),
        (80, "O", "socialization", "danger"),
        (84, "W", "maturity", "danger"),
        (90, "P2", "socialization", "danger"),
        (92, "G", "growth", "maturity"),
        (92, "R", "maturity", "danger"),
        (98, "W", "danger", "termination"),
        (100, "H", "termination", "interruption"),
        (100, "O", "danger", "termination"),
        (103, "R", "danger", "termination"),
        (110, "D", "maturity", "danger"),
        (110, "H", "interruption", "socialization"),
        (110, "M", "maturity", "growth"),
        (110, "P2", "danger", "termination"),
        (110, "X", "maturity", "danger"),
        (120, "O", "termination", "interruption"),
        (120, "W", "termination", "socialization"),
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
        (60, "H", "growth", "gap"),
        (60, "R", "maturity", "gap"),
        (80, "O", "socialization", "gap"),
        (84, "W", "maturity", "gap"),
        (90, "P2", "socialization", "gap"),
        (92, "R", "maturity", "gap"),
        (110, "D", "maturity", "spend_decline"),
        (110, "X", "maturity", "returns"),
    ]
    w = next(row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "W")
    assert w["days_since_last_purchase"] == 14
    assert w["expected_gap_days"] == pytest.approx(7.0)
    assert w["value_at_risk"] == 1100  # 11 purchases of 100 in the window
    assert "14 days" in w["reason"] and "7 days" in w["reason"]
    assert w["suggested_action"].startswith("Priority contact")
    x = next(row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "X")
    assert x["suggested_action"].startswith("Contact about the recent returns")


def test_a_recovered_customer_who_falls_back_gets_a_second_alert(staged: Settings) -> None:
    r_alerts = [row for row in read_lake(staged, "danger_alerts") if row["customer_id"] == "R"]
    assert len(r_alerts) == 2
    assert r_alerts[0]["alert_id"] != r_alerts[1]["alert_id"]
    recovered = [
        row
        for row in read_lake(staged, "stage_transitions")
        if row["customer_id"] == "R" and row["as_of_date"] == day(65)
    ]
    assert recovered[0]["reason"].startswith("recovered")


def test_slow_and_fast_buyers_are_judged_by_their_own_rhythm(staged: Settings) -> None:
    # Day 85: the weekly buyer is 15 days quiet and in danger; the quarterly buyer has
    # been quiet 40 days and is not.
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
        ("maturity", 50, 84),
        ("danger", 84, 98),
        ("termination", 98, 120),
        ("socialization", 120, 127),
    ]


def test_stage_counts_and_flows_add_up(staged: Settings) -> None:
    counts = [row for row in read_lake(staged, "stage_counts") if row["as_of_date"] == day(110)]
    assert sum(row["customers"] for row in counts) == 13
    by_stage = {row["stage"]: row for row in counts}
    assert by_stage["danger"]["entered"] == 2  # D and X
    flows = [row for row in read_lake(staged, "stage_flows") if row["as_of_date"] == day(110)]
    assert {(row["from_stage"], row["to_stage"]): row["customers"] for row in flows} == {
        ("maturity", "danger"): 2,
        ("danger", "termination"): 1,
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
        staged.paths.lake / table / f"as_of_date={day(84)}" / "data.parquet" for table in tables
    ]
    alerts_file = staged.paths.alerts / f"danger_alerts_{day(84)}.csv"
    before = [path.read_bytes() for path in [*files, alerts_file]]
    report = stage_date(staged, day(84))
    assert report.alerts == 1 and report.queued == 0
    assert [path.read_bytes() for path in [*files, alerts_file]] == before
    assert sorted(delivery.alert_id for delivery in deliveries(staged)) == queued_before


def test_p_alive_is_the_fitted_mbgnbd_on_the_window(
    staged: Settings,
) -> None:
    model = AliveStore(staged.paths.models).newest_on_or_before(day(98))
    assert model is not None and model.params.model == "mbgnbd"
    rows = [
        row
        for row in read_lake(staged, "customer_lifecycle")
        if row["as_of_date"] == day(98) and row["last_purchase_date"] is not None
    ]
    for row in rows:
        # Observed from the first purchase (every one is in the 120-day window here).
        frequency = row["window_purchase_days"] - 1
        recency = (row["last_purchase_date"] - row["first_purchase_date"]).days
        age = (day(98) - row["first_purchase_date"]).days
        expected = btyd.p_alive(model.params, [frequency], [recency], [age])[0]
        assert row["p_alive"] == pytest.approx(expected, abs=5e-5), row["customer_id"]
    assert all(0 < row["p_alive"] <= 1 for row in rows)


def test_stage_episodes_join_closed_and_open_history(staged: Settings) -> None:
    con = duckdb.connect()
    lake = staged.paths.lake
    con.read_parquet(
        str(lake / "customer_stage_history" / "*" / "*.parquet"), hive_partitioning=True
    ).create_view("customer_stage_history")
    con.read_parquet(
        str(lake / "customer_lifecycle" / f"as_of_date={day(LAST)}" / "data.parquet")
    ).create_view("customer_lifecycle")
    relation = sql.relation(con, "lifecycle/customer_stage_episodes", {"as_of_date": day(LAST)})
    episodes = [
        (stage, (start - DAY0).days, None if end is None else (end - DAY0).days)
        for customer, stage, start, end in relation.fetchall()
        if customer == "W"
    ]
    assert episodes == [
        ("maturity", 50, 84),
        ("danger", 84, 98),
        ("termination", 98, 120),
        ("socialization", 120, 127),
        ("maturity", 127, None),
    ]
