"""The webhook channel against a real HTTP server on 127.0.0.1 that fails, hangs and dedupes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from pipeline import preflight
from pipeline.alerts import deliver, deliveries, enqueue, pending
from pipeline.alerts.webhook import request_headers, sign
from pipeline.config import Settings
from pipeline.errors import ConfigError
from tests.alerts.support import Sleeps, WebhookReceiver, make_alerts, with_alerts, write_alerts

DAY = date(2026, 3, 15)
NEXT_DAY = DAY + timedelta(days=1)
SECRET = "correct horse battery staple"
StartReceiver = Callable[..., WebhookReceiver]


def _settings(settings: Settings, receiver: WebhookReceiver, **alerts: object) -> Settings:
    options: dict[str, object] = {"webhook_url": receiver.url, "webhook_secret": SECRET}
    return with_alerts(settings, **(options | alerts))


def _queue(settings: Settings, day: date, values: list[str], first: int = 1) -> list[str]:
    alerts = make_alerts(day, values, first)
    assert enqueue(settings, day, write_alerts(settings, day, alerts)) == len(alerts)
    return [str(alert["alert_id"]) for alert in alerts]


def test_every_alert_arrives_once_through_failures(
    settings: Settings, receiver: StartReceiver
) -> None:
    server = receiver(SECRET, default_plan=[500, 503])
    settings = _settings(
        settings, server, max_attempts=3, backoff_seconds=1, backoff_max_seconds=30
    )
    ids = _queue(settings, DAY, ["120.50", "9800.00", "15.25", "430.00"])
    sleeps = Sleeps()

    report = deliver(settings, sleep=sleeps, today=DAY)

    assert sorted(server.accepted) == sorted(ids)
    assert all(len(server.requests_for(key)) == 3 for key in ids)  # two failures, then accepted
    assert len(server.requests) == 12
    assert all(request.signature_ok for request in server.requests)
    assert sleeps == [1.0, 2.0]  # one wait per round, not per alert
    webhook = report.channels["webhook"]
    assert (webhook.delivered, webhook.pending, webhook.given_up, webhook.sent) == (4, 0, 0, 12)
    assert webhook.errors == ["HTTP 500: planned failure", "HTTP 503: planned failure"]
    rows = deliveries(settings)
    assert {row.status for row in rows} == {"delivered"}
    assert all(row.attempts == 3 and row.delivered_at is not None for row in rows)
    assert all(row.last_error == "HTTP 503: planned failure" for row in rows)


def test_payload_is_the_alert_row(settings: Settings, receiver: StartReceiver) -> None:
    server = receiver(SECRET)
    settings = _settings(settings, server)
    [alert_id] = _queue(settings, DAY, ["1234.50"])

    deliver(settings, sleep=Sleeps(), today=DAY)

    assert server.accepted[alert_id] == {
        "alert_id": alert_id,
        "as_of_date": "2026-03-15",
        "customer_id": "C0001",
        "from_stage": "maturity",
        "rules": "gap",
        "reason": "no purchase for 40 days, usually every 12",
        "days_since_last_purchase": 40,
        "expected_gap_days": 12.5,
        "value_at_risk": "1234.50",
        "segment": "At Risk",
        "cluster_id": 2,
        "cluster_name": "high-value",
        "suggested_action": "Call personally with a tailored offer",
        "priority": 1,
    }


def test_backoff_doubles_up_to_the_cap_and_the_alerts_stay_queued(
    settings: Settings, receiver: StartReceiver
) -> None:
    server = receiver(SECRET, default_plan=[500] * 100)
    settings = _settings(settings, server, max_attempts=6, backoff_seconds=1, backoff_max_seconds=5)
    ids = _queue(settings, DAY, ["10.00", "20.00"])
    sleeps = Sleeps()

    report = deliver(settings, sleep=sleeps, today=DAY)

    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert report.total("delivered") == 0 and report.total("pending") == 2
    assert len(server.requests) == 12
    assert [(row.alert_id, row.attempts, row.last_error) for row in pending(settings)] == [
        (alert_id, 6, "HTTP 500: planned failure") for alert_id in sorted(ids)
    ]


def test_server_down_for_a_whole_run_gets_everything_next_run(
    settings: Settings, receiver: StartReceiver
) -> None:
    server = receiver(SECRET)
    server.stop()  # connections to its port are refused now
    settings = _settings(settings, server, max_attempts=3)
    first_ids = _queue(settings, DAY, ["50.00", "60.00", "70.00"])

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    webhook = report.channels["webhook"]
    assert (webhook.delivered, webhook.pending, webhook.given_up) == (0, 3, 0)
    assert webhook.errors and all("cannot reach http://127.0.0.1:" in e for e in webhook.errors)
    assert not any("token" in error for error in webhook.errors)  # the URL's path stays out
    # A dead server is tried once per round, not once per alert and round.
    assert webhook.sent == 3
    assert sorted(row.alert_id for row in pending(settings)) == sorted(first_ids)

    server.start()  # the same port again
    second_ids = _queue(settings, NEXT_DAY, ["5.00", "6.00"], first=10)
    report = deliver(settings, sleep=Sleeps(), today=NEXT_DAY)

    assert report.total("delivered") == 5 and report.total("pending") == 0
    assert sorted(server.accepted) == sorted(first_ids + second_ids)
    assert len(server.requests) == 5  # the healthy server saw each alert once
    assert pending(settings) == []


def test_rerunning_a_day_sends_nothing_twice(settings: Settings, receiver: StartReceiver) -> None:
    server = receiver(SECRET)
    settings = _settings(settings, server)
    values = ["11.00", "22.00", "33.00"]
    ids = _queue(settings, DAY, values)
    again = write_alerts(settings, DAY, make_alerts(DAY, values))

    assert enqueue(settings, DAY, again) == 0
    first = deliver(settings, sleep=Sleeps(), today=DAY)
    assert enqueue(settings, DAY, again) == 0
    second = deliver(settings, sleep=Sleeps(), today=DAY)

    assert first.total("delivered") == 3
    assert (second.total("delivered"), second.total("sent")) == (0, 0)
    assert sorted(server.accepted) == sorted(ids)
    assert len(server.requests) == 3
    assert {row.status for row in deliveries(settings)} == {"delivered"}


def test_slow_server_times_out_then_the_retry_is_deduplicated(
    settings: Settings, receiver: StartReceiver
) -> None:
    # The server takes each alert on its first request but answers only after the client
    # gave up: the retry repeats the Idempotency-Key and the receiver keeps one copy.
    server = receiver(SECRET, slow_first=1, slow_seconds=1.5)
    settings = _settings(settings, server, webhook_timeout_seconds=0.5, max_attempts=6)
    ids = _queue(settings, DAY, ["100.00", "200.00"])

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.total("delivered") == 2
    assert any("timed out after 0.5 s" in error for error in report.channels["webhook"].errors)
    assert sorted(server.accepted) == sorted(ids)
    for key in ids:
        requests = server.requests_for(key)
        assert len(requests) >= 2, server.requests  # exactly 2 unless the machine stalls
        assert len({request.body for request in requests}) == 1


def test_alerts_undelivered_too_long_are_given_up_and_reported(
    settings: Settings, receiver: StartReceiver
) -> None:
    server = receiver(SECRET)
    server.stop()
    settings = _settings(settings, server, max_attempts=2, give_up_after_days=3)
    ids = _queue(settings, DAY, ["70.00", "80.00"])

    on_the_last_day = deliver(settings, sleep=Sleeps(), today=DAY + timedelta(days=3))
    assert (on_the_last_day.total("pending"), on_the_last_day.total("given_up")) == (2, 0)

    server.start()
    report = deliver(settings, sleep=Sleeps(), today=DAY + timedelta(days=4))

    assert sorted(item.alert_id for item in report.given_up) == sorted(ids)
    assert all("more than 3 days" in item.reason for item in report.given_up)
    assert all("cannot reach" in item.reason for item in report.given_up)
    assert report.channels["webhook"].given_up == 2
    assert server.requests == []  # given up means not sent any more
    assert pending(settings) == []
    assert {row.status for row in deliveries(settings)} == {"given_up"}


def test_client_errors_give_up_conflict_counts_as_delivered(
    settings: Settings, receiver: StartReceiver
) -> None:
    ids = make_alerts(DAY, ["1.00", "2.00", "3.00", "4.00"])
    bad, known, busy, fine = (str(alert["alert_id"]) for alert in ids)
    server = receiver(SECRET, plan={bad: [400], known: [409], busy: [429, 429]})
    settings = _settings(settings, server, max_attempts=3)
    enqueue(settings, DAY, write_alerts(settings, DAY, ids))

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    rows = {row.alert_id: row for row in deliveries(settings)}
    assert (rows[bad].status, rows[bad].attempts) == ("given_up", 1)  # not retried
    assert rows[bad].give_up_reason == "HTTP 400: unknown customer"
    assert [(item.alert_id, item.reason) for item in report.given_up] == [
        (bad, "HTTP 400: unknown customer")
    ]
    assert rows[known].status == "delivered"  # 409: the receiver has it already
    assert (rows[busy].status, rows[busy].attempts) == ("delivered", 3)
    assert rows[fine].status == "delivered"
    assert (report.total("delivered"), report.total("given_up")) == (3, 1)


def test_a_wrong_secret_is_refused_by_a_verifying_receiver(
    settings: Settings, receiver: StartReceiver
) -> None:
    server = receiver(SECRET)
    settings = _settings(settings, server, webhook_secret="not the secret")
    [alert_id] = _queue(settings, DAY, ["9.99"])

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert [request.signature_ok for request in server.requests] == [False]
    assert server.accepted == {}
    assert [(item.alert_id, item.reason) for item in report.given_up] == [
        (alert_id, "HTTP 401: signature does not verify")
    ]


def test_without_a_secret_no_signature_is_sent(settings: Settings, receiver: StartReceiver) -> None:
    server = receiver(None)  # accepts only requests without a signature header
    settings = _settings(settings, server, webhook_secret="", allow_unsigned_webhook=True)
    [alert_id] = _queue(settings, DAY, ["9.99"])

    deliver(settings, sleep=Sleeps(), today=DAY)

    assert list(server.accepted) == [alert_id]
    assert json.loads(server.requests[0].body)["alert_id"] == alert_id


# --- The Standard Webhooks scheme ------------------------------------------------------


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (and Svix's documentation).
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_whsec_secret_is_verified_by_a_stock_receiver(
    settings: Settings, receiver: StartReceiver
) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    server = receiver(secret)
    settings = _settings(settings, server, webhook_secret=secret)
    [alert_id] = _queue(settings, DAY, ["9.99"])

    deliver(settings, sleep=Sleeps(), today=DAY)

    [request] = server.requests
    assert request.signature_ok and list(server.accepted) == [alert_id]


def test_the_id_is_signed() -> None:
    """A body replayed under another webhook-id does not verify."""
    body = b'{"alert_id": "a"}'
    headers = request_headers("a", body, SECRET, 1_700_000_000)
    assert headers["webhook-id"] == headers["Idempotency-Key"] == "a"
    assert headers["webhook-signature"] != sign(SECRET, "b", 1_700_000_000, body)
    assert headers["webhook-signature"] == sign(SECRET, "a", 1_700_000_000, body)


def test_a_malformed_whsec_secret_is_refused_before_any_work(settings: Settings) -> None:
    settings = with_alerts(
        settings, webhook_url="https://example.invalid/hook", webhook_secret="whsec_not*base64"
    )
    with pytest.raises(ConfigError, match="not base64 after whsec_"):
        preflight.check(settings, ["alerts"])
