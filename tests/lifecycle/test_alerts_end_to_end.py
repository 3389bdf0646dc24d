"""Danger alerts from real purchase histories to a real local webhook that misbehaves.

Four customers buy every 3 days and fall silent one after another; each enters danger
4 days after their last purchase (a silence longer than any of the shop's gaps: the
young lake's rhythm fallback), on days 16, 19, 22 and 25. Every day runs like
`rfm-pipeline run`: ingest, score, lifecycle, deliver. The receiver answers 500 then 503
to each alert's first two requests, and is down for the whole run of day 19: that day's
alert waits in the outbox and arrives on day 20.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.alerts import deliver, deliveries
from pipeline.config import AlertsConfig, LifecycleConfig, ScoringConfig, Settings
from pipeline.lifecycle.run import stage_date
from pipeline.scoring.run import score_date
from tests.alerts.support import Sleeps, WebhookReceiver
from tests.scoring.history import Line, ingest_history
from tests.support import read_lake, with_paths

DAY0 = date(2025, 3, 1)
LAST = 30
SECRET = "whsec-test"
LAST_PURCHASE = {"A1": 12, "A2": 15, "A3": 18, "A4": 21}


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _settings(root: Path, url: str) -> Settings:
    base = with_paths(Settings(), root)
    return base.model_copy(
        update={
            "scoring": ScoringConfig(window_days=60),
            "lifecycle": LifecycleConfig(recent_days=14, prior_gaps=0),
            "alerts": AlertsConfig(
                webhook_url=url, webhook_secret=SECRET, max_attempts=4, backoff_seconds=0.5
            ),
        }
    )


def test_every_alert_arrives_exactly_once_through_failures_and_a_down_run(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET, default_plan=(500, 503)).start()
    try:
        settings = _settings(tmp_path, receiver.url)
        lines = [
            Line(day(n), f"{customer}-{n}", customer, "50")
            for customer, last in LAST_PURCHASE.items()
            for n in range(0, last + 1, 3)
        ]
        lines += [Line(day(n), f"S-{n}", "S", "50") for n in range(0, LAST + 1, 3)]
        ingest_history(settings, lines, day(0), day(LAST))
        sleeps = Sleeps()
        for n in range(LAST + 1):
            score_date(settings, day(n))
            stage_date(settings, day(n))
            if n == 19:
                receiver.stop()
            report = deliver(settings, today=day(n), sleep=sleeps)
            if n == 19:
                assert report.channels["webhook"].pending == 1  # kept, not lost
                receiver.start()
        alerts = read_lake(settings, "danger_alerts")
        assert sorted(((row["as_of_date"] - DAY0).days, row["customer_id"]) for row in alerts) == [
            (16, "A1"),
            (19, "A2"),
            (22, "A3"),
            (25, "A4"),
        ]
        ids = {str(row["alert_id"]) for row in alerts}
        assert set(receiver.accepted) == ids  # every alert, exactly once after dedup
        accepted_days = {key: body["as_of_date"] for key, body in receiver.accepted.items()}
        assert sorted(accepted_days.values()) == [str(day(n)) for n in (16, 19, 22, 25)]
        for alert_id in ids:
            statuses = [request.status for request in receiver.requests_for(alert_id)]
            assert statuses == [500, 503, 200]  # retried, and never sent again once accepted
        assert all(request.signature_ok for request in receiver.requests)
        assert sleeps  # backoff was asked for, not slept
        assert {delivery.status for delivery in deliveries(settings)} == {"delivered"}
    finally:
        receiver.stop()
