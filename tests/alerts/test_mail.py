"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from pipeline.alerts import deliver, deliveries, enqueue, pending
from pipeline.alerts.mail import SmtpServer, parse_smtp_url
from pipeline.config import Settings
from pipeline.errors import ConfigError
from tests.alerts.support import Sleeps, SmtpSink, make_alerts, with_alerts, write_alerts

DAY = date(2026, 3, 15)
NEXT_DAY = DAY + timedelta(days=1)
RECIPIENTS = ["crm@example.com", "Team Lead <lead@example.com>"]
StartSink = Callable[..., SmtpSink]


def _settings(settings: Settings, smtp_url: str, **alerts: object) -> Settings:
    return with_alerts(
        settings,
        smtp_url=smtp_url,
        email_from="RFM alerts <alerts@shop.example>",
        email_to=RECIPIENTS,
        **alerts,
    )


def _queue(settings: Settings, day: date, values: list[str], first: int = 1) -> list[str]:
    alerts = make_alerts(day, values, first)
    enqueue(settings, day, write_alerts(settings, day, alerts))
    return [str(alert["alert_id"]) for alert in alerts]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_one_message_lists_the_alerts_ranked_by_value(
    settings: Settings, smtp_sink: StartSink
) -> None:
    server = smtp_sink()
    settings = _settings(settings, server.url())
    _queue(settings, DAY, ["120.00", "9800.50", "15.25", "1430.00"])

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert (report.channels["email"].delivered, report.channels["email"].sent) == (4, 1)
    [message] = server.messages
    assert server.envelopes == [("alerts@shop.example", ["crm@example.com", "lead@example.com"])]
    assert message["Subject"] == "Danger alerts 2026-03-15: 4 customers, 11,365.75 at risk"
    assert message["To"] == "crm@example.com, Team Lead <lead@example.com>"
    # (A long Message-ID may be folded onto a continuation line, hence the strip.)
    assert re.fullmatch(
        r"<danger-alerts\.[0-9a-f]{32}@shop\.example>", message["Message-ID"].strip()
    )
    body = message.get_content().replace("\r\n", "\n")
    listed = re.findall(r"^\d+\. Customer (C\d+): ([\d,.]+) at risk$", body, re.MULTILINE)
    assert listed == [
        ("C0002", "9,800.50"),
        ("C0004", "1,430.00"),
        ("C0001", "120.00"),
        ("C0003", "15.25"),
    ]
    assert "What to do: Call personally with a tailored offer" in body
    assert "Alert danger-C0002-20260315 of 2026-03-15" in body
    rows = deliveries(settings)
    assert {(row.status, row.attempts) for row in rows} == {("delivered", 1)}


def test_each_run_mails_only_what_was_not_mailed(settings: Settings, smtp_sink: StartSink) -> None:
    server = smtp_sink()
    settings = _settings(settings, server.url())
    _queue(settings, DAY, ["10.00", "20.00"])
    deliver(settings, sleep=Sleeps(), today=DAY)
    deliver(settings, sleep=Sleeps(), today=DAY)  # nothing new: no message
    _queue(settings, NEXT_DAY, ["30.00"], first=5)

    deliver(settings, sleep=Sleeps(), today=NEXT_DAY)

    assert len(server.messages) == 2
    second = server.messages[1].get_content()
    assert "C0005" in second and "C0001" not in second
    assert server.messages[0]["Message-ID"] != server.messages[1]["Message-ID"]


def test_a_server_that_is_down_leaves_the_alerts_queued(settings: Settings) -> None:
    settings = _settings(settings, f"smtp://127.0.0.1:{_closed_port()}", max_attempts=3)
    ids = _queue(settings, DAY, ["10.00", "20.00"])
    sleeps = Sleeps()

    report = deliver(settings, sleep=sleeps, today=DAY)

    email = report.channels["email"]
    assert (email.delivered, email.pending, email.sent) == (0, 2, 3)
    assert email.errors and all(
        e.startswith("cannot send through 127.0.0.1:") for e in email.errors
    )
    assert sleeps == [1.0, 2.0]
    assert sorted((row.alert_id, row.attempts) for row in pending(settings)) == [
        (alert_id, 3) for alert_id in sorted(ids)
    ]


def test_a_refusing_server_keeps_the_alerts_until_it_accepts(
    settings: Settings, smtp_sink: StartSink
) -> None:
    server = smtp_sink(fail_first=2)
    settings = _settings(settings, server.url(), max_attempts=2)
    _queue(settings, DAY, ["10.00", "20.00"])

    refused = deliver(settings, sleep=Sleeps(), today=DAY)
    assert refused.channels["email"].pending == 2
    assert refused.channels["email"].errors == [
        f"127.0.0.1:{server.port} answered 451 4.3.0 Mailbox busy, try again later"
    ]
    accepted = deliver(settings, sleep=Sleeps(), today=DAY)

    assert accepted.channels["email"].delivered == 2
    assert server.data_commands == 3 and len(server.messages) == 1
    assert pending(settings) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_credentials_in_the_url_log_in(settings: Settings, smtp_sink: StartSink) -> None:
    server = smtp_sink(credentials=("crm bot", "p@ss:word"))
    good = _settings(settings, server.url("crm%20bot:p%40ss%3Aword@"))
    bad = _settings(settings, server.url("crm%20bot:wrong@"))
    _queue(good, DAY, ["10.00"])

    refused = deliver(bad, sleep=Sleeps(), today=DAY)
    assert refused.channels["email"].pending == 1
    assert any(" answered 535 " in error for error in refused.channels["email"].errors)
    assert not any("wrong" in error for error in refused.channels["email"].errors)
    deliver(good, sleep=Sleeps(), today=DAY)

    assert len(server.messages) == 1


def test_email_and_webhook_fail_independently(settings: Settings, smtp_sink: StartSink) -> None:
    server = smtp_sink()
    settings = _settings(
        settings,
        server.url(),
        webhook_url=f"http://127.0.0.1:{_closed_port()}/hook",
        webhook_secret="k",
    )
    _queue(settings, DAY, ["10.00"])

    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.channels["email"].delivered == 1
    assert report.channels["webhook"].pending == 1
    assert [row.channel for row in pending(settings)] == ["webhook"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", SmtpServer("mail.example", 25, "plain")),
        ("smtps://u:p@mail.example", SmtpServer("mail.example", 465, "ssl", "u", "p")),
        ("smtp://mail.example?starttls=true", SmtpServer("mail.example", 587, "starttls")),
        ("smtp://mail.example:2525?starttls=false", SmtpServer("mail.example", 2525, "plain")),
    ],
)
def test_smtp_urls(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://u:hunter2@mail.example",
        "smtp://u:hunter2@",
        "smtps://u:hunter2@mail.example?starttls=true",
        "smtp://u:hunter2@mail.example?tls=yes",
        "smtp://u:hunter2@mail.example:99999",
    ],
)
def test_bad_smtp_urls_fail_without_showing_the_password(settings: Settings, url: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.smtp_url") as raised:
        deliver(_settings(settings, url), sleep=Sleeps(), today=DAY)
    assert "hunter2" not in str(raised.value)
