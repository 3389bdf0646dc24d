"""The alert outbox: each alert waits here, per channel, until that channel has it.

The outbox is a SQLite file under ``paths.state`` rather than a table in the lake because
it is mutable state, changed a row at a time, not an immutable daily partition. SQLite
(in WAL mode) lets several processes use it at once: readers never wait, and every write
is a short ``BEGIN IMMEDIATE`` transaction, so a second writer waits (``busy_timeout``)
a few milliseconds instead of failing. No network call happens inside a transaction.

Two deliverers at once (an Airflow task and a CLI run) never send the same alert: before
a send, a deliverer *claims* the alert in one transaction (it must still be queued and
not claimed by another live deliverer), which also counts the attempt. The claim ends
when the outcome is recorded, when the outbox is closed, or, if the process was killed
outright, when its lease runs out.

Crash safety comes from the order of the writes, each committed on its own: an attempt
is recorded *before* the send and the delivery *after* the server accepted it. A crash in
between leaves the alert queued, and the next run sends it again with the same
Idempotency-Key (webhook) or Message-ID (email), which the receiver deduplicates. An
alert can be repeated but never lost.

An outbox of an earlier version (``outbox.duckdb``, DuckDB) is copied into the SQLite file
the first time the outbox is opened, then renamed ``outbox.duckdb.migrated``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipeline import duck
from pipeline.config import AlertsConfig, Settings
from pipeline.errors import PipelineError

Channel = Literal["webhook", "email"]
Status = Literal["queued", "delivered", "given_up"]

log = logging.getLogger(__name__)

# The alert id travels in an HTTP header and an email: visible ASCII, inner spaces allowed.
_ALERT_ID = re.compile(r"^[!-~](?:[ -~]{0,198}[!-~])?$")

OUTBOX_FILE = "outbox.sqlite"
# The outbox of releases before the SQLite one, migrated when found (see `open_outbox`).
LEGACY_FILE = "outbox.duckdb"
# PRAGMA user_version of the file this code writes; an older file is upgraded on open.
SCHEMA_VERSION = 1
# How long a write waits for another process's transaction (all of them are short).
BUSY_TIMEOUT_SECONDS = 60.0

# Dates are ISO 8601 text (YYYY-MM-DD), times ISO 8601 UTC text with microseconds
# (YYYY-MM-DDTHH:MM:SS.ffffff+00:00): both sort as they compare.
_SCHEMA_V1 = (
    """
    create table deliveries (
        channel text not null,
        alert_id text not null,
        as_of_date text not null,
        payload text not null check (json_valid(payload)),
        status text not null default 'queued'
            check (status in ('queued', 'delivered', 'given_up')),
        attempts integer not null default 0,
        last_error text,
        give_up_reason text,
        first_queued_at text not null,
        last_attempt_at text,
        delivered_at text,
        given_up_at text,
        claimed_by text,
        claimed_until text,
        primary key (channel, alert_id)
    ) strict
    """,
    "create index deliveries_by_status on deliveries (status, channel, as_of_date)",
)
_COLUMNS = (
    "channel, alert_id, as_of_date, payload, status, attempts, last_error, give_up_reason,"
    " first_queued_at, last_attempt_at, delivered_at, given_up_at"
)
# A queued row nobody else is sending: unclaimed, claimed by this outbox, or a claim
# whose holder died (its lease ran out).
_FREE = "status = 'queued' and (claimed_by is null or claimed_by = :me or claimed_until <= :now)"
_IN_IDS = "alert_id in (select value from json_each(:ids))"


class OutboxError(PipelineError):
    """The outbox file cannot be used as it is; the message says what to do."""


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
    return settings.paths.state / "outbox" / OUTBOX_FILE


class Outbox:
    """An open outbox (see `open_outbox`); every method commits what it changes.

    Claims taken through this object carry its own id (host, process, a random part), so
    two outboxes open in one process are two deliverers too.
    """

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._has_claimed = False

    def add(self, channels: Sequence[Channel], alerts: Sequence[tuple[str, date, str]]) -> int:
        """Queue ``(alert_id, as_of_date, payload)`` on each channel; count the new ones.

        A (channel, alert id) already in the outbox, whatever its status, is left as it
        is: the first payload queued is the one delivered.
        """
        now = _stamp(_now())
        rows = [
            (channel, alert_id, day.isoformat(), payload, now)
            for channel in channels
            for alert_id, day, payload in alerts
        ]
        if not rows:
            return 0
        with _immediate(self._con):
            cursor = self._con.executemany(
                "insert into deliveries (channel, alert_id, as_of_date, payload, first_queued_at)"
                " values (?, ?, ?, ?, ?) on conflict do nothing",
                rows,
            )
            return cursor.rowcount

    def rows(self, status: Status | None = None, channel: str | None = None) -> list[Delivery]:
        """Deliveries oldest date first, optionally of one status and channel."""
        cursor = self._con.execute(
            f"select {_COLUMNS} from deliveries"
            " where (:status is null or status = :status)"
            " and (:channel is null or channel = :channel)"
            " order by as_of_date, channel, alert_id",
            {"status": status, "channel": channel},
        )
        return [_delivery(row) for row in cursor.fetchall()]

    def channels(self) -> list[str]:
        cursor = self._con.execute("select distinct channel from deliveries order by channel")
        return [str(row[0]) for row in cursor.fetchall()]

    def pending_counts(self) -> dict[str, int]:
        cursor = self._con.execute(
            "select channel, count(*) from deliveries where status = 'queued' group by channel"
        )
        return {str(channel): int(count) for channel, count in cursor.fetchall()}

    def claim(self, channel: str, alert_ids: Sequence[str], lease: timedelta) -> list[str]:
        """Claim the alerts to send them, and count the attempt; return those claimed.

        An alert is claimed only if it is still queued and no other live deliverer holds
        it, so two deliverers never send it both. The claim lasts ``lease`` at most (long
        enough for the send): a deliverer killed before recording the outcome leaves the
        alert to the first run after that. The attempt is counted *before* the send, so a
        crash mid-send still shows it.
        """
        now = _now()
        self._has_claimed = True
        with _immediate(self._con):
            cursor = self._con.execute(
                "update deliveries set attempts = attempts + 1, last_attempt_at = :stamp,"
                " claimed_by = :me, claimed_until = :until"
                f" where channel = :channel and {_FREE} and {_IN_IDS}"
                " returning alert_id",
                {
                    **self._who(now),
                    "stamp": _stamp(now),
                    "until": _stamp(now + lease),
                    "channel": channel,
                    "ids": json.dumps(list(alert_ids)),
                },
            )
            claimed = {str(row[0]) for row in cursor.fetchall()}
        return [alert_id for alert_id in alert_ids if alert_id in claimed]

    def record_error(self, channel: str, alert_ids: Sequence[str], error: str) -> None:
        """Keep the failure and end the claim: the alert waits for the next try."""
        self._update(channel, alert_ids, "last_error = :error", {"error": error}, only_free=True)

    def mark_delivered(self, channel: str, alert_ids: Sequence[str]) -> None:
        """Only after the server accepted: the step whose loss causes a re-send."""
        self._update(channel, alert_ids, "status = 'delivered', delivered_at = :stamp", {})

    def give_up(self, channel: str, alert_ids: Sequence[str], reason: str) -> None:
        self._update(
            channel,
            alert_ids,
            "status = 'given_up', give_up_reason = :reason, given_up_at = :stamp",
            {"reason": reason},
        )

    def give_up_older_than(self, cutoff: date, reason: str) -> list[Delivery]:
        """Give up every queued delivery dated before ``cutoff`` that no other deliverer
        is sending; return them as they were."""
        now = _now()
        params = {**self._who(now), "cutoff": cutoff.isoformat()}
        where = f"{_FREE} and as_of_date < :cutoff"
        with _immediate(self._con):
            cursor = self._con.execute(
                f"select {_COLUMNS} from deliveries where {where}"
                " order by as_of_date, channel, alert_id",
                params,
            )
            expired = [_delivery(row) for row in cursor.fetchall()]
            self._con.execute(
                "update deliveries set status = 'given_up', give_up_reason = :reason,"
                f" given_up_at = :stamp, claimed_by = null, claimed_until = null where {where}",
                {**params, "reason": reason, "stamp": _stamp(now)},
            )
        return expired

    def release(self) -> None:
        """End every claim this outbox holds (the alerts stay queued)."""
        if not self._has_claimed:
            return  # a reader (``status``) writes nothing
        with _immediate(self._con):
            self._con.execute(
                "update deliveries set claimed_by = null, claimed_until = null"
                " where claimed_by = :me",
                {"me": self.claimant},
            )

    def _update(
        self,
        channel: str,
        alert_ids: Sequence[str],
        assignments: str,
        params: dict[str, object],
        *,
        only_free: bool = False,
    ) -> None:
        # Only queued rows change: a delivered or given-up alert stays as it is. A final
        # outcome (delivered, given up) is recorded whoever holds the claim; an error
        # only on an alert no other live deliverer is sending.
        now = _now()
        where = _FREE if only_free else "status = 'queued'"
        with _immediate(self._con):
            self._con.execute(
                f"update deliveries set {assignments}, claimed_by = null, claimed_until = null"
                f" where channel = :channel and {where} and {_IN_IDS}",
                {
                    **params,
                    **self._who(now),
                    "stamp": _stamp(now),
                    "channel": channel,
                    "ids": json.dumps(list(alert_ids)),
                },
            )

    def _who(self, now: datetime) -> dict[str, object]:
        return {"me": self.claimant, "now": _stamp(now)}


@contextmanager
def open_outbox(settings: Settings) -> Iterator[Outbox]:
    """The outbox, created (or upgraded, or migrated from DuckDB) if need be, open until
    the block ends; then the claims it still holds are released.

    Raises:
        OutboxError: the file cannot run in WAL mode, was written by a newer version, or
            an earlier version's DuckDB outbox cannot be read.
    """
    database = outbox_file(settings)
    database.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(database)
    try:
        _prepare(con, database)
        box = Outbox(con)
        try:
            yield box
        finally:
            # After a failure the claims would run out anyway; a release that cannot
            # write now must not hide the failure.
            with suppress(sqlite3.Error):
                box.release()
    finally:
        con.close()


def _connect(database: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; every write opens its own
    # BEGIN IMMEDIATE (see `_immediate`), every read is a statement on its own snapshot.
    con = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        con.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        [mode] = con.execute("pragma journal_mode = wal").fetchone()
        if str(mode).lower() != "wal":
            raise OutboxError(
                f"{database}: SQLite cannot use WAL mode here (journal mode {mode});"
                " put paths.state on a local file system"
            )
        # Every commit is on disk before the call returns (WAL's default is weaker).
        con.execute("pragma synchronous = full")
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def _immediate(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at once (waiting up to the busy
    timeout for another process's), committed at the end or rolled back."""
    con.execute("begin immediate")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _user_version(con: sqlite3.Connection) -> int:
    [version] = con.execute("pragma user_version").fetchone()
    return int(version)


def _prepare(con: sqlite3.Connection, database: Path) -> None:
    """Create or upgrade the schema, and migrate an earlier version's DuckDB outbox."""
    legacy = database.with_name(LEGACY_FILE)
    if _user_version(con) == SCHEMA_VERSION and not legacy.exists():
        return
    with _immediate(con):
        version = _user_version(con)
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"{database}: outbox schema version {version} was written by a newer"
                f" release (this one knows {SCHEMA_VERSION}); run that release"
            )
        if version == 0:
            for statement in _SCHEMA_V1:
                con.execute(statement)
        # Later schema versions upgrade here, one step at a time.
        con.execute(f"pragma user_version = {SCHEMA_VERSION}")
        migrated = _copy_legacy(con, legacy) if legacy.exists() else None
    if migrated is not None:
        _move_aside(legacy, migrated)


def _copy_legacy(con: sqlite3.Connection, legacy: Path) -> int | None:
    """Copy an earlier version's DuckDB outbox into this one (in its transaction); the
    number of deliveries copied, None if another process has just moved it aside.

    Rows already in the SQLite outbox win: a copy interrupted before the DuckDB file was
    moved aside is repeated without changing anything.
    """
    try:
        source = duckdb.connect(str(legacy), read_only=True)
    except duckdb.Error as error:
        if not legacy.exists():
            return None
        raise OutboxError(
            f"{legacy}: cannot read the outbox of an earlier version to migrate it ({error})."
            " Stop any process of the earlier version and retry; or, to drop the alerts it"
            " still holds, move the file out of the folder."
        ) from error
    try:
        source.execute("set TimeZone = 'UTC'")
        tables = source.execute(
            "select count(*) from information_schema.tables where table_name = 'deliveries'"
        ).fetchall()
        if not tables[0][0]:
            return 0
        rows = source.execute(f"select {_COLUMNS} from deliveries").fetchall()
    finally:
        source.close()
    cursor = con.executemany(
        f"insert into deliveries ({_COLUMNS}) values ({', '.join('?' * 12)})"
        " on conflict do nothing",
        [_from_legacy(row) for row in rows],
    )
    return cursor.rowcount


def _from_legacy(row: tuple[Any, ...]) -> tuple[object, ...]:
    channel, alert_id, as_of_date, payload, status, attempts, error, reason, *times = row
    return (
        channel,
        alert_id,
        as_of_date.isoformat(),
        payload,
        status,
        attempts,
        error,
        reason,
        *(None if value is None else _stamp(value) for value in times),
    )


def _move_aside(legacy: Path, copied: int) -> None:
    target = legacy.with_name(f"{legacy.name}.migrated")
    if target.exists():
        target = legacy.with_name(f"{legacy.name}.migrated-{_now():%Y%m%dT%H%M%S%f}")
    with suppress(FileNotFoundError):  # another process was quicker
        legacy.rename(target)
        log.warning(
            "outbox: copied %d deliveries of the earlier DuckDB outbox into %s; the old"
            " file is now %s (delete it when you no longer need it)",
            copied,
            legacy.with_name(OUTBOX_FILE),
            target,
        )
    wal = legacy.with_name(f"{legacy.name}.wal")
    with suppress(FileNotFoundError):
        wal.rename(target.with_name(f"{target.name}.wal"))
    # The earlier version's lock file; SQLite locks the outbox now.
    legacy.with_name("outbox.lock").unlink(missing_ok=True)


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
    database = outbox_file(settings)
    if not database.is_file() and not database.with_name(LEGACY_FILE).is_file():
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
        duck.release(con)
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


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """A time as the outbox keeps it: ISO 8601 in UTC, always with microseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    channel, alert_id, as_of_date, payload, status, attempts, error, reason, *times = row
    first_queued_at, last_attempt_at, delivered_at, given_up_at = times
    return Delivery(
        channel=channel,
        alert_id=alert_id,
        as_of_date=date.fromisoformat(as_of_date),
        payload=payload,
        status=status,
        attempts=attempts,
        last_error=error,
        give_up_reason=reason,
        first_queued_at=datetime.fromisoformat(first_queued_at),
        last_attempt_at=_time(last_attempt_at),
        delivered_at=_time(delivered_at),
        given_up_at=_time(given_up_at),
    )
