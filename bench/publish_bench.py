"""Benchmark the publish step (``publish_date``) on a generated history.

    python -m bench.publish_bench                                  # 8M lines, 1M customers
    python -m bench.publish_bench --postgres-url postgresql://...  # PostgreSQL target too

It prepares, in this process and not measured, what the lifecycle benchmark prepares
(``bench.lifecycle_bench``: customer days, scores of D-1 and D, the lifecycle of D-1)
plus the lifecycle of D. Then it measures, each in its own child process:

- ``first publish``: ``publish_date(D-1)``, into empty targets;
- ``daily publish``: ``publish_date(D)``, with D-1 serving: stage the BI tables, audit
  them against their contracts, place the snapshots, build the serving file, load
  PostgreSQL (with ``--postgres-url``);
- ``re-run``: ``publish_date(D)`` again; its snapshots must keep the same bytes.

A publish stages every customer's rows of the date (customer_segments,
customer_lifecycle, ...) and the day's small tables, so its work grows with the
customers, not with history: the serving file refers to earlier dates' snapshots
without copying them, and PostgreSQL loads only versions it does not hold yet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql as pg

from bench.history import bench_root, prepare_history
from bench.lifecycle_bench import build_customer_days_upto, prepare_date
from bench.measure import Measurement, machine, run_measured
from pipeline.config import load_settings
from pipeline.lifecycle.run import stage_date
from pipeline.publish import publish_date
from pipeline.publish.catalog import load_catalog

START = date(2025, 1, 1)
SECRET = "publish-bench-secret"


@dataclass(frozen=True)
class Row:
    what: str
    as_of: date
    measured: Measurement
    in_process: dict[str, Any]


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.child:
        _child(args)
        return
    with bench_root(args, "pub-bench-") as root:
        config = prepare_history(root, args, START)
        with fresh_database(args.postgres_url) as url:
            with config.open("a", encoding="utf-8") as handle:
                handle.write(f'[publish]\nkey_secret = "{SECRET}"\npostgres_url = "{url}"\n')
            rows = _bench(root, config, args)
    _print(rows, args)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """An empty database on the server of ``admin_url`` for this run, dropped after."""
    if not admin_url:
        yield ""
        return
    name = f"rfm_publish_bench_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(pg.SQL("create database {}").format(pg.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(pg.SQL("drop database {} with (force)").format(pg.Identifier(name)))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish_bench",
        description="Time the publish step (contracts, snapshots, serving file, PostgreSQL).",
    )
    parser.add_argument("--lines", type=int, default=8_000_000, help="order lines in all")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60, help="days of history to generate")
    parser.add_argument(
        "--postgres-url",
        default="",
        help="also publish to PostgreSQL: an admin URL; the run uses a new database there",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the history here and reuse it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--memory-limit", help="override [duckdb] memory_limit, e.g. 4GB")
    parser.add_argument("--threads", type=int, help="override [duckdb] threads")
    parser.add_argument("--child", choices=["publish"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child and args.days < 3:
        parser.error("--days must be at least 3")
    return args


def _bench(root: Path, config: Path, args: argparse.Namespace) -> list[Row]:
    settings = load_settings(config)
    build_customer_days_upto(settings, args.days)
    day = START + timedelta(days=args.days - 1)
    before = day - timedelta(days=1)
    prepare_date(settings, day)
    started = time.perf_counter()
    stage_date(settings, day)
    print(f"prepared the lifecycle of {day} in {time.perf_counter() - started:.1f} s", flush=True)
    shutil.rmtree(settings.paths.published, ignore_errors=True)
    rows = [_run(root, config, "first publish", before), _run(root, config, "daily publish", day)]
    snapshots = _snapshot_files(settings.paths.published, day)
    rerun = _run(root, config, "re-run", day)
    same = snapshots == _snapshot_files(settings.paths.published, day)
    rows.append(Row(rerun.what, rerun.as_of, rerun.measured, rerun.in_process | {"same": same}))
    return rows


def _snapshot_files(published: Path, day: date) -> dict[str, int]:
    """The date's snapshot files (content-named) and their sizes."""
    catalog = load_catalog(published)
    return {
        entry.file: (published / entry.file).stat().st_size
        for table in catalog.tables
        if (entry := catalog.entries(table).get(day)) is not None
    }


def _run(root: Path, config: Path, what: str, day: date) -> Row:
    command = [sys.executable, "-m", "bench.publish_bench", "--child", "publish"]
    command += ["--config", str(config), "--date", day.isoformat()]
    output = root / f"publish-{what.split()[0]}-{day}.out"
    measured = run_measured(command, output, spill_root=root / "state" / "tmp")
    lines = output.read_text(encoding="utf-8").strip().splitlines()
    print(f"{what} as of {day}: {measured.wall_seconds:.1f} s", flush=True)
    return Row(what, day, measured, json.loads(lines[-1]))


def _child(args: argparse.Namespace) -> None:
    """In the child process: one publish, then its own figures as a JSON line."""
    settings = load_settings(args.config)
    started = time.perf_counter()
    report = publish_date(settings, args.date)
    seconds = time.perf_counter() - started
    published = settings.paths.published
    figures = {
        "step_seconds": round(seconds, 3),
        "customers": report.rows.get("customer_segments", 0),
        "rows": sum(report.rows.values()),
        "checks": report.checks,
        "postgres": report.postgres,
        "serving_mb": round((published / settings.publish.serving_file).stat().st_size / 1e6, 1),
        "phases": report.timings,
    }
    print(json.dumps(figures))


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        "\n| step | as of | customers | rows published | checks | PostgreSQL | wall s"
        " | in-step s | µs per customer | peak RSS MB | CPU s | serving file MB | phases (s)"
        " | same bytes |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        m = row.measured
        figures = row.in_process
        customers = int(figures["customers"])
        step = float(figures["step_seconds"])
        described = ", ".join(f"{k} {v:.2f}" for k, v in figures["phases"].items())
        per_customer = f"{step / customers * 1e6:.2f}" if customers else ""
        same = "" if "same" not in figures else ("yes" if figures["same"] else "NO")
        print(
            f"| {row.what} | {row.as_of} | {customers:,} | {int(figures['rows']):,}"
            f" | {figures['checks']} | {'yes' if figures['postgres'] else 'no'}"
            f" | {m.wall_seconds:.2f} | {step:.2f} | {per_customer} | {m.peak_rss_mb:,.0f}"
            f" | {m.cpu_seconds:.2f} | {figures['serving_mb']} | {described} | {same} |"
        )
    print(machine(args.memory_limit, args.threads))


if __name__ == "__main__":
    main()
