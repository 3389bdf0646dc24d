"""The lake's risk_model table: the risk model in force on a date and how it was judged.

One row per as-of date: the model's version and source (or why the fallback stands in),
its horizon and thresholds, its figures on its own validation cut-off, and the newest
backtest up to the date (``risk_backtest``). Published for BI as ``risk_model``, so an
analyst sees which model scored a day and how often it was right.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.lifecycle.backtest import RISK_BACKTEST
from pipeline.lifecycle.risk import RiskModel

# (column, type, where it comes from: the model's validation figures or the backtest).
_VALIDATION = (
    ("validation_cutoff", pa.date32()),
    ("training_rows", pa.int64()),
    ("validation_rows", pa.int64()),
    ("auc", pa.float64()),
    ("precision_top_10pct", pa.float64()),
    ("brier", pa.float64()),
)
_BASELINES = (
    ("recency_auc", pa.float64()),
    ("frequency_auc", pa.float64()),
    ("bgnbd_expected_purchases_auc", pa.float64()),
)
_BACKTEST = (
    ("risk", "risk_auc", "backtest_risk_auc"),
    ("risk", "recency_auc", "backtest_recency_auc"),
    ("risk", "bgnbd_expected_purchases_auc", "backtest_bgnbd_expected_purchases_auc"),
    ("entries", "danger_entries", "backtest_danger_entries"),
    ("entries", "recency_90_days", "backtest_recency_90_days"),
)


def risk_model_row(settings: Settings, day: date, model: RiskModel) -> pa.Table:
    """The one row of ``day``'s risk_model partition."""
    figures = model.figures
    row: dict[str, tuple[Any, pa.DataType]] = {
        "as_of_date": (day, pa.date32()),
        "model_version": (model.version, pa.date32()),
        "risk_source": (model.source, pa.string()),
        "fallback_reason": (model.reason or None, pa.string()),
        "horizon_days": (model.horizon_days, pa.int32()),
        "population_gap_days": (model.population_gap_days, pa.float64()),
        "danger_risk": (model.danger_risk, pa.float64()),
        "danger_exit_risk": (model.danger_exit_risk, pa.float64()),
        "termination_risk": (model.termination_risk, pa.float64()),
    }
    for name, kind in _VALIDATION:
        value = figures.get(name)
        row[name] = (date.fromisoformat(value) if kind == pa.date32() and value else value, kind)
    baselines = figures.get("baselines", {})
    for name, kind in _BASELINES:
        row[f"validation_{name}"] = (baselines.get(name), kind)
    row |= _backtest(settings, day)
    return pa.table({name: pa.array([value], kind) for name, (value, kind) in row.items()})


def _backtest(settings: Settings, day: date) -> dict[str, tuple[Any, pa.DataType]]:
    """The newest backtest up to ``day``: its date, cut-off and headline figures."""
    lake = Lake(settings.paths.lake)
    dates = [d for d in lake.partition_dates(RISK_BACKTEST, AS_OF_KEY) if d <= day]
    row: dict[str, tuple[Any, pa.DataType]] = {
        "backtest_date": (dates[-1] if dates else None, pa.date32()),
        "backtest_cutoff": (None, pa.date32()),
    }
    values: dict[tuple[str, str, str], float | None] = {}
    if dates:
        # A few dozen rows: read directly (a DuckDB database costs 16 ms to open).
        records = pq.read_table(
            lake.partition_file(RISK_BACKTEST, dates[-1], AS_OF_KEY)
        ).to_pylist()
        if records:
            row["backtest_cutoff"] = (records[0]["cutoff_date"], pa.date32())
        values = {(r["section"], r["name"], r["metric"]): r["value"] for r in records}
    for section, name, column in _BACKTEST:
        if section == "risk":
            row[column] = (values.get((section, name, "value")), pa.float64())
        else:
            row[f"{column}_precision"] = (values.get((section, name, "precision")), pa.float64())
            row[f"{column}_recall"] = (values.get((section, name, "recall")), pa.float64())
    return row
