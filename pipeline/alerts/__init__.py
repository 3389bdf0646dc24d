"""Danger alert delivery: a durable outbox, a signed webhook and an email summary.

The lifecycle step calls `enqueue` with each day's alerts file, then `deliver`; `pending`
and `deliveries` show what the outbox holds. See docs/alerts.md.
"""

from pipeline.alerts.delivery import ChannelReport, DeliveryReport, GivenUp, deliver
from pipeline.alerts.outbox import AlertsFileError, Delivery, deliveries, enqueue, pending

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
