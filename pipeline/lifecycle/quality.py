"""Score danger detection against the demo generator's ground truth, and a baseline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline import sql
from pipeline.config import Settings
from pipeline.duck import connect, release
from pipeline.duck import rows as fetch_rows
from pipeline.errors import NotScoredError, PipelineError
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.scoring.inputs import register_parquet
from pipeline.tables import CUSTOMER_LIFECYCLE, DANGER_ALERTS
from pipeline.workspace import workspace

RULES_METHOD = "customer_rules"


@dataclass(frozen=True)
class QualityOptions:
    """How the detection is judged (docs/lifecycle.md explains each default)."""

    # Rules need history to know a rhythm: alerts before this many days are not judged.
    warmup_days: int = 90
    # An episode is counted only when there were this many days left to catch it.
    followup_days: int = 60
    # A churned customer's alert still counts this long after the churn (0: strict).
    grace_days: int = 60
    # The baseline: alert when the days since the last purchase reach this.
    baseline_days: int = 90


@dataclass(frozen=True)
class QualityReport:
    eval_start: date
    eval_end: date
    options: QualityOptions
    methods: list[dict[str, Any]]

    def method(self, name: str) -> dict[str, Any]:
        return next(row for row in self.methods if row["method"].startswith(name))


def detection_quality(
    settings: Settings, truth_dir: Path, options: QualityOptions | None = None
) -> QualityReport:
    """Precision, recall and lead times of the danger alerts and of the baseline.

    Raises:
        PipelineError: the ground truth is missing.
        NotScoredError: no date has been staged.
    """
    options = options or QualityOptions()
    episodes = truth_dir / "dissatisfaction.parquet"
    if not episodes.is_file():
        raise PipelineError(f"no ground truth at {episodes} (the demo generator writes it)")
    lake = Lake(settings.paths.lake)
    staged = lake.partition_dates(CUSTOMER_LIFECYCLE, AS_OF_KEY)
    if not staged:
        raise NotScoredError(f"no {CUSTOMER_LIFECYCLE} in {lake.root}: run the pipeline first")
    eval_start = staged[0] + timedelta(days=options.warmup_days)
    eval_end = staged[-1]
    params = {
        "eval_start": eval_start,
        "eval_end": eval_end,
        "followup_days": options.followup_days,
        "grace_days": options.grace_days,
        "baseline_days": options.baseline_days,
    }
    with workspace(settings.paths.state, "quality", eval_end) as scratch:
        return QualityReport(
            eval_start, eval_end, options, _judge(settings, scratch, lake, staged, episodes, params)
        )


def _judge(
    settings: Settings,
    scratch: Path,
    lake: Lake,
    staged: list[date],
    episodes: Path,
    params: dict[str, Any],
) -> list[dict[str, Any]]:
    con = connect(settings.duckdb, spill_dir=scratch / "spill")
    try:
        register_parquet(con, "episodes", [str(episodes)])
        lifecycle = lake.existing_partitions(CUSTOMER_LIFECYCLE, staged, AS_OF_KEY)
        register_parquet(con, CUSTOMER_LIFECYCLE, [str(path) for path in lifecycle])
        alerts = lake.existing_partitions(DANGER_ALERTS, staged, AS_OF_KEY)
        register_parquet(con, DANGER_ALERTS, [str(path) for path in alerts])
        baseline = sql.relation(con, "quality/baseline_detections", params)
        rules = con.sql(
            "select $method as method, customer_id, as_of_date as alert_date from danger_alerts",
            params={"method": RULES_METHOD},
        )
        rules.union(baseline).create_view("detections", replace=True)
        last = staged[-1]
        con.read_parquet(str(lake.partition_file(CUSTOMER_LIFECYCLE, last, AS_OF_KEY))).project(
            "customer_id, last_purchase_date"
        ).create_view("last_purchases", replace=True)
        relation = sql.relation(con, "quality/detection_quality", params)
        rows = fetch_rows(relation)
    finally:
        release(con)
    return rows
