"""The alert outbox: each alert waits here, per channel, until that channel has it.

The outbox is a DuckDB file under ``paths.state`` rather than a table in the lake because
it is mutable state with one writer at a time, not an immutable daily partition: it is
opened under a file lock, used and closed, so the next process (a later run, ``status``)
can open it.

Crash safety comes from the order of the writes, each committed on its own: an attempt
is recorded *before* the send and the delivery *after* the server accepted it. A crash in
between leaves the alert queued, and the next run sends it again with the same
Idempotency-Key (webhook) or Message-ID (email), which the receiver deduplicates. An
alert can be repeated but never lost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipeline import duck, locks
from pipeline.config import AlertsConfig, Settings
from pipeline.errors import PipelineError

Channel = Literal["webhook", "email"]
Status = Literal["queued", "delivered", "given_up"]

# The alert id travels in an HTTP header and an email: visible ASCII, inner spaces allowed.
_ALERT_ID = re.compile(r"^[!-~](?:[ -~]{0,198}[!-~])?$")

_SCHEMA = """
create table if not exists deliveries (
    channel varchar not null,
    alert_id varchar not null,
    as_of_date date not null,
    payload json not null,
    status varchar not null default 'queued'
        check (status in ('queued', 'delivered', 'given_up')),
    attempts integer not null default 0,
    last_error varchar,
    give_up_reason varchar,
    first_queued_at timestamptz not null,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    given_up_at timestamptz,
    primary key (channel, alert_id)
)
"""
_COLUMNS = (
    "channel, alert_id, as_of_date, payload, status, attempts, last_error, give_up_reason,"
    " first_queued_at, last_attempt_at, delivered_at, given_up_at"
)


class AlertsFileError(PipelineError):
    """The day's alerts file breaks the producer contract; nothing of it was queued."""


@dataclass(frozen=True)
class Delivery:
    """One alert's delivery on one channel."""

    channel: str
    alert_id: str
    as_of_date: date
    # The alert as JSON text: exactly the body a webhook POSTs.
    payload: str
    status: Status
    attempts: int
    last_error: str | None
    give_up_reason: str | None
    first_queued_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    given_up_at: datetime | None

    def alert(self) -> dict[str, Any]:
        """The alert's columns, as the JSON payload has them."""
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


@dataclass(frozen=True)
class Outcome:
    """What one send did, as a channel classifies it."""

    status: Literal["delivered", "retry", "rejected"]
    detail: str = ""
    # False when the server was not reached at all (refused, timed out): the rest of the
    # round is not tried, so a dead server costs one timeout per round, not one per alert.
    reached: bool = True


def configured_channels(alerts: AlertsConfig) -> list[Channel]:
    channels: list[Channel] = []
    if alerts.webhook_url:
        channels.append("webhook")
    if alerts.smtp_url.get_secret_value():
        channels.append("email")
    return channels


def outbox_file(settings: Settings) -> Path:
    return settings.paths.state / "outbox" / "outbox.duckdb"


class Outbox:
    """An open outbox (see `open_outbox`); every method commits what it changes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def add(self, channels: Sequence[Channel], alerts: Sequence[tuple[str, date, str]]) -> int:
        """Queue ``(alert_id, as_of_date, payload)`` on each channel; count the new ones.

        A (channel, alert id) already in the outbox, whatever its status, is left as it
        is: the first payload queued is the one delivered.
        """
        rows = [(channel, *alert, _now()) for channel in channels for alert in alerts]
        if not rows:
            return 0
        con = self._con
        con.begin()
        try:
            before = _count(con)
            con.executemany(
                "insert into deliveries (channel, alert_id, as_of_date, payload, first_queued_at)"
                " values (?, ?, ?, ?, ?) on conflict do nothing",
                rows,
            )
            added = _count(con) - before
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return added

    def rows(self, status: Status | None = None, channel: str | None = None) -> list[Delivery]:
        """Deliveries oldest date first, optionally of one status and channel."""
        self._con.execute(
            f"select {_COLUMNS} from deliveries"
            " where ($status is null or status = $status)"
            " and ($channel is null or channel = $channel)"
            " order by as_of_date, channel, alert_id",
            {"status": status, "channel": channel},
        )
        return [Delivery(*row) for row in self._con.fetchall()]

    def channels(self) -> list[str]:
        self._con.execute("select distinct channel from deliveries order by channel")
        return [str(row[0]) for row in self._con.fetchall()]

    def pending_counts(self) -> dict[str, int]:
        self._con.execute(
            "select channel, count(*) from deliveries where status = 'queued' group by channel"
        )
        return {str(channel): int(count) for channel, count in self._con.fetchall()}

    def record_attempt(self, channel: str, alert_ids: Sequence[str]) -> None:
        """Count an attempt before sending, so that a crash mid-send still shows it."""
        self._update(
            channel, alert_ids, "attempts = attempts + 1, last_attempt_at = $now", {"now": _now()}
        )

    def record_error(self, channel: str, alert_ids: Sequence[str], error: str) -> None:
        self._update(channel, alert_ids, "last_error = $error", {"error": error})

    def mark_delivered(self, channel: str, alert_ids: Sequence[str]) -> None:
        """Only after the server accepted: the step whose loss causes a re-send."""
        self._update(
            channel, alert_ids, "status = 'delivered', delivered_at = $now", {"now": _now()}
        )

    def give_up(self, channel: str, alert_ids: Sequence[str], reason: str) -> None:
        self._update(
            channel,
            alert_ids,
            "status = 'given_up', give_up_reason = $reason, given_up_at = $now",
            {"reason": reason, "now": _now()},
        )

    def give_up_older_than(self, cutoff: date, reason: str) -> list[Delivery]:
        """Give up every queued delivery dated before ``cutoff``; return them as they were."""
        expired = [row for row in self.rows("queued") if row.as_of_date < cutoff]
        for row in expired:
            self.give_up(row.channel, [row.alert_id], reason)
        return expired

    def _update(
        self, channel: str, alert_ids: Sequence[str], assignments: str, params: dict[str, object]
    ) -> None:
        # Only queued rows change: a delivered or given-up alert stays as it is.
        self._con.execute(
            f"update deliveries set {assignments}"
            " where channel = $channel and status = 'queued'"
            " and list_contains($ids::varchar[], alert_id)",
            {**params, "channel": channel, "ids": list(alert_ids)},
        )
        self._con.fetchall()


@contextmanager
def open_outbox(settings: Settings) -> Iterator[Outbox]:
    """The outbox, created if missing, held under its lock until the block ends.

    DuckDB lets one process at a time open a file for writing; the lock makes a second
    process (a concurrent run, a ``status``) wait for the first instead of failing.
    """
    database = outbox_file(settings)
    database.parent.mkdir(parents=True, exist_ok=True)
    with locks.held(database.parent / "outbox.lock"):
        con = duck.connect(settings.duckdb, _spill_dir(settings), database)
        try:
            con.execute(_SCHEMA)
            yield Outbox(con)
        finally:
            con.close()


def enqueue(settings: Settings, day: date, alerts_file: Path) -> int:
    """Queue the day's alerts on every configured channel; return how many are new.

    Idempotent on (channel, alert id): re-running a day queues nothing twice and leaves
    delivered alerts delivered. The file is checked whole before anything is queued.

    Raises:
        AlertsFileError: the file is missing, or an alert id is missing, repeated or not
            visible ASCII, or an alert is dated other than ``day``.
    """
    alerts = read_alerts(settings, day, alerts_file)
    with open_outbox(settings) as box:
        return box.add(configured_channels(settings.alerts), alerts)


def pending(settings: Settings) -> list[Delivery]:
    """The deliveries still queued, oldest date first (for tests and ``status``)."""
    return deliveries(settings, status="queued")


def deliveries(settings: Settings, status: Status | None = None) -> list[Delivery]:
    """Every delivery in the outbox (of one status), oldest date first."""
    if not outbox_file(settings).is_file():
        return []
    with open_outbox(settings) as box:
        return box.rows(status)


def read_alerts(settings: Settings, day: date, alerts_file: Path) -> list[tuple[str, date, str]]:
    """``(alert_id, as_of_date, payload)`` of every alert in the file, checked."""
    if not alerts_file.is_file():
        raise AlertsFileError(f"{alerts_file}: no such alerts file")
    con = duck.connect(settings.duckdb, _spill_dir(settings))
    try:
        con.execute(
            "select * from read_parquet($file, hive_partitioning = false)",
            {"file": str(alerts_file)},
        )
        columns = [str(column[0]) for column in con.description or []]
        rows = con.fetchall()
    finally:
        con.close()
    for required in ("alert_id", "as_of_date"):
        if required not in columns:
            raise AlertsFileError(f"{alerts_file}: no {required} column")
    alerts: list[tuple[str, date, str]] = []
    seen: set[str] = set()
    for row in rows:
        alert = dict(zip(columns, row, strict=True))
        alert_id, as_of_date = alert["alert_id"], alert["as_of_date"]
        if not isinstance(alert_id, str) or not _ALERT_ID.match(alert_id):
            raise AlertsFileError(f"{alerts_file}: alert_id {alert_id!r} is not visible ASCII")
        if alert_id in seen:
            raise AlertsFileError(f"{alerts_file}: alert_id {alert_id!r} appears twice")
        if as_of_date != day:
            raise AlertsFileError(f"{alerts_file}: alert {alert_id!r} is dated {as_of_date}")
        seen.add(alert_id)
        alerts.append((alert_id, day, to_json(alert)))
    return alerts


def to_json(alert: dict[str, Any]) -> str:
    """The alert as compact JSON: dates ISO 8601, decimals as strings (no float rounding)."""
    return json.dumps(
        {key: _jsonable(value) for key, value in alert.items()},
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)


def _spill_dir(settings: Settings) -> Path:
    return settings.paths.state / "tmp" / "outbox"


def _count(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("select count(*) from deliveries")
    return int(con.fetchall()[0][0])


def _now() -> datetime:
    return datetime.now(UTC)
