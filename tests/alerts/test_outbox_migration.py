"""An outbox of an earlier release (DuckDB, ``outbox.duckdb``) is migrated on first open:
its rows are copied into the SQLite outbox, the old file moved aside, nothing sent twice."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.alerts import deliver, deliveries, enqueue, pending
from pipeline.alerts.outbox import OutboxError, open_outbox, outbox_file
from pipeline.config import Settings
from tests.alerts.support import Sleeps, WebhookReceiver, make_alerts, with_alerts, write_alerts

DAY = date(2026, 3, 15)
SECRET = "k"
# The table as the DuckDB outbox (before the SQLite one) created it.
LEGACY_SCHEMA = """
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
QUEUED_AT = datetime(2026, 3, 15, 23, 10, 5, 123456, tzinfo=UTC)
TRIED_AT = datetime(2026, 3, 16, 2, 0, 0, 500, tzinfo=UTC)


def _legacy_outbox(settings: Settings) -> Path:
    """An earlier release's outbox after a day: three alerts on the webhook, one still
    queued after a failed try, one delivered, one given up; its lock file beside it."""
    folder = settings.paths.state / "outbox"
    folder.mkdir(parents=True)
    (folder / "outbox.lock").touch()
    legacy = folder / "outbox.duckdb"
    ids = [alert["alert_id"] for alert in make_alerts(DAY, ["10.00", "20.00", "30.00"])]
    con = duckdb.connect(str(legacy))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(LEGACY_SCHEMA)
        con.executemany(
            "insert into deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("webhook", ids[0], DAY, '{"alert_id":"' + ids[0] + '","n":1}', "queued",
                 1, "HTTP 503: busy", None, QUEUED_AT, TRIED_AT, None, None),
                ("webhook", ids[1], DAY, '{"alert_id":"' + ids[1] + '","n":2}', "delivered",
                 1, None, None, QUEUED_AT, TRIED_AT, TRIED_AT, None),
                ("webhook", ids[2], DAY, '{"alert_id":"' + ids[2] + '","n":3}', "given_up",
                 1, "HTTP 400: unknown customer", "HTTP 400: unknown customer",
                 QUEUED_AT, TRIED_AT, None, TRIED_AT),
            ],
        )  # fmt: skip
    finally:
        con.close()
    return legacy


def test_an_earlier_duckdb_outbox_is_copied_and_moved_aside_on_first_open(
    settings: Settings, receiver: Callable[..., WebhookReceiver]
) -> None:
    server = receiver(SECRET)
    settings = with_alerts(settings, webhook_url=server.url, webhook_secret=SECRET)
    legacy = _legacy_outbox(settings)
    ids = [alert["alert_id"] for alert in make_alerts(DAY, ["10.00", "20.00", "30.00"])]

    rows = deliveries(settings)  # the first open, as `status` would do it

    assert [
        (row.alert_id, row.status, row.attempts, row.last_error, row.give_up_reason) for row in rows
    ] == [
        (ids[0], "queued", 1, "HTTP 503: busy", None),
        (ids[1], "delivered", 1, None, None),
        (ids[2], "given_up", 1, "HTTP 400: unknown customer", "HTTP 400: unknown customer"),
    ]
    assert all(row.as_of_date == DAY and row.first_queued_at == QUEUED_AT for row in rows)
    assert [(row.last_attempt_at, row.delivered_at, row.given_up_at) for row in rows] == [
        (TRIED_AT, None, None),
        (TRIED_AT, TRIED_AT, None),
        (TRIED_AT, None, TRIED_AT),
    ]
    assert rows[0].payload == '{"alert_id":"' + ids[0] + '","n":1}'
    # The old file is kept aside, its lock file gone; a later open copies nothing again.
    assert sorted(path.name for path in legacy.parent.iterdir()) == [
        "outbox.duckdb.migrated",
        "outbox.sqlite",
    ]
    assert deliveries(settings) == rows

    # Queueing the day again adds nothing; delivering sends only what was still queued.
    assert enqueue(settings, DAY, write_alerts(settings, DAY, make_alerts(DAY, ["10.00"] * 3))) == 0
    report = deliver(settings, sleep=Sleeps(), today=DAY)

    assert report.total("delivered") == 1
    assert [request.key for request in server.requests] == [ids[0]]
    assert server.accepted[ids[0]] == {"alert_id": ids[0], "n": 1}
    assert pending(settings) == []


def test_a_migration_cut_short_before_the_move_is_finished_without_changing_anything(
    settings: Settings,
) -> None:
    legacy = _legacy_outbox(settings)
    kept = legacy.with_name("kept.duckdb")
    shutil.copy(legacy, kept)
    first = deliveries(settings)
    # As if the process died after copying and before moving the old file aside, and the
    # queued alert was given up since: the SQLite outbox's rows win.
    with open_outbox(settings) as box:
        box.give_up("webhook", [first[0].alert_id], "no longer wanted")
    shutil.copy(kept, legacy)

    again = deliveries(settings)

    assert [row.status for row in again] == ["given_up", "delivered", "given_up"]
    assert again[0].give_up_reason == "no longer wanted"
    assert again[1:] == first[1:]
    names = sorted(path.name for path in legacy.parent.iterdir())
    assert "outbox.duckdb" not in names
    assert "outbox.duckdb.migrated" in names
    assert any(name.startswith("outbox.duckdb.migrated-") for name in names)


def test_an_unreadable_earlier_outbox_stops_with_what_to_do(settings: Settings) -> None:
    folder = settings.paths.state / "outbox"
    folder.mkdir(parents=True)
    (folder / "outbox.duckdb").write_bytes(b"not a DuckDB file at all" * 100)

    with pytest.raises(OutboxError, match="cannot read the outbox of an earlier version") as info:
        pending(settings)
    assert "Stop any process of the earlier version" in str(info.value)
    assert (folder / "outbox.duckdb").is_file()  # left where it was, nothing lost
    con = sqlite3.connect(outbox_file(settings))
    try:  # the schema and the copy are one transaction: nothing of it was kept
        assert con.execute("pragma user_version").fetchone() == (0,)
    finally:
        con.close()

    (folder / "outbox.duckdb").rename(settings.paths.state / "broken.duckdb")  # as told
    assert pending(settings) == []
