"""The outbox: idempotent queueing, faithful payloads, and no lost alert across a crash."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from pipeline.alerts import AlertsFileError, deliver, deliveries, enqueue, pending
from pipeline.alerts.outbox import SCHEMA_VERSION, Outbox, OutboxError, open_outbox, outbox_file
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

    database = outbox_file(settings)
    assert database == settings.paths.state / "outbox" / "outbox.sqlite"
    # Closed after the call: the last connection to close checkpoints and removes the WAL.
    assert not database.with_name("outbox.sqlite-wal").exists()
    assert sorted(path.name for path in database.parent.iterdir()) == ["outbox.sqlite"]
    con = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        columns = con.execute(
            "select name, type, \"notnull\", pk from pragma_table_info('deliveries')"
        ).fetchall()
        statuses = con.execute("select status, count(*) from deliveries group by 1").fetchall()
        [(version,)] = con.execute("pragma user_version").fetchall()
        [(mode,)] = con.execute("pragma journal_mode").fetchall()
        [(sql,)] = con.execute("select sql from sqlite_schema where name = 'deliveries'")
    finally:
        con.close()
    assert columns == [
        ("channel", "TEXT", 1, 1),
        ("alert_id", "TEXT", 1, 2),
        ("as_of_date", "TEXT", 1, 0),
        ("payload", "TEXT", 1, 0),
        ("status", "TEXT", 1, 0),
        ("attempts", "INTEGER", 1, 0),
        ("last_error", "TEXT", 0, 0),
        ("give_up_reason", "TEXT", 0, 0),
        ("first_queued_at", "TEXT", 1, 0),
        ("last_attempt_at", "TEXT", 0, 0),
        ("delivered_at", "TEXT", 0, 0),
        ("given_up_at", "TEXT", 0, 0),
        ("claimed_by", "TEXT", 0, 0),
        ("claimed_until", "TEXT", 0, 0),
    ]
    assert "strict" in sql.lower()
    assert statuses == [("queued", 6)]
    assert (version, mode) == (SCHEMA_VERSION, "wal")


def test_open_outbox_sets_wal_busy_timeout_and_durable_commits(settings: Settings) -> None:
    with open_outbox(settings) as box:
        con = box._con
        assert con.execute("pragma journal_mode").fetchone() == ("wal",)
        assert con.execute("pragma busy_timeout").fetchone() == (60_000,)
        assert con.execute("pragma synchronous").fetchone() == (2,)  # FULL


def test_times_and_dates_come_back_as_they_were_stored(settings: Settings) -> None:
    settings = _both_channels(settings)
    enqueue(settings, DAY, write_alerts(settings, DAY, make_alerts(DAY, ["10.00"])))
    with open_outbox(settings) as box:
        box.give_up("email", ["danger-C0001-20260315"], "no longer wanted")
    given_up, queued = sorted(deliveries(settings), key=lambda row: row.channel)

    assert (given_up.status, given_up.give_up_reason) == ("given_up", "no longer wanted")
    assert given_up.as_of_date == DAY and isinstance(given_up.as_of_date, date)
    assert given_up.given_up_at is not None and given_up.given_up_at.tzinfo is not None
    assert given_up.first_queued_at <= given_up.given_up_at
    assert given_up.given_up_at - given_up.first_queued_at < timedelta(minutes=1)
    assert (queued.status, queued.given_up_at, queued.delivered_at) == ("queued", None, None)


def test_quotes_in_an_alert_id_are_data_not_sql(settings: Settings) -> None:
    settings = _both_channels(settings)
    alerts = make_alerts(DAY, ["10.00", "20.00"])
    alerts[0]["alert_id"] = "danger-O'Brien-1'); drop table deliveries; --"
    alerts[1]["alert_id"] = 'danger-"C2"-20260315'
    enqueue(settings, DAY, write_alerts(settings, DAY, alerts))

    with open_outbox(settings) as box:
        assert box.claim("webhook", [alerts[0]["alert_id"]], timedelta(minutes=1)) == [
            alerts[0]["alert_id"]
        ]
        box.mark_delivered("webhook", [alerts[0]["alert_id"]])

    assert {(row.channel, row.alert_id, row.status) for row in deliveries(settings)} == {
        ("webhook", alerts[0]["alert_id"], "delivered"),
        ("webhook", alerts[1]["alert_id"], "queued"),
        ("email", alerts[0]["alert_id"], "queued"),
        ("email", alerts[1]["alert_id"], "queued"),
    }


def test_an_outbox_of_a_newer_schema_is_refused_with_a_clear_error(settings: Settings) -> None:
    database = outbox_file(settings)
    database.parent.mkdir(parents=True)
    con = sqlite3.connect(database)
    con.execute(f"pragma user_version = {SCHEMA_VERSION + 1}")
    con.close()

    with pytest.raises(OutboxError, match="schema version 2 was written by a newer release"):
        deliveries(settings)
