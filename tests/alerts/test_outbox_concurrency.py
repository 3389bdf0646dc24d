"""Several deliverers on one outbox: each alert is sent once, whoever sends it.

The deliverers here are separate processes (started with ``spawn``, so nothing is shared
but the SQLite file) or separate connections in one process, as an Airflow task and a
CLI run would be.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from pipeline.alerts import deliver, deliveries, enqueue, pending
from pipeline.alerts.delivery import DeliveryReport
from pipeline.alerts.outbox import open_outbox
from pipeline.config import Settings
from tests.alerts.support import (
    Sleeps,
    SmtpSink,
    WebhookReceiver,
    make_alerts,
    with_alerts,
    write_alerts,
)

DAY = date(2026, 3, 15)
SECRET = "k"


def _queued(
    settings: Settings,
    receiver: Callable[..., WebhookReceiver],
    *,
    alerts: int,
    slow_seconds: float,
) -> tuple[WebhookReceiver, Settings, list[str]]:
    """A slow webhook receiver, settings that send to it, and ``alerts`` alerts queued."""
    server = receiver(SECRET, slow_first=1, slow_seconds=slow_seconds)
    settings = with_alerts(settings, webhook_url=server.url, webhook_secret=SECRET)
    values = [f"{n}.00" for n in range(1, alerts + 1)]
    enqueue(settings, DAY, write_alerts(settings, DAY, make_alerts(DAY, values)))
    return server, settings, values


def _deliver_in_process(settings: Settings, start: Any, results: Any) -> None:
    """A deliverer of its own: waits for the start, delivers, reports its counts."""
    start.wait(timeout=60)
    report = deliver(settings, sleep=Sleeps(), today=DAY)
    webhook = report.channels["webhook"]
    results.put((os.getpid(), webhook.sent, webhook.delivered, webhook.errors))


def _claim_and_die(settings: Settings, alert_id: str, lease_seconds: float) -> None:
    """Claim an alert, then end as a killed process would: no close, no release."""
    with open_outbox(settings) as box:
        assert box.claim("webhook", [alert_id], timedelta(seconds=lease_seconds)) == [alert_id]
        os._exit(0)


def test_two_delivering_processes_send_each_alert_once(
    settings: Settings, receiver: Callable[..., WebhookReceiver]
) -> None:
    # Every first request waits 0.1 s before its answer: the two runs overlap throughout.
    server, settings, values = _queued(settings, receiver, alerts=24, slow_seconds=0.1)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_deliver_in_process, args=(settings, start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    # Each alert reached the receiver once: no request was a repeat.
    assert len(server.requests) == len(values) == len(server.accepted)
    assert sorted(request.key for request in server.requests) == sorted(server.accepted)
    assert sum(sent for _, sent, _, _ in reports) == len(values)
    assert sum(delivered for _, _, delivered, _ in reports) == len(values)
    # Both really delivered at the same time, each leaving the other's alerts alone.
    assert all(sent > 0 for _, sent, _, _ in reports), reports
    assert all(any("another delivery run" in e for e in errors) for *_, errors in reports)
    assert {(row.status, row.attempts) for row in deliveries(settings)} == {("delivered", 1)}


def test_deliverers_in_threads_with_their_own_connections_send_each_alert_once(
    settings: Settings, receiver: Callable[..., WebhookReceiver]
) -> None:
    server, settings, values = _queued(settings, receiver, alerts=20, slow_seconds=0.05)
    barrier = threading.Barrier(4)
    reports: list[DeliveryReport] = []

    def run() -> None:
        barrier.wait(timeout=30)
        reports.append(deliver(settings, sleep=Sleeps(), today=DAY))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(reports) == 4
    assert len(server.requests) == len(values) == len(server.accepted)
    assert sum(report.total("sent") for report in reports) == len(values)
    assert pending(settings) == []


def test_an_alert_another_run_is_sending_is_left_alone_until_it_lets_go(
    settings: Settings,
    receiver: Callable[..., WebhookReceiver],
    smtp_sink: Callable[..., SmtpSink],
) -> None:
    server, mail_server = receiver(SECRET), smtp_sink()
    settings = with_alerts(
        settings,
        webhook_url=server.url,
        webhook_secret=SECRET,
        smtp_url=mail_server.url(),
        email_to=["crm@example.com"],
    )
    alerts = make_alerts(DAY, ["10.00", "20.00", "30.00"])
    ids = [alert["alert_id"] for alert in alerts]
    enqueue(settings, DAY, write_alerts(settings, DAY, alerts))

    with open_outbox(settings) as other:  # another run, busy sending the first alert
        assert other.claim("webhook", ids[:1], timedelta(minutes=5)) == ids[:1]
        assert other.claim("email", ids[:1], timedelta(minutes=5)) == ids[:1]

        report = deliver(settings, sleep=Sleeps(), today=DAY)

        assert sorted(server.accepted) == sorted(ids[1:])
        [message] = mail_server.messages
        assert ids[0] not in message.get_content()
        assert all(alert_id in message.get_content() for alert_id in ids[1:])
        for channel in ("webhook", "email"):
            assert report.channels[channel].delivered == 2
            assert report.channels[channel].pending == 1
            assert any("1 alerts left to another" in e for e in report.channels[channel].errors)
        assert {(row.channel, row.alert_id) for row in pending(settings)} == {
            ("webhook", ids[0]),
            ("email", ids[0]),
        }
    # Closing the other run's outbox ended its claims: the alert is free again.

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.total("delivered") == 2
    assert sorted(server.accepted) == sorted(ids)
    assert len(server.requests) == 3
    assert len(mail_server.messages) == 2
    assert pending(settings) == []


def test_a_killed_deliverers_claim_runs_out_and_the_alert_is_sent(
    settings: Settings, receiver: Callable[..., WebhookReceiver]
) -> None:
    server = receiver(SECRET)
    settings = with_alerts(settings, webhook_url=server.url, webhook_secret=SECRET)
    [alert] = make_alerts(DAY, ["10.00"])
    enqueue(settings, DAY, write_alerts(settings, DAY, [alert]))
    context = multiprocessing.get_context("spawn")
    killed = context.Process(target=_claim_and_die, args=(settings, alert["alert_id"], 5.0))
    killed.start()
    killed.join(timeout=60)
    assert killed.exitcode == 0

    # Its claim is still held: the alert may be on its way, so it is not sent again yet.
    report = deliver(settings, sleep=Sleeps(), today=DAY)
    assert report.total("sent") == 0 and report.total("pending") == 1
    [row] = pending(settings)
    assert row.attempts == 1  # the dead run's attempt

    with open_outbox(settings) as box:  # the lease runs out
        for _ in range(100):
            if box.claim("webhook", [alert["alert_id"]], timedelta(minutes=1)):
                box.release()
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail("the dead run's claim never ran out")

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.total("delivered") == 1
    assert list(server.accepted) == [alert["alert_id"]]
    assert [(row.status, row.attempts) for row in deliveries(settings)] == [("delivered", 3)]


def test_many_connections_opening_a_new_outbox_at_once_all_succeed(settings: Settings) -> None:
    threads, errors = [], []

    def add(n: int) -> None:
        try:
            with open_outbox(settings) as box:
                box.add(["webhook"], [(f"a{n}", DAY, "{}")])
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    for n in range(8):
        threads.append(threading.Thread(target=add, args=(n,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(row.alert_id for row in pending(settings)) == [f"a{n}" for n in range(8)]
