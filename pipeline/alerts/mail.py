"""The email channel: one plain-text summary per run, ranked by value at risk, via smtplib.

One message per run, not per alert: CRM staff read a ranked list and call from the top.
The Message-ID is a hash of the alert ids, so a message re-sent after a crash between
the send and its record carries the same Message-ID and is recognisable as a repeat.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.alerts.outbox import Delivery, Outcome
from pipeline.errors import ConfigError

# smtplib waits this long for each answer of the server.
SMTP_TIMEOUT_SECONDS = 30.0
_DEFAULT_PORTS = {"plain": 25, "ssl": 465, "starttls": 587}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send, from ``alerts.smtp_url``."""

    host: str
    port: int
    security: Literal["plain", "ssl", "starttls"]
    username: str = ""
    password: str = field(default="", repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://user:password@host:port``, ``smtps://...`` or ``smtp://...?starttls=true``.

    Errors never repeat the URL: it holds the password.

    Raises:
        ConfigError: the URL is not one of those forms.
    """
    key = "alerts.smtp_url"
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"{key}: must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ConfigError(f"{key}: names no host")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{key}: the port is not a number from 0 to 65535") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - {"starttls"}:
        raise ConfigError(f"{key}: the only query parameter known is starttls")
    starttls = query.get("starttls", [""])[-1].lower()
    if starttls not in _TRUE | _FALSE:
        raise ConfigError(f"{key}: starttls must be true or false")
    if parts.scheme == "smtps" and starttls in _TRUE:
        raise ConfigError(f"{key}: smtps:// is TLS from the start; starttls is for smtp://")
    security: Literal["plain", "ssl", "starttls"] = (
        "ssl" if parts.scheme == "smtps" else "starttls" if starttls in _TRUE else "plain"
    )
    return SmtpServer(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def message_id(alert_ids: Sequence[str], sender: str) -> str:
    """The same alerts give the same Message-ID, whatever their order."""
    digest = hashlib.sha256("\n".join(sorted(alert_ids)).encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "rfm-pipeline.invalid"
    return f"<danger-alerts.{digest}@{domain}>"


def ranked(deliveries: Sequence[Delivery]) -> list[dict[str, Any]]:
    """The alerts, highest value at risk first (ties: higher priority, then alert id)."""
    alerts = [delivery.alert() for delivery in deliveries]
    return sorted(
        alerts,
        key=lambda alert: (
            -_value(alert),
            alert.get("priority") if isinstance(alert.get("priority"), int) else 2**31,
            str(alert.get("alert_id")),
        ),
    )


def compose(
    deliveries: Sequence[Delivery], *, sender: str, recipients: Sequence[str], now: datetime
) -> EmailMessage:
    """The summary message of ``deliveries`` (at least one)."""
    alerts = ranked(deliveries)
    days = sorted({delivery.as_of_date for delivery in deliveries})
    span = str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
    total = sum(
        (_decimal(alert.get("value_at_risk")) or Decimal(0) for alert in alerts), Decimal(0)
    )
    count = f"{len(alerts)} customer{'s' if len(alerts) != 1 else ''}"

    message = EmailMessage()
    message["Subject"] = f"Danger alerts {span}: {count}, {_money(total)} at risk"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id([str(alert.get("alert_id")) for alert in alerts], sender)
    message["X-RFM-Alert-Count"] = str(len(alerts))
    lines = [
        f"{count} entered the danger stage (alerts of {span}), {_money(total)} at risk in all.",
        "Ranked by value at risk: contact the first ones first.",
        "",
    ]
    for rank, alert in enumerate(alerts, start=1):
        lines += [*_alert_lines(rank, alert), ""]
    lines.append(
        "Each alert is sent once by email; a repeat of this message (same Message-ID) "
        "means it was re-sent after an interruption."
    )
    message.set_content("\n".join(lines))
    return message


def send(
    server: SmtpServer, message: EmailMessage, timeout: float = SMTP_TIMEOUT_SECONDS
) -> Outcome:
    """Hand the message to the server; transport errors are returned, not raised.

    Every failure keeps the alerts queued, a permanent (5xx) one too: a rejected message
    is nearly always a setting to fix (credentials, a sender the server refuses), and the
    alerts should go out once it is fixed, not be dropped. ``give_up_after_days`` bounds it.
    """
    where = f"{server.host}:{server.port}"
    try:
        with _connect(server, timeout) as smtp:
            if server.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if server.username:
                smtp.login(server.username, server.password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        return Outcome("retry", f"{where} refused every recipient: {_refusals(error.recipients)}")
    except smtplib.SMTPResponseException as error:
        reply = error.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return Outcome("retry", f"{where} answered {error.smtp_code} {text}")
    except (smtplib.SMTPException, OSError) as error:
        detail = str(error) or type(error).__name__
        return Outcome("retry", f"cannot send through {where}: {detail}", reached=False)
    return Outcome("delivered", f"refused: {_refusals(refused)}" if refused else "")


def _connect(server: SmtpServer, timeout: float) -> smtplib.SMTP:
    if server.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    return smtplib.SMTP(server.host, server.port, timeout=timeout)


def _alert_lines(rank: int, alert: dict[str, Any]) -> list[str]:
    value = _decimal(alert.get("value_at_risk"))
    head = f"{rank}. Customer {alert.get('customer_id')}: "
    head += f"{_money(value)} at risk" if value is not None else "value at risk unknown"
    stage = alert.get("from_stage")
    who = ", ".join(
        str(part)
        for part in (alert.get("segment"), alert.get("cluster_name"), stage and f"from {stage}")
        if part
    )
    days, gap = alert.get("days_since_last_purchase"), alert.get("expected_gap_days")
    rhythm = f"{days} days since the last purchase" if days is not None else ""
    if isinstance(gap, int | float):
        rhythm += f" (usually every {gap:.1f}".rstrip("0").rstrip(".") + " days)"
    lines = [head]
    if who:
        lines.append(f"   {who}")
    if rhythm:
        lines.append(f"   {rhythm}")
    if alert.get("reason"):
        lines.append(f"   Why: {alert['reason']}")
    if alert.get("suggested_action"):
        lines.append(f"   What to do: {alert['suggested_action']}")
    lines.append(f"   Alert {alert.get('alert_id')} of {alert.get('as_of_date')}")
    return lines


def _value(alert: dict[str, Any]) -> Decimal:
    return _decimal(alert.get("value_at_risk")) or Decimal(0)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {text.decode('utf-8', 'replace')})"
        for address, (code, text) in recipients.items()
    )
