"""Alert fixtures and real local servers: a webhook receiver and an SMTP sink.

The receiver checks signatures with its own HMAC code (not the pipeline's) and
deduplicates by Idempotency-Key, as the docs ask a real receiver to do.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from pipeline.config import AlertsConfig, Settings

ALERT_COLUMNS = """
    alert_id varchar, as_of_date date, customer_id varchar, from_stage varchar,
    rules varchar, reason varchar, days_since_last_purchase integer,
    expected_gap_days double, value_at_risk decimal(18,2), segment varchar,
    cluster_id integer, cluster_name varchar, suggested_action varchar, priority integer
"""


def make_alerts(day: date, values: Sequence[str], first: int = 1) -> list[dict[str, Any]]:
    """One alert per value at risk, customers numbered from ``first``; priority by value."""
    order = sorted(range(len(values)), key=lambda i: -Decimal(values[i]))
    alerts = []
    for index, value in enumerate(values):
        customer = f"C{first + index:04d}"
        alerts.append(
            {
                "alert_id": f"danger-{customer}-{day:%Y%m%d}",
                "as_of_date": day,
                "customer_id": customer,
                "from_stage": "maturity",
                "rules": "gap",
                "reason": f"no purchase for {40 + index} days, usually every 12",
                "days_since_last_purchase": 40 + index,
                "expected_gap_days": 12.5,
                "value_at_risk": Decimal(value),
                "segment": "At Risk",
                "cluster_id": 2,
                "cluster_name": "high-value",
                "suggested_action": "Call personally with a tailored offer",
                "priority": order.index(index) + 1,
            }
        )
    return alerts


def alerts_file(settings: Settings, day: date) -> Path:
    return settings.paths.lake / "danger_alerts" / f"as_of_date={day}" / "data.parquet"


def write_alerts(
    settings: Settings, day: date, alerts: Sequence[Mapping[str, Any]], columns: str = ALERT_COLUMNS
) -> Path:
    """The day's alerts as the lifecycle step writes them (zero rows allowed)."""
    target = alerts_file(settings, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"create table alerts ({columns})")
        names = [str(row[0]) for row in con.execute("describe alerts").fetchall()]
        if alerts:
            marks = ", ".join("?" for _ in names)
            con.executemany(
                f"insert into alerts values ({marks})",
                [[alert[name] for name in names] for alert in alerts],
            )
        con.execute(f"copy (select * from alerts) to '{target}' (format parquet)")
    finally:
        con.close()
    return target


def with_alerts(settings: Settings, **alerts: Any) -> Settings:
    """``settings`` with ``[alerts]`` set to ``alerts`` (others default)."""
    return settings.model_copy(update={"alerts": AlertsConfig(**alerts)})


class Sleeps(list[float]):
    """An injectable ``sleep`` that only records the waits asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


_ERROR_TEXT = {401: b"signature does not verify", 400: b"unknown customer"}


@dataclass
class Received:
    key: str | None
    body: bytes
    signature_ok: bool
    status: int


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 acting as a careful webhook consumer.

    ``plan[key]`` (else ``default_plan``) lists the statuses answered to a key's first
    requests before it is accepted; the first ``slow_first`` requests of each key are
    accepted but answered only after ``slow_seconds``, like an overloaded server.
    """

    secret: str | None
    plan: Mapping[str, Sequence[int]] = field(default_factory=dict)
    default_plan: Sequence[int] = ()
    slow_first: int = 0
    slow_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rfm?token=s3cr3t-path-token"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, delay = receiver._answer(self.headers, body)
                time.sleep(delay)
                text = b"" if status == 200 else _ERROR_TEXT.get(status, b"planned failure")
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: the port refuses connections until `start` (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None

    def requests_for(self, key: str) -> list[Received]:
        return [request for request in self.requests if request.key == key]

    def _answer(self, headers: Any, body: bytes) -> tuple[int, float]:
        with self._lock:
            key = headers.get("Idempotency-Key")
            earlier = len(self.requests_for(key))
            signature_ok = self._verify(headers, body)
            plan = self.plan.get(key, self.default_plan)
            if not signature_ok:
                status = 401
            elif earlier < len(plan):
                status = plan[earlier]
            else:
                status = 200
                self.accepted.setdefault(key, json.loads(body))
            self.requests.append(Received(key, body, signature_ok, status))
            slow = status == 200 and earlier < self.slow_first
            return status, self.slow_seconds if slow else 0.0

    def _verify(self, headers: Any, body: bytes) -> bool:
        """As a receiver would: the Standard Webhooks reference library checks the
        signature and the timestamp's age (5 minutes)."""
        if headers.get("Content-Type") != "application/json":
            return False
        if headers.get("webhook-id") != headers.get("Idempotency-Key"):
            return False
        if self.secret is None:
            return headers.get("webhook-signature") is None
        key = self.secret if self.secret.startswith("whsec_") else self.secret.encode()
        try:
            Webhook(key).verify(body, dict(headers.items()), json_parse=False)
        except WebhookVerificationError:
            return False
        return True


class _Controller(Controller):
    """aiosmtpd's controller on port 0: learns the port before its readiness probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpSink:
    """A real SMTP server on 127.0.0.1 keeping what it accepts.

    The first ``fail_first`` messages are answered with ``reply`` (a 4xx by default);
    with ``credentials`` it requires AUTH with that login and password.
    """

    fail_first: int = 0
    reply: str = "451 4.3.0 Mailbox busy, try again later"
    credentials: tuple[str, str] | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    data_commands: int = 0
    _controller: _Controller | None = None

    @property
    def port(self) -> int:
        assert self._controller is not None
        return int(self._controller.port)

    def url(self, userinfo: str = "") -> str:
        return f"smtp://{userinfo}127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        options: dict[str, Any] = {}
        if self.credentials:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = _Controller(self, hostname="127.0.0.1", port=0, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.data_commands <= self.fail_first:
            return self.reply
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Accepted"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.credentials == (
            auth_data.login.decode(),
            auth_data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: answer 535
