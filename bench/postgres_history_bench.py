"""Benchmark a first PostgreSQL publish of a long history, against COPY alone.

    python -m bench.postgres_history_bench --postgres-url "$(bash scripts/postgres.sh url)"
    python -m bench.postgres_history_bench --postgres-url ... --days 365 --customers 3000

It generates the demo's exports (``--days``, ``--customers``) and runs every step of
every date without PostgreSQL, as a shop would before adding it (not measured). Then,
into a new database on the server of ``--postgres-url``:

- ``first publish``: ``publish_date`` of the last date, in a child process: PostgreSQL
  lacks every version of every date, and loads them all (``publish.postgres_copy_batch_rows``
  rows per COPY);
- ``COPY alone``: the same rows, one CSV per table written beforehand (not measured),
  each loaded with one COPY into a table of the same columns: the speed a load of
  these rows cannot beat.

Prints a Markdown table: versions, rows, seconds, rows per second, the ratio of the
two, and the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql as pg
from pydantic import SecretStr

from bench.measure import Measurement, machine, run_measured
from bench.publish_bench import fresh_database
from pipeline.config import PathsConfig, Settings
from pipeline.publish import publish_date
from pipeline.publish.catalog import load_catalog
from pipeline.publish.contracts import load_contract
from pipeline.publish.postgres import pg_type
from pipeline.publish.tables import PUBLISHED_TABLES

START = date(2025, 1, 1)
SECRET = "postgres-history-bench-secret"


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.child:
        _child(args)
        return
    root = args.workdir or Path(tempfile.mkdtemp(prefix="rfm-pg-history-bench-"))
    try:
        last = _prepare(root, args)
        with fresh_database(args.postgres_url) as url:
            config = _write_config(root, url)
            command = [sys.executable, "-m", "bench.postgres_history_bench", "--child"]
            command += ["--config", str(config), "--date", last.isoformat()]
            command += ["--postgres-url", url]
            output = root / "first-publish.out"
            measured = run_measured(command, output, spill_root=root / "state" / "tmp")
            figures = json.loads(output.read_text(encoding="utf-8").strip().splitlines()[-1])
            csv_seconds, copy_seconds, copy_rows = _copy_alone(root, url)
        _print(args, figures, measured, csv_seconds, copy_seconds, copy_rows)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _settings(root: Path, url: str = "") -> Settings:
    paths = PathsConfig.under(root)
    settings = Settings()
    publish = settings.publish.model_copy(
        update={"key_secret": SecretStr(SECRET), "postgres_url": SecretStr(url)}
    )
    return settings.model_copy(update={"paths": paths, "publish": publish})


def _prepare(root: Path, args: argparse.Namespace) -> date:
    """The demo's history, every date published without PostgreSQL; its last date."""
    from pipeline.demo.generate import generate
    from pipeline.steps import run_days

    last = START + timedelta(days=args.days - 1)
    if (root / "published" / "manifest.json").is_file():
        print(f"reusing the history in {root}", flush=True)
        return last
    started = time.perf_counter()
    generate(root, start=START, days=args.days, customers=args.customers, seed=7)
    run_days(_settings(root), START, last)
    print(f"prepared {args.days} days in {time.perf_counter() - started:.0f} s", flush=True)
    return last


def _write_config(root: Path, url: str) -> Path:
    config = root / "pipeline.toml"
    settings = _settings(root)
    lines = ["[paths]"]
    lines += [f'{key} = "{value}"' for key, value in settings.paths.model_dump().items()]
    lines += ["[publish]", f'key_secret = "{SECRET}"', f'postgres_url = "{url}"']
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _child(args: argparse.Namespace) -> None:
    """In the child process: the first publish with PostgreSQL, then its figures."""
    from pipeline.config import load_settings

    settings = load_settings(args.config)
    started = time.perf_counter()
    report = publish_date(settings, args.date)
    seconds = time.perf_counter() - started
    with psycopg.connect(args.postgres_url) as conn:
        versions, rows = conn.execute(
            "select count(*), coalesce(sum(rows), 0) from rfm_data.loaded_versions"
        ).fetchone() or (0, 0)
    print(
        json.dumps(
            {
                "step_seconds": round(seconds, 3),
                "phases": report.timings,
                "versions": int(versions),
                "rows": int(rows),
            }
        )
    )


def _copy_alone(root: Path, url: str) -> tuple[float, float, int]:
    """The rows PostgreSQL now holds as one CSV per table (seconds), and their COPY into
    fresh tables (seconds, rows)."""
    published = root / "published"
    catalog = load_catalog(published)
    duck = duckdb.connect()
    files: list[tuple[str, Path]] = []
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        loaded: dict[str, str] = dict(
            conn.execute("select version, table_name from rfm_data.loaded_versions").fetchall()
        )
    for table in PUBLISHED_TABLES:
        entries = [e for e in catalog.entries(table).values() if e.version in loaded]
        if not entries:
            continue
        contract = load_contract(table)
        target = root / f"copy-{table}.csv"
        columns = ", ".join(f'"{c.name}"' for c in contract.columns)
        duck.execute(
            f"copy (select {columns} from read_parquet($files, union_by_name = true)) "
            f"to '{target}' (header false)",
            {"files": [str(published / e.file) for e in entries]},
        )
        files.append((table, target))
    csv_seconds = time.perf_counter() - started
    rows = 0
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("create schema copy_alone")
        for table, csv_file in files:
            contract = load_contract(table)
            conn.execute(
                pg.SQL("create table {} ({})").format(
                    pg.Identifier("copy_alone", table),
                    pg.SQL(", ").join(
                        pg.SQL("{} {}").format(pg.Identifier(c.name), pg.SQL(pg_type(c.type)))
                        for c in contract.columns
                    ),
                )
            )
            with conn.cursor() as cursor:
                statement = pg.SQL("copy {} from stdin (format csv)").format(
                    pg.Identifier("copy_alone", table)
                )
                with cursor.copy(statement) as copy, csv_file.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        copy.write(chunk)
                rows += cursor.rowcount
        conn.commit()
    return csv_seconds, time.perf_counter() - started, rows


def _print(
    args: argparse.Namespace,
    figures: dict[str, Any],
    measured: Measurement,
    csv_seconds: float,
    copy_seconds: float,
    copy_rows: int,
) -> None:
    rows = int(figures["rows"])
    load = float(figures["phases"]["reconcile"])
    wall = measured.wall_seconds
    print(
        f"\nFirst PostgreSQL publish of {args.days} days ({args.customers:,} customers)\n"
        "\n| load | versions | rows | s | rows/s | peak RSS MB |\n|---|---:|---:|---:|---:|---:|"
    )
    print(
        f"| first publish (wall, start-up included) | {figures['versions']:,} | {rows:,}"
        f" | {wall:.2f} | {rows / wall:,.0f} | {measured.peak_rss_mb:,.0f} |"
    )
    print(
        f"| its reconcile phase: the PostgreSQL load | | {rows:,} | {load:.2f}"
        f" | {rows / max(load, 1e-3):,.0f} | |"
    )
    print(
        f"| the same rows to one CSV per table (DuckDB) | | {copy_rows:,} | {csv_seconds:.2f} | | |"
    )
    print(
        f"| their COPY alone, one per table | | {copy_rows:,} | {copy_seconds:.2f}"
        f" | {copy_rows / max(copy_seconds, 1e-3):,.0f} | |"
    )
    floor = csv_seconds + copy_seconds
    print(f"\nload / (CSV + COPY alone): {load / max(floor, 1e-3):.1f}x")
    print(machine(None, None))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.postgres_history_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--postgres-url", required=True, help="an admin URL of the server")
    parser.add_argument("--days", type=int, default=120, help="days of history")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, help="keep the history here and reuse it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
