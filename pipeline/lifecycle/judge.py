"""How well a risk score ranks and is calibrated, next to the baselines it must beat.

Used when a risk model is fitted (judged on its validation cut-off) and by the backtest
command (judging what the pipeline said on a past date against what happened after).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import brier_score_loss, roc_auc_score

from pipeline.lifecycle import alive
from pipeline.lifecycle.alive import AliveModel

# The fixed rule the learned thresholds are compared with.
BASELINE_SILENCE_DAYS = 90
TOP_SHARE = 0.1
Array = npt.NDArray[np.float64]


def column(table: pa.Table, name: str) -> npt.NDArray[np.float64]:
    """A column as doubles (cast in Arrow: DECIMAL would give a Python object per row)."""
    values = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def auc(score: npt.ArrayLike, lost: npt.ArrayLike) -> float | None:
    """ROC AUC of ``score`` as a prediction of ``lost`` (None if one class is missing)."""
    outcome = np.asarray(lost)
    if outcome.min(initial=1) == outcome.max(initial=0):
        return None
    return round(float(roc_auc_score(outcome, np.asarray(score, dtype=np.float64))), 4)


def _observation(table: pa.Table) -> tuple[Array, Array, Array]:
    """(frequency, recency, T) in days, as the BTYD models observe each customer."""
    tx = np.maximum(column(table, "observed_span_days"), 0.0)
    return column(table, "observed_gaps"), tx, np.maximum(column(table, "observed_days"), tx)


def expected_purchases(
    model: AliveModel | None, table: pa.Table, horizon_days: int
) -> npt.NDArray[np.float64] | None:
    """The BTYD model's expected purchases within the horizon, per lifecycle_features row."""
    if model is None:
        return None
    return alive.expected_purchases(model, *_observation(table), horizon_days)


def p_alive(model: AliveModel | None, table: pa.Table) -> npt.NDArray[np.float64] | None:
    if model is None:
        return None
    return alive.p_alive(model, *_observation(table))


def judge_scores(
    risk: npt.NDArray[np.float64],
    lost: npt.NDArray[np.int64],
    features: pa.Table,
    horizon_days: int,
    model: AliveModel | None,
    danger_risk: float,
) -> dict[str, Any]:
    """AUC, precision at the top, calibration and the baselines, on one set of customers."""
    silence = column(features, "days_since_last_purchase")
    top = max(1, round(TOP_SHARE * len(risk)))
    order = np.argsort(-risk, kind="stable")
    flagged = risk >= danger_risk
    rule = silence >= BASELINE_SILENCE_DAYS
    expected = expected_purchases(model, features, horizon_days)
    figures: dict[str, Any] = {
        "auc": auc(risk, lost),
        "precision_top_10pct": round(float(lost[order[:top]].mean()), 4),
        "brier": round(float(brier_score_loss(lost, risk)), 4),
        "at_danger_threshold": _rule_figures(flagged, lost),
        "calibration": calibration(risk, lost),
        "baselines": {
            "recency_auc": auc(silence, lost),
            "frequency_auc": auc(-column(features, "window_purchase_days"), lost),
            "bgnbd_expected_purchases_auc": None if expected is None else auc(-expected, lost),
            f"recency_{BASELINE_SILENCE_DAYS}_days": _rule_figures(rule, lost),
        },
    }
    return figures


def _rule_figures(flagged: npt.NDArray[np.bool_], lost: npt.NDArray[np.int64]) -> dict[str, Any]:
    hits = int((flagged & (lost == 1)).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": round(hits / int(flagged.sum()), 4) if flagged.any() else None,
        "recall": round(hits / int(lost.sum()), 4) if lost.any() else None,
    }


def calibration(
    risk: npt.NDArray[np.float64], lost: npt.NDArray[np.int64], bins: int = 10
) -> list[dict[str, Any]]:
    """Mean predicted risk against the observed share who did not buy, per risk decile."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(risk, edges[1:-1]), 0, bins - 1)
    rows = []
    for index in range(bins):
        members = which == index
        if members.any():
            rows.append(
                {
                    "risk_from": round(float(edges[index]), 2),
                    "risk_to": round(float(edges[index + 1]), 2),
                    "customers": int(members.sum()),
                    "mean_risk": round(float(risk[members].mean()), 4),
                    "no_purchase_share": round(float(lost[members].mean()), 4),
                }
            )
    return rows
