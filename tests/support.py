"""Helpers for tests: a pipeline inside a temporary folder, and reading the lake back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from pipeline.config import PathsConfig, Settings

WEB_HEADER = (
    "order_id,line_number,customer_id,order_time,sku,quantity,unit_price,amount,currency,status"
)


def with_paths(settings: Settings, root: Path) -> Settings:
    """``settings`` with every path under ``root`` (incoming created)."""
    paths = PathsConfig.under(root)
    paths.incoming.mkdir(parents=True, exist_ok=True)
    return settings.model_copy(update={"paths": paths})


def read_lake(settings: Settings, table: str) -> list[dict[str, object]]:
    """Every row of a lake table, partition column included, in a stable order."""
    files = sorted(settings.paths.lake.glob(f"{table}/*/*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    relation = con.sql(
        "select * from read_parquet($files, hive_partitioning = true) order by all",
        params={"files": [str(path) for path in files]},
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def lake_bytes(settings: Settings) -> dict[str, bytes]:
    """Every file under the lake by relative path: what byte-identity compares."""
    lake = settings.paths.lake
    return {
        str(path.relative_to(lake)): path.read_bytes()
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


def lake_bytes_but_file_ledger(settings: Settings) -> dict[str, bytes]:
    """lake_bytes without ingest_files, which every attempt at a date (re)writes."""
    return {
        name: data
        for name, data in lake_bytes(settings).items()
        if not name.startswith("ingest_files/")
    }


def write_csv(
    path: Path, lines: list[str], *, encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    """Write CSV text lines (comma-separated in the test, re-joined with ``delimiter``)."""
    text = "".join(line.replace(",", delimiter) + "\n" for line in lines)
    path.write_bytes(text.encode(encoding))
    return path


REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` from the repository's top, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def printed_table(output: str) -> list[dict[str, str]]:
    """The rows of the Markdown table a benchmark printed, by column name."""
    header, *rows = [line for line in output.splitlines() if line.startswith("| ")]
    names = [cell.strip() for cell in header.strip("|").split("|")]
    return [
        dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True))
        for row in rows
    ]
