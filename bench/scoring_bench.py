"""Benchmark scoring on a generated history: the daily step, the full recompute, the floor.

    python -m bench.scoring_bench                       # 100M lines, 5M customers, 456 days
    python -m bench.scoring_bench --lines 2000000 --customers 100000 --days 60 --depths 40 60

For each depth (days of history behind the as-of date D) it runs, each in its own child
process:

- ``full recompute``: ``score --date D-1 --full``, the state from every order line (this
  also prepares the state the daily step starts from);
- ``daily step``: ``score --date D``: D's customer days, the incremental state, rescoring
  and assigning every customer, the segment summary;

and once, at the last depth, the floor: a bare DuckDB scan of the same order-line columns
the full recompute reads. The history is generated once (``bench.history``) and reused
while ``--workdir`` holds it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.history import bench_root, prepare_history
from bench.measure import Measurement, machine, run_measured

START = date(2025, 1, 1)


@dataclass(frozen=True)
class Row:
    what: str
    as_of: date
    history_days: int
    lines: int
    measured: Measurement
    in_process: dict[str, object]


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.child:
        _child(args)
        return
    with bench_root(args, "score-bench-") as root:
        config = prepare_history(root, args, START)
        rows = _bench(root, config, args)
    _print(rows, args)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scoring_bench",
        description="Time the daily scoring step and the full recompute on a generated history.",
    )
    parser.add_argument("--lines", type=int, default=100_000_000, help="order lines in all")
    parser.add_argument("--customers", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=456, help="days of history to generate")
    parser.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=[91, 182, 365, 456],
        help="days of history behind each measured as-of date (each <= --days)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the history here and reuse it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--memory-limit", help="override [duckdb] memory_limit, e.g. 4GB")
    parser.add_argument("--threads", type=int, help="override [duckdb] threads")
    parser.add_argument("--child", choices=["score", "scan"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child and max(args.depths) > args.days:
        parser.error("every --depths value must be at most --days")
    return args


def _bench(root: Path, config: Path, args: argparse.Namespace) -> list[Row]:
    rows = []
    for depth in sorted(args.depths):
        day = START + timedelta(days=depth - 1)
        rows.append(_run(root, config, "full recompute", day - timedelta(days=1), full=True))
        rows.append(_run(root, config, "daily step", day, full=False))
    last = START + timedelta(days=max(args.depths) - 1)
    rows.append(_run(root, config, "bare scan (floor)", last - timedelta(days=1), scan=True))
    return rows


def _run(
    root: Path, config: Path, what: str, day: date, *, full: bool = False, scan: bool = False
) -> Row:
    command = [sys.executable, "-m", "bench.scoring_bench", "--child"]
    command += ["scan" if scan else "score", "--config", str(config), "--date", day.isoformat()]
    if full:
        command.append("--full")
    output = root / f"{what.split()[0]}-{day}.out"
    measured = run_measured(command, output, spill_root=root / "state" / "tmp")
    lines = output.read_text(encoding="utf-8").strip().splitlines()
    in_process = json.loads(lines[-1])
    print(f"{what} as of {day}: {measured.wall_seconds:.1f} s", flush=True)
    return Row(
        what,
        day,
        (day - START).days + 1,
        int(in_process.pop("lines")),
        measured,
        in_process,
    )


def _child(args: argparse.Namespace) -> None:
    """In the child process: one step, then its own figures as a JSON line."""
    from pipeline.config import load_settings
    from pipeline.duck import connect, release
    from pipeline.lake import Lake
    from pipeline.scoring.inputs import ingested_dates, register_order_lines

    settings = load_settings(args.config)
    lake = Lake(settings.paths.lake)
    con = connect(settings.duckdb, spill_dir=settings.paths.state / "tmp" / "bench")
    register_order_lines(con, lake, ingested_dates(lake, args.date))
    if args.child == "scan":
        started = time.perf_counter()
        # Every column the full recompute reads, each decoded in full.
        con.execute(
            "select count(customer_id), max(order_date), sum(amount), max(line_kind),"
            " max(export_date) from order_lines"
        ).fetchall()
        figures: dict[str, object] = {"step_seconds": round(time.perf_counter() - started, 3)}
    else:
        from pipeline.scoring.run import score_date

        started = time.perf_counter()
        report = score_date(settings, args.date, full=args.full)
        figures = {
            "step_seconds": round(time.perf_counter() - started, 3),
            "mode": report.mode,
            "customers": report.customers,
            "refitted": report.refitted,
            "phases": report.timings,
        }
    figures["lines"] = con.execute("select count(*) from order_lines").fetchall()[0][0]
    release(con)
    print(json.dumps(figures))


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        "\n| step | as of | history days | order lines | customers scored | wall s | in-step s"
        " | peak RSS MB | CPU s | peak spill MB | others' CPU s | phases (s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        m = row.measured
        phases = row.in_process.get("phases") or {}
        described = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())  # type: ignore[union-attr]
        mode = row.in_process.get("mode")
        what = f"{row.what} ({mode})" if mode and mode not in row.what else row.what
        print(
            f"| {what} | {row.as_of} | {row.history_days} | {row.lines:,}"
            f" | {_count(row.in_process.get('customers'))} | {m.wall_seconds:.2f}"
            f" | {float(str(row.in_process['step_seconds'])):.2f}"
            f" | {m.peak_rss_mb:,.0f} | {m.cpu_seconds:.2f} | {m.peak_spill_mb:,.0f}"
            f" | {m.others_cpu_seconds:.1f} | {described} |"
        )
    print(machine(args.memory_limit, args.threads))


def _count(value: object) -> str:
    return "" if value is None else f"{int(str(value)):,}"


if __name__ == "__main__":
    main()
