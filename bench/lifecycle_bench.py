"""Benchmark the daily lifecycle step (``stage_date``) on a generated history.

    python -m bench.lifecycle_bench                     # 40M lines, 5M customers, 120 days
    python -m bench.lifecycle_bench --lines 2000000 --customers 200000 --days 100 --depths 100

For each depth (days of history behind the as-of date D) it prepares, in this process
and not measured: every day's ``customer_days``, ``score --date D-1 --full``,
``score --date D`` and the first lifecycle run, of D-1 (no day before). Then it measures,
each in its own child process:

- ``daily step``: ``stage_date(D)``, with D-1's lifecycle as the previous stage: the
  recent activity from D-1's and the customer days entering and leaving its window, the
  date's segments, every customer staged, the
  derived tables (transitions, stage history, danger alerts, counts, flows) and the
  alerts file;
- ``re-run``: ``stage_date(D)`` again; its six partitions must keep the same bytes;
- ``risk model fit``: what the model schedule adds once a week (``risk.fit`` as of D-1:
  the rhythm over every customer-day, the backtest's cut-offs, the classifier), not
  part of the daily step.

So that a real risk model (not the young lake's fallback) is in force, the bench
configuration fixes the horizon at 28 days with 3 cut-offs 14 days apart, and the
preparation scores those cut-off dates (in full) before D-1's first lifecycle run fits
the model.

The lifecycle step reads D-1's recent activity and a few customer_days partitions (the
last ``lifecycle.recent_days`` of them when it has no D-1's: the first run), so its
work should grow with the customers staged, not with the months of history:
compare the depths per customer. The history is generated once (``bench.history``)
and reused while ``--workdir`` holds it, as are the customer days and the scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.history import bench_root, prepare_history
from bench.measure import Measurement, machine, run_measured
from pipeline.config import Settings, load_settings
from pipeline.declarations import input_dates
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.lifecycle import recent
from pipeline.lifecycle import run as lifecycle
from pipeline.lifecycle.run import stage_date
from pipeline.scoring.customer_days import build_customer_days
from pipeline.scoring.run import score_date
from pipeline.tables import CUSTOMER_DAYS, CUSTOMER_SEGMENTS

START = date(2025, 1, 1)


@dataclass(frozen=True)
class Row:
    what: str
    as_of: date
    history_days: int
    measured: Measurement
    in_process: dict[str, Any]
    same_bytes: bool | None  # re-runs only: every partition byte-identical to the run before


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.child:
        _child(args)
        return
    with bench_root(args, "life-bench-") as root:
        config = prepare_history(root, args, START)
        rows = _bench(root, config, args)
    _print(rows, args)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lifecycle_bench",
        description="Time the daily lifecycle step (stage every customer) on a generated history.",
    )
    parser.add_argument("--lines", type=int, default=40_000_000, help="order lines in all")
    parser.add_argument("--customers", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=120, help="days of history to generate")
    parser.add_argument(
        "--depths",
        type=int,
        nargs="+",
        help="days of history behind each measured as-of date (each 2..--days; default: --days)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the history here and reuse it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--memory-limit", help="override [duckdb] memory_limit, e.g. 4GB")
    parser.add_argument("--threads", type=int, help="override [duckdb] threads")
    parser.add_argument("--child", choices=["stage", "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        args.depths = sorted(set(args.depths or [args.days]))
        if min(args.depths) < 2 or max(args.depths) > args.days:
            parser.error("every --depths value must be between 2 and --days")
    return args


def _bench(root: Path, config: Path, args: argparse.Namespace) -> list[Row]:
    settings = load_settings(with_bench_lifecycle(config))
    build_customer_days_upto(settings, args.days)
    rows = []
    for depth in args.depths:
        day = START + timedelta(days=depth - 1)
        prepare_date(settings, day)
        first = _run(root, config, "daily step", day)
        before = _digests(settings, day)
        again = _run(root, config, "re-run", day)
        rows += [first, _with_same_bytes(again, before == _digests(settings, day))]
        # As of D-1: its backtest cut-offs are the ones prepare_date scored (D's are not).
        rows.append(_run(root, config, "risk model fit", day - timedelta(days=1), child="fit"))
    return rows


BENCH_LIFECYCLE = "[lifecycle]\nhorizon_days = 28\nbacktest_cutoffs = 3\nbacktest_step_days = 14\n"


def with_bench_lifecycle(config: Path) -> Path:
    """The history's configuration plus the bench's fixed horizon and cut-offs."""
    text = config.read_text(encoding="utf-8")
    if "[lifecycle]" not in text:
        config.write_text(text + BENCH_LIFECYCLE, encoding="utf-8")
    return config


def build_customer_days_upto(settings: Settings, days: int) -> None:
    """Every day's customer_days partition (those already in the workdir are reused)."""
    lake = Lake(settings.paths.lake)
    started = time.perf_counter()
    built = 0
    for index in range(days):
        day = START + timedelta(days=index)
        if not lake.partition_file(CUSTOMER_DAYS, day).is_file():
            build_customer_days(settings, day)
            built += 1
    print(
        f"prepared customer_days of {days} days ({built} built, {days - built} reused)"
        f" in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def prepare_date(settings: Settings, day: date) -> None:
    """Scores of D-1 (full) and D, unless present; then D-1's lifecycle, a first run."""
    lake = Lake(settings.paths.lake)
    before = day - timedelta(days=1)
    steps = []
    scored = [lake.partition_file(CUSTOMER_SEGMENTS, d, AS_OF_KEY) for d in (before, day)]
    if all(path.is_file() for path in scored):
        steps.append(f"scores of {before} and {day} reused")
    else:
        started = time.perf_counter()
        score_date(settings, before, full=True)
        steps.append(f"score {before} --full {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        score_date(settings, day)
        steps.append(f"score {day} {time.perf_counter() - started:.1f} s")
    # The backtest's cut-offs (28, 42 and 56 days before D-1), so that a model is fitted.
    for back in (28, 42, 56):
        cutoff = before - timedelta(days=back)
        if (
            cutoff >= START
            and not lake.partition_file(CUSTOMER_SEGMENTS, cutoff, AS_OF_KEY).is_file()
        ):
            started = time.perf_counter()
            score_date(settings, cutoff, full=True)
            steps.append(f"score {cutoff} --full {time.perf_counter() - started:.1f} s")
    shutil.rmtree(settings.paths.models / "risk", ignore_errors=True)
    # A first run needs no earlier date staged: start every depth from an empty lifecycle.
    for table in _lifecycle_tables():
        shutil.rmtree(lake.table_dir(table), ignore_errors=True)
    shutil.rmtree(settings.paths.alerts, ignore_errors=True)
    started = time.perf_counter()
    report = stage_date(settings, before)
    assert report.first_run, report
    steps.append(f"first lifecycle run {before} {time.perf_counter() - started:.1f} s")
    print(f"prepared {day}: {', '.join(steps)}", flush=True)


def _lifecycle_tables() -> tuple[str, ...]:
    return (
        lifecycle.CUSTOMER_LIFECYCLE,
        lifecycle.STAGE_TRANSITIONS,
        lifecycle.CUSTOMER_STAGE_HISTORY,
        lifecycle.DANGER_ALERTS,
        lifecycle.STAGE_COUNTS,
        lifecycle.STAGE_FLOWS,
    )


def _digests(settings: Settings, day: date) -> dict[str, str]:
    """sha256 of each lifecycle partition of ``day`` (customer_lifecycle first)."""
    lake = Lake(settings.paths.lake)
    return {
        table: hashlib.sha256(lake.partition_file(table, day, AS_OF_KEY).read_bytes()).hexdigest()
        for table in _lifecycle_tables()
    }


def _run(root: Path, config: Path, what: str, day: date, child: str = "stage") -> Row:
    command = [sys.executable, "-m", "bench.lifecycle_bench", "--child", child]
    command += ["--config", str(config), "--date", day.isoformat()]
    output = root / f"{what.split()[0]}-{day}.out"
    measured = run_measured(command, output, spill_root=root / "state" / "tmp")
    lines = output.read_text(encoding="utf-8").strip().splitlines()
    in_process = json.loads(lines[-1])
    print(f"{what} as of {day}: {measured.wall_seconds:.1f} s", flush=True)
    return Row(what, day, (day - START).days + 1, measured, in_process, None)


def _with_same_bytes(row: Row, same: bool) -> Row:
    return Row(row.what, row.as_of, row.history_days, row.measured, row.in_process, same)


def _child(args: argparse.Namespace) -> None:
    """In the child process: one lifecycle step, then its own figures as a JSON line."""
    settings = load_settings(args.config)
    if args.child == "fit":
        _child_fit(settings, args.date)
        return
    kept = Lake(settings.paths.state).partition_file(
        recent.TABLE, args.date - timedelta(days=1), AS_OF_KEY
    )
    query = recent.INCREMENTAL if kept.is_file() else recent.FULL
    window = input_dates(settings, recent.MODEL, "customer_days", args.date, {}, query)
    started = time.perf_counter()
    report = stage_date(settings, args.date)
    seconds = time.perf_counter() - started
    counts = {row["stage"]: int(row["customers"]) for row in report.stage_counts}
    figures = {
        "step_seconds": round(seconds, 3),
        "first_run": report.first_run,
        "days_read": len(Lake(settings.paths.lake).existing_partitions(CUSTOMER_DAYS, window)),
        "customers": sum(counts.values()),
        "danger": counts.get("danger", 0),
        "transitions": report.transitions,
        "alerts": report.alerts,
        "phases": report.timings,
    }
    print(json.dumps(figures))


def _child_fit(settings: Settings, day: date) -> None:
    """The weekly refit as of ``day`` (rhythm, backtest, classifier), not saved."""
    from pipeline.lifecycle.alive import AliveStore
    from pipeline.lifecycle.risk import fit

    started = time.perf_counter()
    model, _curve = fit(settings, day, AliveStore(settings.paths.models).newest_on_or_before(day))
    seconds = time.perf_counter() - started
    figures = model.figures
    print(
        json.dumps(
            {
                "step_seconds": round(seconds, 3),
                "first_run": False,
                "days_read": len(Lake(settings.paths.lake).partition_dates(CUSTOMER_DAYS)),
                "customers": int(figures.get("training_rows", 0))
                + int(figures.get("validation_rows", 0)),
                "danger": 0,
                "transitions": 0,
                "alerts": 0,
                "phases": {"source " + model.source: 0.0, "auc": float(figures.get("auc") or 0)},
            }
        )
    )


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        "\n| step | as of | history days | customer_days read | customers staged | in danger"
        " | transitions | alerts | wall s | in-step s | µs per customer | peak RSS MB | CPU s"
        " | peak spill MB | others' CPU s | phases (s) | same bytes |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        m = row.measured
        figures = row.in_process
        phases = figures["phases"]
        customers = int(figures["customers"])
        step = float(figures["step_seconds"])
        # Outside the timed phases: inputs, the population's gap, the outbox, the counts.
        phases = phases | {"rest": max(0.0, step - sum(phases.values()))}
        described = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
        per_customer = f"{step / customers * 1e6:.2f}" if customers else ""
        same = "" if row.same_bytes is None else ("yes" if row.same_bytes else "NO")
        print(
            f"| {row.what} | {row.as_of} | {row.history_days} | {figures['days_read']}"
            f" | {customers:,} | {int(figures['danger']):,} | {int(figures['transitions']):,}"
            f" | {int(figures['alerts']):,} | {m.wall_seconds:.2f} | {step:.2f}"
            f" | {per_customer} | {m.peak_rss_mb:,.0f} | {m.cpu_seconds:.2f}"
            f" | {m.peak_spill_mb:,.0f} | {m.others_cpu_seconds:.1f} | {described} | {same} |"
        )
    print(machine(args.memory_limit, args.threads))


if __name__ == "__main__":
    main()
