"""How detection is scored against ground truth: the SQL on hand-made cases, and the
acceptance figures on the full demo (slow)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import SecretStr

from pipeline import sql
from pipeline.config import Settings
from pipeline.demo.generate import generate
from pipeline.lifecycle.quality import QualityOptions, detection_quality
from pipeline.steps import run_days
from tests.support import with_paths

D = date(2025, 6, 1)


def day(n: int) -> date:
    return D + timedelta(days=n)


# Episodes: A recovered (onset 0, back on 30); B churned on day 20; C still open;
# E recovered before the judged period starts; F's episode starts too late to be judged.
EPISODES = [
    ("A", day(0), "recovered", day(30)),
    ("B", day(0), "churned", day(20)),
    ("C", day(10), "open", None),
    ("E", day(-100), "recovered", day(-80)),
    ("F", day(95), "churned", day(97)),
]
# rules: A inside (day 5) and again after recovering (day 40: false); B 30 days after
# the churn (true with 60 days of grace, false when strict); D has no episode (false).
# baseline: catches only C, on day 50.
DETECTIONS = [
    ("rules", "A", day(5)),
    ("rules", "A", day(40)),
    ("rules", "B", day(50)),
    ("rules", "D", day(12)),
    ("baseline", "C", day(50)),
]


def _judge(grace_days: int) -> dict[str, dict[str, Any]]:
    con = duckdb.connect()
    con.sql(
        "select * from (values " + ", ".join("(?, ?, ?)" for _ in DETECTIONS) + ") "
        "as t (method, customer_id, alert_date)",
        params=[value for row in DETECTIONS for value in row],
    ).create_view("detections")
    con.sql(
        "select * from (values " + ", ".join("(?, ?, ?, ?::date)" for _ in EPISODES) + ") "
        "as t (customer_id, onset_date, outcome, resolved_date)",
        params=[value for row in EPISODES for value in row],
    ).create_view("episodes")
    con.sql(
        "select 'A' as customer_id, $last::date as last_purchase_date", params={"last": day(-3)}
    ).create_view("last_purchases")
    params = {
        "eval_start": day(0),
        "eval_end": day(99),
        "followup_days": 10,
        "grace_days": grace_days,
    }
    relation = sql.relation(con, "quality/detection_quality", params)
    return {row[0]: dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()}


def test_precision_recall_and_lead_times_by_hand() -> None:
    judged = _judge(grace_days=60)
    rules, baseline = judged["rules"], judged["baseline"]
    # Alerts: A day 5 true, A day 40 false, B day 50 true (within 60 days of the churn),
    # D false. Episodes judged: A, B, C (E too early, F too late to catch).
    assert (rules["alerts"], rules["true_alerts"], float(rules["precision"])) == (4, 2, 0.5)
    assert (rules["episodes"], rules["caught"], float(rules["recall"])) == (3, 2, 0.667)
    assert rules["median_days_onset_to_alert"] == 27.5  # A 5 days, B 50
    assert rules["median_days_alert_to_churn"] == -30  # B: alerted 30 days after leaving
    assert float(rules["share_alerted_before_churn"]) == 0.0
    assert rules["median_days_last_purchase_to_alert"] == 8  # A: last bought day -3
    assert (baseline["alerts"], float(baseline["precision"]), float(baseline["recall"])) == (
        1,
        1.0,
        0.333,
    )


def test_the_strict_reading_gives_no_grace_after_a_churn() -> None:
    rules = _judge(grace_days=0)["rules"]
    assert (rules["true_alerts"], rules["caught"]) == (1, 1)  # only A's first alert


@pytest.mark.slow
def test_on_the_demo_danger_entries_beat_the_baseline_strictly(tmp_path: Path) -> None:
    """The README's demo (3,000 customers, 365 days, seed 42) under the strict reading: an
    alert after the hidden churn never counts. The danger entries beat the fixed 90-day
    rule on precision, recall and timing. They do not reach issue 13's 0.7 on both
    counts: docs/lifecycle.md gives the figures and why (the simulator counts only its
    dissatisfaction episodes, while the risk also flags customers lapsing without one)."""
    start, days = date(2025, 1, 1), 365
    generate(tmp_path, start=start, days=days, customers=3000, seed=42)
    settings = with_paths(Settings(), tmp_path)
    publish = settings.publish.model_copy(update={"key_secret": SecretStr("quality-test")})
    settings = settings.model_copy(update={"publish": publish})
    run_days(settings, start, start + timedelta(days=days - 1))
    report = detection_quality(settings, tmp_path / "ground_truth", QualityOptions(grace_days=0))
    rules, baseline = report.method("customer_rules"), report.method("recency_90_days")
    print(report)
    assert float(rules["precision"]) > float(baseline["precision"])
    assert float(rules["recall"]) > float(baseline["recall"])
    assert rules["median_days_onset_to_alert"] < baseline["median_days_onset_to_alert"]
    # The risk agrees with the stages: lowest in maturity, higher in danger, highest in
    # termination; the model (not the fallback) is in force by the end of the year.
    con = duckdb.connect()
    last = tmp_path / "lake" / "customer_lifecycle" / "as_of_date=2025-12-31" / "data.parquet"
    medians = dict(
        con.execute(
            "select stage, median(risk) from read_parquet($file) group by stage",
            {"file": str(last)},
        ).fetchall()
    )
    assert medians["maturity"] < medians["danger"] < medians["termination"]
    sources = con.execute(
        "select distinct risk_source from read_parquet($file)", {"file": str(last)}
    ).fetchall()
    assert sources == [("model",)]
