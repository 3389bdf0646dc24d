"""The synthetic history generator writes lake partitions the pipeline can read, deterministically.

A small history (20,000 lines, 500 customers, 10 days) stands in for the benchmark's 100
million lines: the same queries run, only the constants differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from bench import history
from pipeline.config import Settings
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, run_module, write_csv

LINES = 20_000
CUSTOMERS = 500
DAYS = 10
START = date(2025, 1, 1)
SEED = 7
DAY_LIST = [START + timedelta(days=i) for i in range(DAYS)]

ORDER_LINES_TYPES = [
    ("order_id", "VARCHAR"),
    ("line_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("ordered_at", "TIMESTAMP WITH TIME ZONE"),
    ("order_date", "DATE"),
    ("product_id", "VARCHAR"),
    ("quantity", "DECIMAL(18,3)"),
    ("unit_price", "DECIMAL(18,4)"),
    ("amount", "DECIMAL(18,4)"),
    ("currency", "VARCHAR"),
    ("line_kind", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
    ("source_currency", "VARCHAR"),
    ("source_amount", "DECIMAL(18,4)"),
    ("exchange_rate", "DECIMAL(18,8)"),
    ("is_amount_derived", "BOOLEAN"),
    ("is_amount_inconsistent", "BOOLEAN"),
    ("is_nonexistent_local_time", "BOOLEAN"),
    ("is_ambiguous_local_time", "BOOLEAN"),
]
LEDGER_TYPES = [
    ("source_file", "VARCHAR"),
    ("file_sha256", "VARCHAR"),
    ("file_bytes", "BIGINT"),
    ("file_format", "VARCHAR"),
    ("encoding", "VARCHAR"),
    ("delimiter", "VARCHAR"),
    ("rows_in", "BIGINT"),
    ("rows_accepted", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("rows_duplicate", "BIGINT"),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    lake = tmp_path_factory.mktemp("history") / "lake"
    calls: list[tuple[int, date, int]] = []
    summary = history.generate_history(
        lake,
        lines=LINES,
        customers=CUSTOMERS,
        days=DAYS,
        start=START,
        seed=SEED,
        progress=lambda done, day, lines: calls.append((done, day, lines)),
    )
    summary["progress_calls"] = calls
    return lake, summary


@pytest.fixture(scope="module")
def con(generated: tuple[Path, dict[str, Any]]) -> Iterator[duckdb.DuckDBPyConnection]:
    lake, _ = generated
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    connection.execute(
        "create view lines as select * from read_parquet("
        f"'{lake}/order_lines/*/data.parquet', hive_partitioning = true)"
    )
    connection.execute(
        "create view ledger as select * from read_parquet("
        f"'{lake}/ingest_ledger/*/data.parquet', hive_partitioning = true)"
    )
    connection.execute(
        "create view orders as select order_id, any_value(export_date) as export_date,"
        " count(*) as lines, count(distinct customer_id) as customers,"
        " bool_or(customer_id is null) as guest, count(distinct ordered_at) as times,"
        " count(distinct order_date) as dates, any_value(customer_id) as customer_id"
        " from lines group by order_id"
    )
    yield connection
    connection.close()


def _one(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    row = con.execute(query).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def _describe(path: Path) -> list[tuple[str, str]]:
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    rows = connection.execute(
        f"describe select * from read_parquet('{path}', hive_partitioning = false)"
    ).fetchall()
    connection.close()
    return [(row[0], row[1]) for row in rows]


def _files(lake: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(lake)): path.read_bytes()
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


# --- layout, schema, counts ------------------------------------------------------------------


def test_writes_exactly_one_file_per_table_and_day(generated: tuple[Path, dict[str, Any]]) -> None:
    lake, summary = generated
    expected = {
        f"{table}/export_date={day.isoformat()}/data.parquet"
        for table in ("order_lines", "ingest_ledger")
        for day in DAY_LIST
    }
    assert set(_files(lake)) == expected  # no temporaries, no other tables
    assert summary["bytes"] == sum(len(data) for data in _files(lake).values())


def test_files_have_the_lake_schema_zstd_and_no_partition_column(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    lake, _ = generated
    for day in DAY_LIST:
        lines_file = lake / f"order_lines/export_date={day}/data.parquet"
        ledger_file = lake / f"ingest_ledger/export_date={day}/data.parquet"
        assert _describe(lines_file) == ORDER_LINES_TYPES
        assert _describe(ledger_file) == LEDGER_TYPES
        for path in (lines_file, ledger_file):
            assert "export_date" not in pq.read_schema(path).names
            metadata = pq.read_metadata(path)
            assert {
                metadata.row_group(g).column(c).compression
                for g in range(metadata.num_row_groups)
                for c in range(metadata.num_columns)
            } == {"ZSTD"}


def test_schema_matches_what_ingest_writes(settings: Settings, tmp_path: Path) -> None:
    day = date(2026, 11, 22)
    write_csv(
        settings.paths.incoming / "sales_20261122.csv",
        [WEB_HEADER, "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed"],
    )
    ingest_date(settings, day)
    generated_lake = tmp_path / "generated"
    history.generate_history(generated_lake, lines=50, customers=100, days=1, start=day, seed=SEED)
    for table in ("order_lines", "ingest_ledger"):
        ingested = settings.paths.lake / f"{table}/export_date={day}/data.parquet"
        ours = generated_lake / f"{table}/export_date={day}/data.parquet"
        assert _describe(ours) == _describe(ingested)


def test_lines_per_day_sum_to_the_total_and_the_ledger_balances(
    con: duckdb.DuckDBPyConnection, generated: tuple[Path, dict[str, Any]]
) -> None:
    lake, summary = generated
    per_day = history.lines_per_day(LINES, START, DAYS)
    assert sum(per_day) == LINES == summary["lines"]
    counts = dict(con.execute("select export_date, count(*) from lines group by all").fetchall())
    assert [counts[day] for day in DAY_LIST] == per_day
    ledger = con.execute(
        "select export_date, source_file, file_sha256, file_bytes, file_format, encoding,"
        " delimiter, rows_in, rows_accepted, rows_quarantined, rows_duplicate"
        " from ledger order by export_date"
    ).fetchall()
    assert [row[0] for row in ledger] == DAY_LIST  # one row per day
    for row, day, lines in zip(ledger, DAY_LIST, per_day, strict=True):
        _, source_file, sha, file_bytes, file_format, encoding, delimiter, *rows = row
        assert source_file == f"sales_{day:%Y%m%d}.csv"
        assert re.fullmatch(r"[0-9a-f]{64}", sha)
        assert file_bytes > 60 * lines  # the CSV the lines would have come from
        assert (file_format, encoding, delimiter) == ("csv", "utf-8", ",")
        assert rows == [lines, lines, 0, 0]
    assert len({row[2] for row in ledger}) == DAYS
    for day in DAY_LIST:  # the ledger partition lands after the day's lines
        lines_file = lake / f"order_lines/export_date={day}/data.parquet"
        ledger_file = lake / f"ingest_ledger/export_date={day}/data.parquet"
        assert lines_file.stat().st_mtime_ns <= ledger_file.stat().st_mtime_ns


def test_summary_and_progress(
    con: duckdb.DuckDBPyConnection, generated: tuple[Path, dict[str, Any]]
) -> None:
    _, summary = generated
    assert summary["days"] == DAYS and summary["customers"] == CUSTOMERS
    assert summary["orders"] == _one(con, "select count(*) from orders")
    assert summary["customers_seen"] == _one(con, "select count(distinct customer_id) from lines")
    per_day = history.lines_per_day(LINES, START, DAYS)
    running = [sum(per_day[: i + 1]) for i in range(DAYS)]
    assert summary["progress_calls"] == [(i + 1, day, running[i]) for i, day in enumerate(DAY_LIST)]


# --- determinism -----------------------------------------------------------------------------


def test_two_runs_write_byte_identical_files_whatever_the_threads(
    generated: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    lake, _ = generated
    again = tmp_path / "again"
    history.generate_history(
        again, lines=LINES, customers=CUSTOMERS, days=DAYS, start=START, seed=SEED, threads=1
    )
    assert _files(again) == _files(lake)
    other_seed = tmp_path / "other-seed"
    history.generate_history(
        other_seed, lines=LINES, customers=CUSTOMERS, days=DAYS, start=START, seed=SEED + 1
    )
    assert _files(other_seed).keys() == _files(lake).keys()
    assert _files(other_seed) != _files(lake)


# --- properties ------------------------------------------------------------------------------


def test_rows_are_in_file_order_and_numbered(con: duckdb.DuckDBPyConnection) -> None:
    for day in DAY_LIST:
        rows = con.execute(
            "select ordered_at, order_id, line_id, source_row, source_file from lines"
            f" where export_date = date '{day}'"
        ).fetchall()
        keys = [row[:3] for row in rows]
        assert keys == sorted(keys)
        assert [row[3] for row in rows] == list(range(1, len(rows) + 1))
        assert {row[4] for row in rows} == {f"sales_{day:%Y%m%d}.csv"}


def test_orders_have_one_to_four_numbered_lines_sharing_customer_time_and_date(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert _one(con, "select count(*) from orders where times <> 1 or dates <> 1") == 0
    assert _one(con, "select count(*) from orders where customers > 1") == 0
    assert _one(con, "select count(*) from orders where guest and customers <> 0") == 0
    assert _one(con, "select count(distinct export_date) = 1 from orders") is False
    spanning_days = _one(
        con,
        "select count(*) from (select order_id, count(distinct export_date) as n from lines"
        " group by order_id) where n > 1",
    )
    assert spanning_days == 0  # order ids are unique across days
    gaps = _one(
        con,
        "select count(*) from (select order_id, list_sort(list(line_id::integer)) as ids,"
        " count(*) as n from lines group by order_id) where ids <> range(1, n + 1)",
    )
    assert gaps == 0  # line_id '1'..'n' within each order
    low, high, mean = _one(con, "select min(lines), max(lines), avg(lines) from orders")
    assert (low, high) == (1, 4)
    assert 1.85 < mean < 2.15
    assert re.fullmatch(r"O\d{8}\d{7}", _one(con, "select min(order_id) from lines"))


def test_order_dates_are_local_dates_mostly_the_export_day(
    con: duckdb.DuckDBPyConnection,
) -> None:
    wrong = _one(
        con,
        "select count(*) from lines"
        " where order_date <> cast(timezone('Asia/Shanghai', ordered_at) as date)",
    )
    assert wrong == 0
    lags = dict(
        con.execute("select export_date - order_date, count(*) from lines group by all").fetchall()
    )
    assert set(lags) <= {0, 1, 2}
    assert 0.003 < (lags.get(1, 0) + lags.get(2, 0)) / LINES < 0.025
    # late lines: within 48 hours before the export day's local start
    earliest = _one(
        con,
        "select min(epoch(ordered_at) - epoch(timezone('Asia/Shanghai', export_date::timestamp)))"
        " from lines",
    )
    assert -48 * 3600 <= earliest < 0


def test_line_kinds_signs_and_amounts(con: duckdb.DuckDBPyConnection) -> None:
    shares = dict(
        con.execute(
            "select line_kind, count(*) / sum(count(*)) over () from lines group by all"
        ).fetchall()
    )
    assert set(shares) == {"sale", "return", "cancellation"}
    assert 0.94 < shares["sale"] < 0.98
    assert 0.02 < shares["return"] < 0.04
    assert 0.004 < shares["cancellation"] < 0.02
    assert _one(con, "select count(*) from lines where quantity = 0") == 0
    assert (
        _one(
            con,
            "select count(*) from lines where (line_kind = 'return')"
            " <> (quantity < 0 and amount < 0)",
        )
        == 0
    )
    unrounded = _one(
        con, "select count(*) from lines where amount <> round(quantity * unit_price, 2)"
    )
    assert unrounded == 0
    low, high = _one(con, "select min(unit_price), max(unit_price) from lines")
    assert low >= 5 and high <= 500
    assert _one(con, "select count(*) from lines where quantity <> round(quantity)") > 0
    assert _one(con, "select list(distinct currency) from lines") == ["CNY"]
    assert _one(con, "select count(*) from lines where product_id not similar to 'P[0-9]{6}'") == 0
    prices = _one(
        con,
        "select max(n) from (select product_id, count(distinct unit_price) as n from lines"
        " group by product_id)",
    )
    assert prices == 1  # one price per product


def test_customers_are_skewed_and_some_are_guests(con: duckdb.DuckDBPyConnection) -> None:
    guest_share = _one(con, "select avg(guest::integer) from orders")
    assert 0.03 < guest_share < 0.07
    malformed = _one(
        con,
        "select count(*) from lines where customer_id is not null"
        " and (not regexp_full_match(customer_id, 'C[0-9]{8}')"
        f" or customer_id[2:]::integer not between 1 and {CUSTOMERS})",
    )
    assert malformed == 0
    per_customer = [
        row[0]
        for row in con.execute(
            "select count(*) from orders where not guest group by customer_id order by 1 desc"
        ).fetchall()
    ]
    top_tenth = sum(per_customer[: len(per_customer) // 10]) / sum(per_customer)
    assert top_tenth > 0.3  # a minority buys often
    assert sum(n <= 2 for n in per_customer) / len(per_customer) > 0.2  # many buy once or twice


def test_customers_buy_only_inside_their_lifetime(con: duckdb.DuckDBPyConnection) -> None:
    macros = duckdb.connect()
    history._create_macros(macros, seed=SEED, customers=CUSTOMERS, days=DAYS)
    rows = macros.execute(
        "select customer_number(range), range from range($c)", {"c": CUSTOMERS}
    ).fetchall()
    assert sorted(row[0] for row in rows) == list(range(1, CUSTOMERS + 1))  # a bijection
    bought = con.execute(
        "select customer_id[2:]::integer, (export_date - date '2025-01-01')::integer"
        " from orders where not guest"
    ).fetchall()
    macros.execute("create table bought (customer integer, day integer)")
    macros.executemany("insert into bought values (?, ?)", bought)
    macros.execute("create table virtual (customer integer, v bigint)")
    macros.executemany("insert into virtual values (?, ?)", rows)
    inside = _one(
        macros,
        "select avg(active(v, day)::integer) from bought join virtual using (customer)",
    )
    macros.close()
    assert inside > 0.97  # an order falls back to an inactive customer only rarely


# --- edges and the command -------------------------------------------------------------------


def test_lines_per_day_follows_the_week_and_the_festivals() -> None:
    around_11_11 = history.lines_per_day(1_000_000, date(2025, 11, 3), 14)  # Mon 3 .. Sun 16
    assert sum(around_11_11) == 1_000_000
    assert max(around_11_11) == around_11_11[8]  # 11 November
    assert around_11_11[5] > around_11_11[1]  # Saturday above Tuesday
    few = history.lines_per_day(3, START, 5)
    assert sum(few) == 3 and set(few) <= {0, 1}


def test_days_without_lines_get_empty_partitions(tmp_path: Path) -> None:
    summary = history.generate_history(
        tmp_path / "lake", lines=3, customers=100, days=5, start=START, seed=SEED
    )
    assert summary["lines"] == 3
    connection = duckdb.connect()
    per_file = connection.execute(
        f"select count(*) from read_parquet('{tmp_path}/lake/order_lines/*/*.parquet',"
        " filename = true) group by filename"
    ).fetchall()
    ledger = connection.execute(
        f"select rows_in, rows_accepted from read_parquet('{tmp_path}/lake/ingest_ledger/*/*.parquet')"
        " order by all"
    ).fetchall()
    connection.close()
    assert sorted(row[0] for row in per_file) == [1, 1, 1]  # the empty files have no rows
    assert len(list((tmp_path / "lake/order_lines").glob("*/data.parquet"))) == 5
    assert ledger == [(0, 0), (0, 0), (1, 1), (1, 1), (1, 1)]
    for path in (tmp_path / "lake/order_lines").glob("*/data.parquet"):
        assert _describe(path) == ORDER_LINES_TYPES


def test_command_prints_progress_and_totals(tmp_path: Path) -> None:
    result = run_module(
        "bench.history",
        "--lake",
        str(tmp_path / "lake"),
        "--lines",
        "3000",
        "--customers",
        "200",
        "--days",
        "3",
        "--start",
        "2025-02-01",
        "--seed",
        "3",
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2025-02-03  day    3/3" in result.stdout
    assert "3,000 lines in " in result.stdout and " customers seen" in result.stdout
    assert (tmp_path / "lake/ingest_ledger/export_date=2025-02-03/data.parquet").is_file()
