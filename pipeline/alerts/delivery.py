"""A delivery run: every queued alert of every channel, retried a bounded number of times.

Retries go in rounds over the whole queue rather than per alert, so a run waits
``backoff_seconds``, then twice that and so on, once per round: a dead server costs a
run seconds, not seconds per alert. What is still undelivered stays queued for the next
run; only age (``give_up_after_days``) or a webhook's permanent refusal gives an alert up.

Each send is preceded by a claim in the outbox, so a second delivery run at the same
time (an Airflow task and a CLI run) leaves the alerts this one is sending alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pipeline.alerts import mail, webhook
from pipeline.alerts.outbox import Delivery, Outbox, configured_channels, open_outbox
from pipeline.config import AlertsConfig, Settings
from pipeline.errors import ConfigError
from pipeline.preflight import alert_problems

_MAX_ERRORS = 20
# A claim outlives the longest send it covers: a webhook POST waits at most
# webhook_timeout_seconds for each of connecting, sending and two answers; an SMTP session
# SMTP_TIMEOUT_SECONDS for each of some ten answers. Plus a minute for the rest.
_CLAIM_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class GivenUp:
    """An alert that will not be delivered on a channel, and why."""

    channel: str
    alert_id: str
    as_of_date: date
    reason: str


@dataclass
class ChannelReport:
    """One channel's run. ``pending`` counts every date; the others this run only."""

    channel: str
    delivered: int = 0
    pending: int = 0
    given_up: int = 0
    # Requests (webhook) or messages (email) sent, retries included.
    sent: int = 0
    # Distinct error messages, first seen first.
    errors: list[str] = field(default_factory=list)

    def note(self, error: str) -> None:
        if error in self.errors:
            return
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(error)
        elif len(self.errors) == _MAX_ERRORS:
            self.errors.append("(further errors left out)")


@dataclass(frozen=True)
class DeliveryReport:
    """What a run delivered, left queued and gave up, per channel."""

    channels: dict[str, ChannelReport]
    given_up: list[GivenUp]

    def total(self, what: Literal["delivered", "pending", "given_up", "sent"]) -> int:
        return sum(getattr(report, what) for report in self.channels.values())


def backoff_delay(alerts: AlertsConfig, retry: int) -> float:
    """The wait before retry round ``retry`` (1, 2, ...): doubling, capped."""
    return float(min(alerts.backoff_seconds * 2 ** (retry - 1), alerts.backoff_max_seconds))


def deliver(
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    today: date | None = None,
) -> DeliveryReport:
    """Try every queued alert of every configured channel, from any date.

    ``today`` (default: the machine's date) decides what is too old to try: pass the
    run's logical date. Transport failures are recorded and reported, never raised.

    Raises:
        ConfigError: ``alerts.smtp_url`` is malformed, or the webhook has no secret and
            unsigned posts are not allowed (before anything is sent).
    """
    alerts = settings.alerts
    if refused := alert_problems(alerts):
        raise ConfigError("; ".join(refused))
    channels = configured_channels(alerts)
    smtp = mail.parse_smtp_url(alerts.smtp_url.get_secret_value()) if "email" in channels else None
    cutoff = (today or date.today()) - timedelta(days=alerts.give_up_after_days)
    reason = f"undelivered more than {alerts.give_up_after_days} days after its date"
    with open_outbox(settings) as box:
        reports = {name: ChannelReport(name) for name in [*channels, *box.channels()]}
        given_up = [
            GivenUp(row.channel, row.alert_id, row.as_of_date, _with_last_error(reason, row))
            for row in box.give_up_older_than(cutoff, reason)
        ]
        for item in given_up:
            reports[item.channel].given_up += 1
        if "webhook" in channels:
            _deliver_webhook(box, alerts, sleep, reports["webhook"], given_up)
        if smtp is not None:
            _deliver_email(box, alerts, smtp, sleep, reports["email"])
        for name, count in box.pending_counts().items():
            reports[name].pending = count
            if name not in channels:
                reports[name].note(f"{name} is not configured: {count} alerts stay queued")
    return DeliveryReport(reports, given_up)


def _deliver_webhook(
    box: Outbox,
    alerts: AlertsConfig,
    sleep: Callable[[float], None],
    report: ChannelReport,
    given_up: list[GivenUp],
) -> None:
    secret = alerts.webhook_secret.get_secret_value()
    lease = timedelta(seconds=4 * alerts.webhook_timeout_seconds + _CLAIM_MARGIN_SECONDS)
    todo = box.rows("queued", "webhook")
    elsewhere: set[str] = set()
    for round_number in range(alerts.max_attempts):
        if not todo:
            break
        if round_number:
            sleep(backoff_delay(alerts, round_number))
        retry = []
        for index, item in enumerate(todo):
            if not box.claim("webhook", [item.alert_id], lease):
                # Another run is sending it, or has delivered or given it up meanwhile.
                elsewhere.add(item.alert_id)
                continue
            report.sent += 1
            outcome = webhook.post(
                alerts.webhook_url,
                item.alert_id,
                item.payload.encode(),
                secret=secret,
                timeout=alerts.webhook_timeout_seconds,
            )
            if outcome.status == "delivered":
                box.mark_delivered("webhook", [item.alert_id])
                report.delivered += 1
                continue
            box.record_error("webhook", [item.alert_id], outcome.detail)
            report.note(outcome.detail)
            if outcome.status == "rejected":
                box.give_up("webhook", [item.alert_id], outcome.detail)
                report.given_up += 1
                given_up.append(GivenUp("webhook", item.alert_id, item.as_of_date, outcome.detail))
                continue
            retry.append(item)
            if not outcome.reached:
                # The server is down or hanging: try the rest next round, after the wait.
                retry = todo[index + 1 :] + retry
                break
        todo = retry
    _note_elsewhere(report, elsewhere)


def _deliver_email(
    box: Outbox,
    alerts: AlertsConfig,
    smtp: mail.SmtpServer,
    sleep: Callable[[float], None],
    report: ChannelReport,
) -> None:
    lease = timedelta(seconds=10 * mail.SMTP_TIMEOUT_SECONDS + _CLAIM_MARGIN_SECONDS)
    queue = box.rows("queued", "email")
    if not queue:
        return
    message, composed_for = None, None
    elsewhere: set[str] = set()
    for round_number in range(alerts.max_attempts):
        if round_number:
            sleep(backoff_delay(alerts, round_number))
        claimed = box.claim("email", [item.alert_id for item in queue], lease)
        # What another run is mailing, or has mailed meanwhile, is not in this message.
        elsewhere |= {item.alert_id for item in queue} - set(claimed)
        if not claimed:
            break
        if message is None or claimed != composed_for:
            held = [item for item in queue if item.alert_id in claimed]
            now = datetime.now(UTC)
            message = mail.compose(
                held, sender=alerts.email_from, recipients=alerts.email_to, now=now
            )
            composed_for = claimed
        report.sent += 1
        outcome = mail.send(smtp, message)
        if outcome.status == "delivered":
            box.mark_delivered("email", claimed)
            report.delivered += len(claimed)
            if outcome.detail:
                report.note(outcome.detail)
            break
        box.record_error("email", claimed, outcome.detail)
        report.note(outcome.detail)
    _note_elsewhere(report, elsewhere)


def _note_elsewhere(report: ChannelReport, alert_ids: set[str]) -> None:
    if alert_ids:
        report.note(
            f"{len(alert_ids)} alerts left to another delivery run that was sending them"
            " (or has delivered or given them up)"
        )


def _with_last_error(reason: str, row: Delivery) -> str:
    return f"{reason}; last error: {row.last_error}" if row.last_error else reason
