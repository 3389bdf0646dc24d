"""Time whole backfills against issue 17's targets: the demo's year and CDNOW's 273 days.

``python -m bench.backfill_bench [--sequential] [--no-cdnow] [--days 365 --customers 3000]``

Each case is prepared first and not timed: the demo retailer's exports (pipeline/demo,
seed 42, from 2025-01-01), or CDNOW's sample as daily exports from 1997-01-01 to
1997-09-30 (pipeline/realdata/cdnow.py, needs the ``lifetimes`` wheel of the dev
dependencies). The backfill then runs in a child process (``run_days``, as ``rfm-pipeline
backfill`` and the demo run it: ingest, score, lifecycle and publish of every date), and
its wall time (start-up included), CPU time and peak RSS are printed beside the target
(for the sizes the targets are set for: the demo's 365 days of 3,000 customers, CDNOW).
``--sequential`` runs each case a second time with ``duckdb.backfill_overlap = false``
(one step at a time) in a fresh folder, and checks that both wrote the same lake.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.measure import Measurement, machine, run_measured

DEMO_START = date(2025, 1, 1)
# Issue 17's targets, in seconds of wall time on the 2-core machine of docs/benchmarks.md.
TARGETS = {"demo": 60.0, "cdnow": 90.0}


@dataclass(frozen=True)
class Case:
    name: str
    start: date
    end: date
    customers: str
    root: Path

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def is_targeted(self) -> bool:
        """The size issue 17's target is set for: CDNOW, or the demo's default year."""
        return self.name == "cdnow" or (self.days, self.customers) == (365, "3,000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="the demo's days")
    parser.add_argument("--customers", type=int, default=3000, help="the demo's customers")
    parser.add_argument("--no-cdnow", action="store_true", help="the demo only")
    parser.add_argument("--sequential", action="store_true", help="also one step at a time")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # ROOT START END MODE
    args = parser.parse_args()
    if args.child:
        root, start, end, mode = args.child
        _child(Path(root), date.fromisoformat(start), date.fromisoformat(end), mode == "overlap")
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="backfill-bench-"))
    try:
        rows = []
        for case in _cases(workdir, args):
            modes = ["overlap", "sequential"] if args.sequential else ["overlap"]
            lakes = []
            for mode in modes:
                root = case.root.with_name(f"{case.root.name}-{mode}")
                shutil.rmtree(root, ignore_errors=True)
                shutil.copytree(case.root, root)
                command = [sys.executable, "-m", "bench.backfill_bench", "--child", str(root)]
                command += [case.start.isoformat(), case.end.isoformat(), mode]
                measured = run_measured(command, root / "run.out", root / "state")
                rows.append((case, mode, measured))
                lakes.append(_lake_digest(root / "lake"))
            if len(set(lakes)) != 1:
                sys.exit(f"{case.name}: the two backfills wrote different lakes")
        _print(rows, same_lakes=args.sequential)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _cases(workdir: Path, args: argparse.Namespace) -> list[Case]:
    """Each case's exports, written once under ``workdir`` (not timed)."""
    from pipeline.demo.generate import generate

    demo = workdir / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    generate(demo, start=DEMO_START, days=args.days, customers=args.customers, seed=42)
    end = DEMO_START + timedelta(days=args.days - 1)
    cases = [Case("demo", DEMO_START, end, f"{args.customers:,}", demo)]
    if not args.no_cdnow:
        from pipeline.realdata.cdnow import CALIBRATION_END, FIRST_DAY, prepare_cdnow

        cdnow = workdir / "cdnow"
        shutil.rmtree(cdnow, ignore_errors=True)
        prepare_cdnow(cdnow)
        cases.append(Case("cdnow", FIRST_DAY, CALIBRATION_END, "2,357", cdnow))
    return cases


def _child(root: Path, start: date, end: date, overlap: bool) -> None:
    """The measured backfill, in this (child) process."""
    from pydantic import SecretStr

    from pipeline.config import PathsConfig, Settings
    from pipeline.steps import run_days

    settings = Settings()
    duck = settings.duckdb.model_copy(update={"backfill_overlap": overlap})
    publish = settings.publish.model_copy(update={"key_secret": SecretStr("backfill-bench")})
    paths = PathsConfig.under(root)
    run_days(
        settings.model_copy(update={"paths": paths, "duckdb": duck, "publish": publish}),
        start,
        end,
    )


def _lake_digest(lake: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(lake.rglob("*")):
        if path.is_file() and path.relative_to(lake).parts[0] != "ingest_files":
            digest.update(path.relative_to(lake).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _print(rows: list[tuple[Case, str, Measurement]], *, same_lakes: bool) -> None:
    columns = ("backfill", "days", "customers", "steps", "wall s", "s per day", "CPU s")
    columns += ("peak RSS MB", "target s", "met")
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for case, mode, measured in rows:
        wall = measured.wall_seconds
        target = TARGETS[case.name] if case.is_targeted else None
        judged = "" if target is None else f"{target:.0f} | {'yes' if wall <= target else 'no'}"
        print(
            f"| {case.name} | {case.days} | {case.customers} | {mode} | {wall:.1f} "
            f"| {wall / case.days:.3f} | {measured.cpu_seconds:.1f} "
            f"| {measured.peak_rss_mb:.0f} | {judged or '- | -'} |"
        )
    if same_lakes:
        print("overlapping and sequential backfills wrote the same lake (but the file ledger)")
    print(machine(None, None))


if __name__ == "__main__":
    main()
