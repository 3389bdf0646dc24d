"""Time the daily report on a one-year demo: build seconds and page size.

``python -m bench.report_bench --customers 30000 --days 365``

Generates the demo retailer's exports (pipeline/demo), runs ingest, score and lifecycle
for every date (not timed; this takes most of the run), then builds the last date's
report --builds times (3) in this process and prints the wall time of each build, the
page's size and the size of the index. The report reads only aggregates of the lake
(docs/report.md), so its time should barely move with the customers or the history.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from pipeline.config import PathsConfig, Settings
from pipeline.demo.generate import generate
from pipeline.ingest.run import ingest_date
from pipeline.lifecycle.run import stage_date
from pipeline.report import build_report
from pipeline.scoring.run import score_date

START = date(2025, 1, 1)


def prepare(root: Path, customers: int, days: int, seed: int) -> Settings:
    """The demo's exports, and every date ingested, scored and staged."""
    started = time.perf_counter()
    generate(root, start=START, days=days, customers=customers, seed=seed)
    folders = ("incoming", "lake", "state", "published", "models", "alerts")
    paths = PathsConfig(**{folder: root / folder for folder in folders})
    settings = Settings().model_copy(update={"paths": paths})
    for offset in range(days):
        day = START + timedelta(days=offset)
        ingest_date(settings, day)
        score_date(settings, day)
        stage_date(settings, day)
    elapsed = time.perf_counter() - started
    print(f"prepared {days} days for {customers:,} customers in {elapsed:,.0f} s")
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--builds", type=int, default=3)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        settings = prepare(root, args.customers, args.days, args.seed)
        last = START + timedelta(days=args.days - 1)
        for build in range(1, args.builds + 1):
            started = time.perf_counter()
            result = build_report(settings, last)
            seconds = time.perf_counter() - started
            print(
                f"build {build}: {seconds:.2f} s wall, report {result.size_bytes / 1024:,.0f} KB, "
                f"index {result.index_path.stat().st_size / 1024:,.1f} KB, "
                f"{result.headline.customers_scored:,} customers scored, "
                f"{result.headline.customers_known:,} known"
            )
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
