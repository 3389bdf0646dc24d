"""Connections: each step's own, though in-memory ones share the thread's database."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.config import DuckDBConfig
from pipeline.duck import connect

SPILLING = "create temp table big as select i, md5(i::varchar) as h from range(2000000) t(i)"


def test_a_connection_sees_no_temporary_object_of_an_earlier_one(tmp_path: Path) -> None:
    first = connect(DuckDBConfig(), tmp_path / "a")
    first.execute("create temp table scratch as select 1 as x")
    first.sql("select 2 as y").create_view("staged")
    first.close()
    second = connect(DuckDBConfig(), tmp_path / "b")
    with pytest.raises(duckdb.CatalogException):
        second.execute("select * from scratch")
    with pytest.raises(duckdb.CatalogException):
        second.execute("select * from staged")
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
        con.close()
        shutil.rmtree(scratch)  # as the step's workspace is
