"""Publishing to a real PostgreSQL server (scripts/postgres.sh): one transaction per
publish behind stable views, readers that only ever see whole versions, a BI role that
can read and do nothing else, and contracts that hold a bad run back."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql as pg
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.errors import PublishBlockedError
from pipeline.publish import publish_date
from pipeline.publish.contracts import load_contract
from pipeline.publish.tables import PUBLISHED_TABLES
from tests.postgres import make_role_name
from tests.publish.support import (
    Served,
    assert_whole,
    day,
    expected_rows,
    served_by_duckdb,
    served_by_postgres,
    settings_from,
)
from tests.publish.test_publish_files import _rewrite


@pytest.fixture
def reader_role(postgres_roles: list[str]) -> str:
    role = make_role_name("rfm_reader")
    postgres_roles.append(role)
    return role


@pytest.fixture
def settings(history: Path, tmp_path: Path, postgres_url: str, reader_role: str) -> Settings:
    return settings_from(
        history, tmp_path, postgres_url=postgres_url, postgres_reader_role=reader_role
    )


def _serving(settings: Settings) -> Path:
    return settings.paths.published / settings.publish.serving_file


def _rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows comparable across DuckDB and PostgreSQL (floats to 9 digits)."""

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 9)
        if isinstance(v, Decimal):
            return Decimal(v).normalize()
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def test_postgres_serves_exactly_what_the_serving_file_serves(
    settings: Settings, postgres_url: str
) -> None:
    days = [day(37), day(38), day(39)]
    for published in days:
        publish_date(settings, published)
    assert served_by_postgres(postgres_url) == served_by_duckdb(_serving(settings))
    assert_whole(served_by_postgres(postgres_url), expected_rows(settings), days)
    _assert_same_rows(settings, postgres_url)


def test_a_first_publish_of_a_long_history_loads_it_in_batches_with_progress(
    history: Path, tmp_path: Path, postgres_url: str, reader_role: str
) -> None:
    """PostgreSQL configured after 30 dates were published: the next publish loads every
    date's versions of the daily tables, in a few COPY batches, and says how far it is."""
    days = [day(n) for n in range(10, 40)]
    settings = settings_from(history, tmp_path, postgres_reader_role=reader_role)
    for published in days:
        publish_date(settings, published)
    config = settings.publish.model_copy(
        update={"postgres_url": SecretStr(postgres_url), "postgres_copy_batch_rows": 2000}
    )
    settings = settings.model_copy(update={"publish": config})
    lines: list[str] = []

    publish_date(settings, days[-1], progress=lines.append)

    assert_whole(served_by_postgres(postgres_url), expected_rows(settings), days)
    _assert_same_rows(settings, postgres_url)
    with psycopg.connect(postgres_url) as conn:
        (versions,) = conn.execute("select count(*) from rfm_data.loaded_versions").fetchone()
    assert versions > 4 * len(days)  # the daily tables' versions of every date
    assert 1 < len(lines) < versions / 4, lines  # batches, not a COPY per version
    assert lines[-1].startswith("PostgreSQL: ") and " rows loaded (" in lines[-1]
    done, total = lines[-1].split(" rows loaded")[0].removeprefix("PostgreSQL: ").split(" of ")
    assert done == total


def _assert_same_rows(settings: Settings, postgres_url: str) -> None:
    """Every published table (and the episodes view) holds the same rows in PostgreSQL
    as in the serving file."""
    duck = duckdb.connect(str(_serving(settings)), read_only=True)
    with psycopg.connect(postgres_url) as conn:
        for table in (*PUBLISHED_TABLES, "customer_stage_episodes"):
            columns = (
                load_contract(table).column_names
                if table in PUBLISHED_TABLES
                else ["customer_key", "stage", "valid_from", "valid_to"]
            )
            listed = ", ".join(columns)
            in_duckdb = duck.sql(f"select {listed} from {table}").fetchall()
            in_postgres = conn.execute(
                pg.SQL("select {} from {}").format(
                    pg.SQL(", ").join(map(pg.Identifier, columns)), pg.Identifier("rfm", table)
                )
            ).fetchall()
            assert _rows(in_postgres) == _rows(in_duckdb), table
            assert in_duckdb or table in ("danger_alerts",), f"{table} is empty"


@pytest.mark.slow  # a reader loop across repeated publishes
def test_readers_in_a_loop_see_only_whole_versions_during_repeated_publishes(
    settings: Settings, postgres_url: str
) -> None:
    publish_date(settings, day(30))
    published_days = [day(30)]
    seen: list[Served] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_postgres() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.append(served_by_postgres(conn))
                except BaseException as error:  # every error is a failure of the test
                    errors.append(error)
                    return

    def read_serving_file() -> None:
        while not stop.is_set():
            try:
                seen.append(served_by_duckdb(_serving(settings)))
            except BaseException as error:
                errors.append(error)
                return

    readers = [threading.Thread(target=read_postgres) for _ in range(3)]
    readers.append(threading.Thread(target=read_serving_file))
    for reader in readers:
        reader.start()
    try:
        for n in (*range(31, 40), 39, 35):
            publish_date(settings, day(n))
            if day(n) not in published_days:
                published_days.append(day(n))
            time.sleep(0.05)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=60)
    assert not errors, errors[:3]
    rows_by_date = expected_rows(settings)
    for served in seen:
        assert_whole(served, rows_by_date, published_days)
    versions = {served.as_of_date for served in seen}
    assert len(seen) > 50 and len(versions) >= 5, (len(seen), versions)


def test_the_bi_role_reads_the_published_views_and_can_do_nothing_else(
    settings: Settings, postgres_url: str, postgres_roles: list[str], reader_role: str
) -> None:
    publish_date(settings, day(39))
    login = make_role_name("metabase")
    postgres_roles.append(login)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            pg.SQL("create role {} login password 'bi-password' in role {}").format(
                pg.Identifier(login), pg.Identifier(reader_role)
            )
        )
    bi_url = postgres_url.replace("rfm_admin:rfm_admin@", f"{login}:bi-password@")
    with psycopg.connect(bi_url, autocommit=True) as bi:
        for view in (*PUBLISHED_TABLES, "customer_stage_episodes", "publish_info", "publish_audit"):
            bi.execute(pg.SQL("select count(*) from {}").format(pg.Identifier("rfm", view)))
        forbidden = [
            "insert into rfm.stage_counts (as_of_date, stage_order, stage, customers, "
            "customer_share, window_net_amount, entered, exited) "
            "values ('2030-01-01', 1, 'prospect', 1, 1, 0, 0, 0)",
            "update rfm.customer_segments set segment = 'Champions'",
            "delete from rfm.stage_counts",
            "truncate rfm_data.stage_counts",
            "create table rfm.mine (i int)",
            "create table public.mine (i int)",
            "create table rfm_data.mine (i int)",
            "create view rfm.mine as select 1 as i",
            "create schema mine",
            "drop view rfm.customer_segments",
            "drop table rfm_data.customer_segments",
            "alter view rfm.customer_segments rename to mine",
            "select count(*) from rfm_data.customer_segments",
            "select count(*) from rfm_data.publishes",
            "insert into rfm_data.publishes values (999, '2030-01-01', '2030-01-01')",
        ]
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(statement)  # type: ignore[arg-type]
    # What the BI role tried left no trace.
    assert served_by_postgres(postgres_url).as_of_date == day(39)


def test_a_failing_contract_leaves_postgres_on_the_previous_version_and_records_why(
    history: Path, tmp_path: Path, postgres_url: str, reader_role: str
) -> None:
    settings = settings_from(
        history, tmp_path, postgres_url=postgres_url, postgres_reader_role=reader_role
    )
    publish_date(settings, day(38))
    _rewrite(
        settings,
        "customer_lifecycle",
        39,
        "select * replace (case when stage = 'growth' then 'zombie' else stage end as stage) from t",
    )
    with pytest.raises(PublishBlockedError, match="accepted_values"):
        publish_date(settings, day(39))
    assert_whole(served_by_postgres(postgres_url), expected_rows(settings), [day(38)])
    with psycopg.connect(postgres_url) as conn:
        failed = conn.execute(
            "select table_name, check_name, column_name, failing_rows > 0, publish_status "
            "from rfm.publish_audit where as_of_date = %s and not passed",
            [day(39)],
        ).fetchall()
        assert failed == [("customer_lifecycle", "accepted_values", "stage", True, "blocked")]
        passed = conn.execute(
            "select bool_and(passed), min(publish_status) from rfm.publish_audit "
            "where as_of_date = %s",
            [day(38)],
        ).fetchone()
        assert passed == (True, "published")


def test_a_long_bi_query_never_blocks_a_publish_and_keeps_its_snapshot(
    settings: Settings, postgres_url: str
) -> None:
    publish_date(settings, day(38))
    with psycopg.connect(postgres_url) as bi:
        bi.execute("set transaction isolation level repeatable read")
        before = bi.execute(
            "select count(*), min(as_of_date) from rfm.customer_segments"
        ).fetchone()
        # The BI transaction stays open, holding its locks and snapshot, during two publishes.
        started = time.monotonic()
        publish_date(settings, day(39))
        publish_date(settings, day(39))
        assert time.monotonic() - started < 30
        assert (
            bi.execute("select count(*), min(as_of_date) from rfm.customer_segments").fetchone()
            == before
        )
        bi.rollback()
    assert served_by_postgres(postgres_url).as_of_date == day(39)
    # Versions no recent publish serves are deleted (re-publishing the same content is
    # the same publish: backfilled earlier dates make the new publishes).
    for n in range(settings.publish.keep_versions):
        publish_date(settings, day(37 - n))
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute(
            "select count(distinct version) from rfm_data.customer_segments"
        ).fetchone()
    assert versions == (1,)


def test_a_wiped_postgres_is_rebuilt_from_the_published_files(
    settings: Settings, postgres_url: str
) -> None:
    for n in (37, 38, 39):
        publish_date(settings, day(n))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("drop schema rfm cascade")
        conn.execute("drop schema rfm_data cascade")
    publish_date(settings, day(39))
    assert served_by_postgres(postgres_url) == served_by_duckdb(_serving(settings))
    assert_whole(
        served_by_postgres(postgres_url), expected_rows(settings), [day(37), day(38), day(39)]
    )
