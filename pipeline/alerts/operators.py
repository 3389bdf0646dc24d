"""Operational alerts for the people running the pipeline (a publish held back, say).

They go to the same webhook and email as the danger alerts, at once and without the
outbox (there is nothing to retry tomorrow: the failed step is re-run), and to the log.
A channel that cannot be reached is logged, never raised: the step's own error is what
the scheduler must see.
"""

from __future__ import annotations

import json
import logging
from email.message import EmailMessage
from typing import Any

from pipeline.alerts.mail import parse_smtp_url, send
from pipeline.alerts.webhook import post
from pipeline.config import AlertsConfig

log = logging.getLogger(__name__)


def notify_operators(
    alerts: AlertsConfig, event_id: str, subject: str, details: list[str], payload: dict[str, Any]
) -> list[str]:
    """Send one operational alert to every configured channel; what happened, per channel."""
    log.warning("%s: %s", subject, "; ".join(details))
    outcomes: list[str] = []
    if alerts.webhook_url:
        body = json.dumps(
            {
                "type": "operational",
                "event_id": event_id,
                "subject": subject,
                "details": details,
                **payload,
            },
            default=str,
            sort_keys=True,
        ).encode("utf-8")
        outcome = post(
            alerts.webhook_url,
            event_id,
            body,
            secret=alerts.webhook_secret.get_secret_value(),
            timeout=alerts.webhook_timeout_seconds,
        )
        outcomes.append(f"webhook: {outcome.status} {outcome.detail}".strip())
    smtp_url = alerts.smtp_url.get_secret_value()
    if smtp_url:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = alerts.email_from
        message["To"] = ", ".join(alerts.email_to)
        message.set_content("\n".join([subject, "", *details]))
        outcome = send(parse_smtp_url(smtp_url), message)
        outcomes.append(f"email: {outcome.status} {outcome.detail}".strip())
    for outcome_text in outcomes:
        if not outcome_text.split(": ", 1)[1].startswith("delivered"):
            log.error("operational alert %s not delivered: %s", event_id, outcome_text)
    return outcomes
