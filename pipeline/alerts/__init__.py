"""Danger alert delivery: a durable outbox, a signed webhook and an email summary.

The lifecycle step calls `enqueue` with each day's alerts file, then `deliver`; `pending`
and `deliveries` show what the outbox holds. See docs/alerts.md.

The names load lazily: the Airflow notifier imports `pipeline.alerts.operators`, and
parsing a DAG must not import DuckDB (which reads the alerts files).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.alerts.delivery import ChannelReport, DeliveryReport, GivenUp, deliver
    from pipeline.alerts.outbox import AlertsFileError, Delivery, deliveries, enqueue, pending

_HOMES = {
    "ChannelReport": "delivery",
    "DeliveryReport": "delivery",
    "GivenUp": "delivery",
    "deliver": "delivery",
    "AlertsFileError": "outbox",
    "Delivery": "outbox",
    "deliveries": "outbox",
    "enqueue": "outbox",
    "pending": "outbox",
}
__all__ = [
    "AlertsFileError",
    "ChannelReport",
    "Delivery",
    "DeliveryReport",
    "GivenUp",
    "deliver",
    "deliveries",
    "enqueue",
    "pending",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"pipeline.alerts.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
