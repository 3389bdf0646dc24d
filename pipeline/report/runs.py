"""The run record of a date: how long each step took when the date was last run.

Timings are measured, not derived from the lake, so they are the one part of a report
that a re-run of the steps changes. They live in a record of their own
(``<published>/reports/runs/<D>.json``), which the report reads: rebuilding a report
from the same lake and record gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from pipeline.config import Settings
from pipeline.report.files import read_json, write_json

REPORTS_DIR = "reports"
RUNS_DIR = "runs"


def reports_dir(settings: Settings) -> Path:
    """Where the reports and their index live: beside the published tables."""
    return settings.paths.published / REPORTS_DIR


def run_record_file(settings: Settings, day: date) -> Path:
    return reports_dir(settings) / RUNS_DIR / f"{day.isoformat()}.json"


def record_run(settings: Settings, day: date, seconds: Mapping[str, float]) -> Path:
    """Record the wall time of each step of ``day``'s run (replacing an earlier record).

    Call it after the steps and before ``build_report``; the Airflow DAG can do the same
    with its task durations. Returns the record's path.
    """
    target = run_record_file(settings, day)
    # A list of pairs, not an object: the steps keep the order they ran in.
    steps = [[name, round(float(value), 2)] for name, value in seconds.items()]
    write_json(target, {"as_of_date": day.isoformat(), "seconds": steps})
    return target


def record_step(settings: Settings, day: date, step: str, seconds: float, *, first: bool) -> Path:
    """Record one step of ``day``'s run as it ends (the Airflow tasks, one step each):
    ``first`` starts a new record (the run's first step), else the step is added to the
    record, replacing its earlier figure. Returns the record's path."""
    steps = {} if first else dict(read_run(settings, day) or {})
    steps[step] = seconds
    return record_run(settings, day, steps)


def read_run(settings: Settings, day: date) -> dict[str, float] | None:
    """Seconds per step of ``day``'s recorded run, in the order they ran; None if none."""
    record = read_json(run_record_file(settings, day))
    if not isinstance(record, dict) or not isinstance(record.get("seconds"), list):
        return None
    return {str(name): float(value) for name, value in record["seconds"]}
