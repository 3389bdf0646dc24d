"""Connections: each step's own scratch database, though lent by one open database."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.config import DuckDBConfig
from pipeline.duck import connect, release

SPILLING = "create temp table big as select i, md5(i::varchar) as h from range(2000000) t(i)"


def test_a_connection_sees_no_temporary_object_of_an_earlier_one(tmp_path: Path) -> None:
    first = connect(DuckDBConfig(), tmp_path / "a")
    first.execute("create temp table scratch as select 1 as x")
    first.sql("select 2 as y").create_view("staged")
    release(first)
    second = connect(DuckDBConfig(), tmp_path / "b")
    with pytest.raises(duckdb.CatalogException):
        second.execute("select * from scratch")
    with pytest.raises(duckdb.CatalogException):
        second.execute("select * from staged")
    # The first one's database was dropped with it: its memory is handed back.
    databases = second.execute(
        "select count(*) from duckdb_databases() where not internal and database_name <> 'memory'"
    ).fetchall()
    assert databases == [(1,)]
    zone = second.execute("select current_setting('TimeZone')").fetchall()
    assert zone == [("UTC",)]


def test_each_step_spills_to_its_own_folder_even_after_one_was_removed(tmp_path: Path) -> None:
    config = DuckDBConfig(memory_limit="60MB", threads=1)
    for step in ("ingest", "score", "publish"):
        scratch = tmp_path / step
        con = connect(config, scratch)
        con.execute(SPILLING)
        assert con.execute("select count(distinct h) from big").fetchall() == [(2_000_000,)]
        assert any(scratch.iterdir())  # it spilled here, not to an earlier step's folder
        release(con)
        shutil.rmtree(scratch)  # as the step's workspace is


def test_a_connection_opened_inside_another_keeps_its_own_spill_folder(tmp_path: Path) -> None:
    """A step opening a connection while another is out (scoring builds missing customer
    days inside its state's connection) gets a database of its own: removing the inner
    step's scratch must not take the outer step's spill files with it."""
    config = DuckDBConfig(memory_limit="60MB", threads=1)
    outer = connect(config, tmp_path / "outer")
    inner = connect(config, tmp_path / "inner")
    inner.execute(SPILLING)
    release(inner)
    shutil.rmtree(tmp_path / "inner")
    outer.execute(SPILLING)
    assert outer.execute("select count(distinct h) from big").fetchall() == [(2_000_000,)]
    outer.sql("select 1 as x").create_view("kept")
    release(outer)
    again = connect(config, tmp_path / "again")
    with pytest.raises(duckdb.CatalogException):
        again.execute("select * from kept")
    release(again)


def test_a_partition_replaced_in_the_same_second_is_read_anew(tmp_path: Path) -> None:
    """Parquet footers are cached across a process's steps; a re-run's replaced
    partition (same name, same size, other values) is never read with the old one."""
    from pipeline.lake import write_partition

    target = tmp_path / "t" / "data.parquet"
    seen = []
    for factor in (1, 2, 3, 1):
        con = connect(DuckDBConfig(), tmp_path / "spill")
        assert con.execute("select current_setting('parquet_metadata_cache')").fetchall() == [
            (True,)
        ]
        write_partition(con.sql(f"select range * {factor} as x from range(1000)"), target)
        seen.append(
            con.execute("select sum(x) from read_parquet($p)", {"p": str(target)}).fetchall()
        )
        release(con)
        # A later step of the same process reads it through the cache.
        con = connect(DuckDBConfig(), tmp_path / "spill")
        again = con.execute("select sum(x) from read_parquet($p)", {"p": str(target)}).fetchall()
        release(con)
        assert again == seen[-1]
    assert seen == [[(499500 * f,)] for f in (1, 2, 3, 1)]
