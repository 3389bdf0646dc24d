"""Judge what the pipeline said on a past date by what customers did next.

``rfm-pipeline backtest --date D``: with H the horizon of the risk model in force on D,
the cut-off C = D - H is the newest date whose outcome is fully known by D. On C's
``customer_lifecycle`` partition (the risks and stages exactly as the daily run wrote
them, with the model then in force), it measures:

- the risk's AUC, precision in the riskiest tenth, and calibration (risk deciles);
- the repurchase rate within H by stage;
- danger entries of the ``entry_window_days`` up to C: how many did not buy within H
  (precision), how many of the customers lost by C were alerted (recall), and how many
  days ahead of a fixed silence rule;

next to baselines computed in the same run: recency alone, frequency alone, BG/NBD
expected purchases (as published on C) and the fixed 90-day silence rule. The figures
land in the lake table ``risk_backtest`` (partition D) and in the daily report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from pipeline import seeds, sql
from pipeline.config import Settings
from pipeline.declarations import build_intermediate
from pipeline.duck import connect, release
from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, Lake, write_partition
from pipeline.lifecycle import judge
from pipeline.lifecycle.risk import RiskStore
from pipeline.scoring.inputs import date_range, register_parquet
from pipeline.workspace import scratch_dir

RISK_BACKTEST = "risk_backtest"
ACTIVE_STAGES = seeds.active_stages()
# Stages in the documented order of the chance to come back, highest first.
STAGE_ORDER = seeds.stages_by_return()


@dataclass(frozen=True)
class BacktestReport:
    as_of_date: date
    cutoff: date
    horizon_days: int
    model_version: date
    risk_source: str
    figures: dict[str, Any]
    stages: list[dict[str, Any]]
    entries: list[dict[str, Any]]


def backtest(settings: Settings, day: date, entry_window_days: int = 90) -> BacktestReport:
    """Judge the risks and stages of ``day`` minus the horizon; write ``risk_backtest``.

    Raises:
        NotScoredError: no risk model, or the cut-off date was not staged.
    """
    lake = Lake(settings.paths.lake)
    store = RiskStore(settings.paths.models)
    stored = store.newest_on_or_before(day)
    if stored is None:
        raise NotScoredError(f"no risk model on or before {day}: run the lifecycle first")
    model = stored.model
    horizon = model.horizon_days
    cutoff = day - timedelta(days=horizon)
    judged = lake.partition_file("customer_lifecycle", cutoff, AS_OF_KEY)
    if not judged.is_file():
        raise NotScoredError(
            f"backtest of {day} judges {cutoff} ({horizon} days before, the horizon), "
            f"which has no customer_lifecycle partition"
        )
    params = {
        "cutoff_date": cutoff,
        "known_by": day,
        "horizon_days": horizon,
        "entry_window_days": entry_window_days,
        "baseline_days": judge.BASELINE_SILENCE_DAYS,
    }
    with scratch_dir(settings.paths.state, "backtest", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            register_parquet(con, "judged_lifecycle", [str(judged)])
            days_files = [
                str(path)
                for path in lake.existing_partitions(
                    "customer_days", lake.partition_dates("customer_days")
                )
                if path.parent.name <= f"export_date={day.isoformat()}"
            ]
            register_parquet(con, "customer_days", days_files)
            build_intermediate(con, settings, "lifecycle/int_purchase_days", {"known_by": day})
            customers = sql.relation(con, "backtest/backtest_customers", params).to_arrow_table()
            window = date_range(cutoff - timedelta(days=entry_window_days - 1), cutoff)
            alerts = lake.existing_partitions("danger_alerts", window, AS_OF_KEY)
            if alerts:
                con.read_parquet([str(path) for path in alerts], hive_partitioning=True).project(
                    "customer_id, as_of_date as entry_date"
                ).create_view("danger_entries", replace=True)
            else:
                con.execute(
                    "create or replace temp view danger_entries as select"
                    " null::varchar as customer_id, null::date as entry_date where false"
                )
            entries = sql.relation(con, "backtest/backtest_entries", params).to_arrow_table()
            start = lake.partition_file(
                "customer_lifecycle", cutoff - timedelta(days=entry_window_days), AS_OF_KEY
            )
            active: set[str] = set()
            if start.is_file():
                rows = con.execute(
                    "select customer_id from read_parquet($file)"
                    " where list_contains($stages, stage)",
                    {"file": str(start), "stages": list(ACTIVE_STAGES)},
                ).fetchall()
                active = {customer for (customer,) in rows}
        finally:
            release(con)
    report = _judge(day, cutoff, model.version, model.source, horizon, customers, entries, active)
    _write(settings, report)
    return report


def _judge(
    day: date,
    cutoff: date,
    version: date,
    source: str,
    horizon: int,
    customers: pa.Table,
    entries: pa.Table,
    active: set[str],
) -> BacktestReport:
    frame = customers.to_pandas()
    lost = frame["no_purchase"].to_numpy(dtype=np.int64)
    risk = frame["risk"].to_numpy(dtype=np.float64)
    expected = frame["expected_purchases"].to_numpy(dtype=np.float64, na_value=np.nan)
    silence = frame["days_since_last_purchase"].to_numpy(dtype=np.float64)
    top = max(1, round(judge.TOP_SHARE * len(risk)))
    order = np.argsort(-risk, kind="stable")
    figures: dict[str, Any] = {
        "customers": len(frame),
        "no_purchase_share": round(float(lost.mean()), 4) if len(lost) else None,
        "risk_auc": judge.auc(risk, lost),
        "risk_precision_top_10pct": round(float(lost[order[:top]].mean()), 4)
        if len(lost)
        else None,
        "recency_auc": judge.auc(silence, lost),
        "frequency_auc": judge.auc(-frame["window_purchase_days"].to_numpy(np.float64), lost),
        "bgnbd_expected_purchases_auc": (
            judge.auc(-expected, lost) if np.isfinite(expected).all() else None
        ),
        "calibration": judge.calibration(risk, lost) if len(lost) else [],
    }
    stages = []
    for stage in STAGE_ORDER:
        members = frame[frame["stage"] == stage]
        if len(members):
            stages.append(
                {
                    "stage": stage,
                    "customers": len(members),
                    "repurchase_rate": round(1 - float(members["no_purchase"].mean()), 4),
                    "mean_risk": round(float(members["risk"].mean()), 4),
                }
            )
    recent = frame[frame["danger_entered_on"].notna()]
    recent = recent[recent["danger_entered_on"] > cutoff - timedelta(days=90)]
    if len(recent):
        stages.append(
            {
                "stage": "entered danger in the last 90 days",
                "customers": len(recent),
                "repurchase_rate": round(1 - float(recent["no_purchase"].mean()), 4),
                "mean_risk": round(float(recent["risk"].mean()), 4),
            }
        )
    lost_customers = set(
        frame.loc[frame["no_purchase"] & frame["customer_id"].isin(active), "customer_id"]
    )
    found = entries.to_pandas()
    rows = []
    for method, alarms in found.groupby("method", sort=True):
        caught = lost_customers & set(alarms["customer_id"])
        rows.append(
            {
                "method": method,
                "entries": len(alarms),
                "precision": round(float(alarms["no_purchase"].mean()), 4),
                "recall": round(len(caught) / len(lost_customers), 4) if lost_customers else None,
                "median_days_ahead_of_baseline": float(alarms["days_ahead_of_baseline"].median()),
            }
        )
    return BacktestReport(day, cutoff, horizon, version, source, figures, stages, rows)


def _write(settings: Settings, report: BacktestReport) -> None:
    """One row per figure: (section, name, metric, value), partition as_of_date = D."""
    sections: list[tuple[str, str, str, float | None]] = []
    for name, value in report.figures.items():
        if isinstance(value, int | float) or value is None:
            sections.append(("risk", name, "value", None if value is None else float(value)))
    for row in report.figures.get("calibration", []):
        label = f"{row['risk_from']:.1f}-{row['risk_to']:.1f}"
        sections.append(("calibration", label, "customers", float(row["customers"])))
        sections.append(("calibration", label, "mean_risk", float(row["mean_risk"])))
        sections.append(
            ("calibration", label, "no_purchase_share", float(row["no_purchase_share"]))
        )
    for row in report.stages:
        for metric in ("customers", "repurchase_rate", "mean_risk"):
            sections.append(("stage", row["stage"], metric, float(row[metric])))
    for row in report.entries:
        for metric in ("entries", "precision", "recall", "median_days_ahead_of_baseline"):
            value = row[metric]
            sections.append(
                ("entries", row["method"], metric, None if value is None else float(value))
            )
    table = pa.table(
        {
            "cutoff_date": pa.array([report.cutoff] * len(sections), pa.date32()),
            "horizon_days": pa.array([report.horizon_days] * len(sections), pa.int32()),
            "model_version": pa.array([report.model_version] * len(sections), pa.date32()),
            "risk_source": pa.array([report.risk_source] * len(sections), pa.string()),
            "section": pa.array([row[0] for row in sections], pa.string()),
            "name": pa.array([row[1] for row in sections], pa.string()),
            "metric": pa.array([row[2] for row in sections], pa.string()),
            "value": pa.array([row[3] for row in sections], pa.float64()),
        }
    )
    lake = Lake(settings.paths.lake)
    con = duckdb.connect()
    try:
        write_partition(
            con.from_arrow(table), lake.partition_file(RISK_BACKTEST, report.as_of_date, AS_OF_KEY)
        )
    finally:
        con.close()
