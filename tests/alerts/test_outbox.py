"""The outbox: idempotent queueing, faithful payloads, and no lost alert across a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from pipeline.alerts import AlertsFileError, deliver, deliveries, enqueue, pending
from pipeline.alerts.outbox import Outbox, outbox_file
from pipeline.config import Settings
from tests.alerts.support import (
    ALERT_COLUMNS,
    Sleeps,
    SmtpSink,
    WebhookReceiver,
    make_alerts,
    with_alerts,
    write_alerts,
)

DAY = date(2026, 3, 15)
VALUES = ["300.00", "100.00", "200.00"]


def _both_channels(settings: Settings) -> Settings:
    # Nothing listens on port 9: queueing must not need the servers.
    return with_alerts(
        settings,
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="k",
        smtp_url="smtp://127.0.0.1:9",
        email_to=["crm@example.com"],
    )


def test_enqueue_is_idempotent_per_channel_and_alert(settings: Settings) -> None:
    settings = _both_channels(settings)
    alerts = make_alerts(DAY, VALUES)
    file = write_alerts(settings, DAY, alerts)

    assert enqueue(settings, DAY, file) == 6
    assert enqueue(settings, DAY, file) == 0
    # A re-run of the day that finds one more alert queues just that one, on each channel.
    rerun = write_alerts(settings, DAY, make_alerts(DAY, [*VALUES, "50.00"]))
    assert enqueue(settings, DAY, rerun) == 2

    rows = pending(settings)
    assert len(rows) == 8
    assert {(row.channel, row.alert_id) for row in rows} == {
        (channel, f"danger-C000{n}-20260315")
        for channel in ("email", "webhook")
        for n in (1, 2, 3, 4)
    }
    assert all(row.attempts == 0 and row.as_of_date == DAY for row in rows)


def test_delivered_alerts_stay_delivered_when_the_day_is_queued_again(
    settings: Settings, receiver: Callable[..., WebhookReceiver]
) -> None:
    server = receiver(None)
    # An unsigned webhook, allowed: the receiver accepts only requests without a signature.
    settings = with_alerts(settings, webhook_url=server.url, allow_unsigned_webhook=True)
    file = write_alerts(settings, DAY, make_alerts(DAY, VALUES))
    enqueue(settings, DAY, file)
    deliver(settings, sleep=Sleeps(), today=DAY)

    assert enqueue(settings, DAY, file) == 0

    assert {row.status for row in deliveries(settings)} == {"delivered"}
    assert pending(settings) == []


def test_no_channel_or_no_alert_queues_nothing(settings: Settings) -> None:
    file = write_alerts(settings, DAY, make_alerts(DAY, VALUES))
    assert enqueue(settings, DAY, file) == 0  # no channel configured

    settings = _both_channels(settings)
    empty = write_alerts(settings, DAY, [])
    assert enqueue(settings, DAY, empty) == 0
    assert deliveries(settings) == []
    report = deliver(settings, sleep=Sleeps(), today=DAY)
    assert report.total("sent") == 0  # nothing to say: no empty email, no request


def test_payload_round_trip_passes_every_column_through(settings: Settings) -> None:
    settings = _both_channels(settings)
    [alert] = make_alerts(DAY, ["1234.50"])
    alert |= {"reason": '没有购买 (no purchase) "quoted"', "expected_gap_days": None}
    extra = {"model_version": "2026-03-09", "scored_at": "2026-03-15 23:59:59"}
    columns = ALERT_COLUMNS + ", model_version varchar, scored_at timestamp"
    file = write_alerts(settings, DAY, [alert | extra], columns)

    enqueue(settings, DAY, file)

    payloads = {row.channel: row.payload for row in pending(settings)}
    assert payloads["webhook"] == payloads["email"]
    assert json.loads(payloads["webhook"]) == {
        **{
            key: value for key, value in alert.items() if key not in ("as_of_date", "value_at_risk")
        },
        "as_of_date": "2026-03-15",
        "value_at_risk": "1234.50",
        "model_version": "2026-03-09",
        "scored_at": "2026-03-15T23:59:59",
    }
    assert Decimal(json.loads(payloads["webhook"])["value_at_risk"]) == alert["value_at_risk"]


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("duplicate", "appears twice"),
        ("other_date", "is dated 2026-03-14"),
        ("bad_id", "is not visible ASCII"),
    ],
)
def test_a_broken_file_queues_nothing(settings: Settings, problem: str, message: str) -> None:
    settings = _both_channels(settings)
    alerts = make_alerts(DAY, VALUES)
    if problem == "duplicate":
        alerts[2]["alert_id"] = alerts[0]["alert_id"]
    elif problem == "other_date":
        alerts[1]["as_of_date"] = date(2026, 3, 14)
    else:
        alerts[1]["alert_id"] = "danger\r\nX-Injected: 1"
    file = write_alerts(settings, DAY, alerts)

    with pytest.raises(AlertsFileError, match=message):
        enqueue(settings, DAY, file)
    with pytest.raises(AlertsFileError, match="no such alerts file"):
        enqueue(settings, DAY, file.with_name("missing.parquet"))
    assert deliveries(settings) == []


def _crash_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next `mark_delivered` dies as a killed process would, after the send."""
    real = Outbox.mark_delivered

    def crash(self: Outbox, channel: str, alert_ids: list[str]) -> None:
        monkeypatch.setattr(Outbox, "mark_delivered", real)
        raise RuntimeError("killed between the send and its record")

    monkeypatch.setattr(Outbox, "mark_delivered", crash)


def test_a_crash_after_a_webhook_send_resends_with_the_same_key(
    settings: Settings, receiver: Callable[..., WebhookReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = receiver("k")
    settings = with_alerts(settings, webhook_url=server.url, webhook_secret="k")
    file = write_alerts(settings, DAY, make_alerts(DAY, ["10.00"]))
    enqueue(settings, DAY, file)
    _crash_once(monkeypatch)

    with pytest.raises(RuntimeError, match="killed"):
        deliver(settings, sleep=Sleeps(), today=DAY)
    [row] = pending(settings)  # not lost: still queued, the attempt counted
    assert row.attempts == 1
    assert len(server.accepted) == 1

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.total("delivered") == 1
    first, resend = server.requests
    assert first.key == resend.key == row.alert_id
    assert first.body == resend.body
    assert list(server.accepted) == [row.alert_id]  # the receiver deduplicated
    assert [(r.status, r.attempts) for r in deliveries(settings)] == [("delivered", 2)]


def test_a_crash_after_an_email_resends_with_the_same_message_id(
    settings: Settings, smtp_sink: Callable[..., SmtpSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_sink()
    settings = with_alerts(settings, smtp_url=server.url(), email_to=["crm@example.com"])
    enqueue(settings, DAY, write_alerts(settings, DAY, make_alerts(DAY, VALUES)))
    _crash_once(monkeypatch)

    with pytest.raises(RuntimeError, match="killed"):
        deliver(settings, sleep=Sleeps(), today=DAY)
    assert len(pending(settings)) == 3

    deliver(settings, sleep=Sleeps(), today=DAY)

    first, resend = server.messages
    assert first["Message-ID"] == resend["Message-ID"]
    assert first.get_content() == resend.get_content()
    assert pending(settings) == []


def test_the_outbox_is_closed_between_calls_and_holds_the_documented_table(
    settings: Settings,
) -> None:
    settings = _both_channels(settings)
    enqueue(settings, DAY, write_alerts(settings, DAY, make_alerts(DAY, VALUES)))

    # Another process can open it: nothing keeps it open after a call.
    con = duckdb.connect(str(outbox_file(settings)), read_only=True)
    try:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_name = 'deliveries' order by ordinal_position"
        ).fetchall()
        statuses = con.execute("select status, count(*) from deliveries group by all").fetchall()
    finally:
        con.close()
    assert columns == [
        ("channel", "VARCHAR"),
        ("alert_id", "VARCHAR"),
        ("as_of_date", "DATE"),
        ("payload", "JSON"),
        ("status", "VARCHAR"),
        ("attempts", "INTEGER"),
        ("last_error", "VARCHAR"),
        ("give_up_reason", "VARCHAR"),
        ("first_queued_at", "TIMESTAMP WITH TIME ZONE"),
        ("last_attempt_at", "TIMESTAMP WITH TIME ZONE"),
        ("delivered_at", "TIMESTAMP WITH TIME ZONE"),
        ("given_up_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    assert statuses == [("queued", 6)]
