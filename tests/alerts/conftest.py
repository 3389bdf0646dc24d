"""Fixtures of the alert tests: real local servers, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.alerts.support import SmtpSink, WebhookReceiver


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables; the servers here are on 127.0.0.1."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """``receiver(secret, **behaviour)``: a started webhook receiver."""
    started: list[WebhookReceiver] = []

    def start(secret: str | None, **behaviour: Any) -> WebhookReceiver:
        started.append(WebhookReceiver(secret, **behaviour).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[Callable[..., SmtpSink]]:
    """``smtp_sink(**behaviour)``: a started SMTP server."""
    started: list[SmtpSink] = []

    def start(**behaviour: Any) -> SmtpSink:
        started.append(SmtpSink(**behaviour).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()
