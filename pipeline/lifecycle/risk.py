"""Each customer's risk of not buying again within a horizon, learned from the lake.

The model is fitted on the model schedule (``lifecycle.refit_every_days``) by
backtesting the retailer's own history: at past cut-off dates D' <= D - H, every
customer's features as of D' (``sql/lifecycle/lifecycle_features.sql`` on the segments
of D', the same query the daily step runs) are labelled with whether they bought in
(D', D' + H] (``sql/lifecycle/risk_labels.sql``). A gradient-boosted classifier with
monotone constraints (more silence never lowers the risk, more purchases never raise
it), calibrated by isotonic regression, is fitted on the older cut-offs and judged on
the newest one; the danger and termination thresholds are chosen on that judgement to
meet the configured precisions; then the model is refitted on every cut-off, the
newest included, for use.

With too little history to backtest (a young lake), the risk falls back to the rhythm
percentile (the share of the customer's gaps shorter than the current silence), with
fixed documented thresholds; ``risk_source`` says which one a row used.

Versions live in the model store (:mod:`pipeline.model_store`) under
``paths.models/risk/version=YYYY-MM-DD/``: ``model.json`` (the horizon, thresholds,
figures), ``estimator.pkl`` (the classifier) and ``gap_curve.parquet`` (the rhythm). A
date uses the newest version on or before it, so re-running a date reads the same model
and writes the same bytes.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.declarations import build_intermediate, input_dates
from pipeline.duck import connect, count_rows, release
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.lifecycle import recent
from pipeline.lifecycle import rhythm as rhythm_model
from pipeline.lifecycle.tree_paths import Thresholds, distinct_paths, split_thresholds
from pipeline.model_store import VersionedStore, refit_due
from pipeline.tables import CUSTOMER_DAYS, CUSTOMER_SEGMENTS
from pipeline.threads import one_openmp_thread, openmp_threads_for
from pipeline.workspace import workspace

log = logging.getLogger(__name__)

Source = Literal["model", "rhythm_fallback"]
MODEL_FILE = "model.json"
ESTIMATOR_FILE = "estimator.pkl"
CURVE_FILE = "gap_curve.parquet"
# Feature name -> monotone direction of the risk (+1 rises with it, -1 falls, 0 free).
FEATURES: dict[str, int] = {
    "days_since_last_purchase": 1,
    "window_purchase_days": -1,
    "log_window_net_amount": -1,
    "recent_purchase_days": -1,
    "silence_in_gaps": 1,
    "rhythm_percentile": 1,
    "returned_after_last_purchase": 1,
    "recent_return_share": 1,
}


@dataclass(frozen=True)
class RiskModel:
    """The risk model in force: its horizon, thresholds and how it was judged."""

    version: date
    source: Source
    horizon_days: int
    population_gap_days: float
    danger_risk: float
    danger_exit_risk: float
    termination_risk: float
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    estimator: Any = None

    def sql_params(self) -> dict[str, Any]:
        return {
            "horizon_days": self.horizon_days,
            "population_gap_days": self.population_gap_days,
            "danger_risk": self.danger_risk,
            "danger_exit_risk": self.danger_exit_risk,
            "termination_risk": self.termination_risk,
            "risk_source": self.source,
        }

    def predict(self, features: pa.Table) -> npt.NDArray[np.float64]:
        """The risk of each row of a lifecycle_features table."""
        if self.source == "rhythm_fallback" or self.estimator is None:
            return np.asarray(
                features.column("rhythm_percentile").to_numpy(zero_copy_only=False),
                dtype=np.float64,
            )
        if features.num_rows == 0:
            return np.zeros(0, dtype=np.float64)
        matrix = feature_matrix(features)
        # Customers no split tells apart get the same risk: apply the model once to
        # each such group (exact; pipeline/lifecycle/tree_paths.py).
        groups = None if self._thresholds is None else distinct_paths(self._thresholds, matrix)
        if groups is None:
            with openmp_threads_for(len(matrix)):
                return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)
        first, group = groups
        with openmp_threads_for(len(first)):
            proba = self.estimator.predict_proba(matrix[first])[:, 1]
        return np.asarray(proba, dtype=np.float64)[group]

    @cached_property
    def _thresholds(self) -> Thresholds | None:
        return split_thresholds(self.estimator, len(FEATURES))


def feature_matrix(features: pa.Table) -> npt.NDArray[np.float64]:
    """The model's inputs, one column per FEATURES entry, from lifecycle_features rows."""

    def column(name: str) -> npt.NDArray[np.float64]:
        # Cast in Arrow: a DECIMAL column would become one Python object per row.
        values = pc.cast(features.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)

    sale = column("recent_sale_amount")
    derived = {
        "log_window_net_amount": np.log1p(np.maximum(column("window_net_amount"), 0.0)),
        "recent_return_share": np.divide(
            column("recent_returned_amount"), sale, out=np.zeros_like(sale), where=sale > 0
        ),
    }
    return np.column_stack(
        [derived[name] if name in derived else column(name) for name in FEATURES]
    )


@dataclass(frozen=True)
class RiskVersion:
    """One stored version: the risk model and the gap curve of the rhythm fitted with it."""

    model: RiskModel
    curve: pa.Table

    @property
    def version(self) -> date:
        return self.model.version


class RiskStore(VersionedStore[RiskVersion]):
    """Fitted versions under ``paths.models/risk``: ``model.json`` (every version has
    it), ``estimator.pkl`` (a fitted classifier only) and ``gap_curve.parquet``."""

    kind = "risk"
    marker = MODEL_FILE
    title = "risk"

    def write(self, model: RiskVersion, folder: Path) -> None:
        pq.write_table(model.curve, folder / CURVE_FILE)
        risk = model.model
        if risk.estimator is not None:
            (folder / ESTIMATOR_FILE).write_bytes(pickle.dumps(risk.estimator))
        meta = asdict(risk) | {"version": risk.version.isoformat()}
        meta.pop("estimator")
        text = json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n"
        (folder / MODEL_FILE).write_bytes(text.encode("utf-8"))

    def read(self, folder: Path, version: date) -> RiskVersion:
        meta = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        estimator = None
        if meta["source"] == "model":
            with (folder / ESTIMATOR_FILE).open("rb") as handle:
                estimator = pickle.load(handle)  # the pipeline's own file
        model = RiskModel(
            version=date.fromisoformat(meta["version"]),
            source=meta["source"],
            horizon_days=int(meta["horizon_days"]),
            population_gap_days=float(meta["population_gap_days"]),
            danger_risk=float(meta["danger_risk"]),
            danger_exit_risk=float(meta["danger_exit_risk"]),
            termination_risk=float(meta["termination_risk"]),
            figures=meta["figures"],
            reason=meta["reason"],
            estimator=estimator,
        )
        return RiskVersion(model, pq.read_table(folder / CURVE_FILE))


def risk_model_in_force(settings: Settings, day: date, alive: Any) -> tuple[RiskModel, pa.Table]:
    """The newest version on or before ``day``, or a new fit when one is due
    (``lifecycle.refit_every_days``).

    ``alive`` is the BTYD model in force (or None): the backtest's BG/NBD baseline.
    """
    store = RiskStore(settings.paths.models)
    current = store.newest_version_on_or_before(day)
    if current is not None and not refit_due(current, day, settings.lifecycle.refit_every_days):
        stored = store.load(current)
    else:
        stored = RiskVersion(*fit(settings, day, alive))
        store.save(stored)
    return stored.model, stored.curve


def fit(settings: Settings, day: date, alive: Any) -> tuple[RiskModel, pa.Table]:
    """Fit the rhythm and the risk model as of ``day`` from the lake's history.

    It reads every purchase day up to ``day``, so its DuckDB connection is bounded like
    every step's (``[duckdb]`` memory limit, a scratch folder of its own to spill to).
    """
    with workspace(settings.paths.state, "risk-fit", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            return _fit(con, settings, day, alive)
        finally:
            release(con)


def _fit(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date, alive: Any
) -> tuple[RiskModel, pa.Table]:
    rules = settings.lifecycle
    lake = Lake(settings.paths.lake)
    rhythm = _fit_rhythm(con, settings, day)
    curve = rhythm.curve_table()
    con.register("gap_curve", curve)
    horizon = (
        rules.horizon_days
        if rules.horizon_days > 0
        else rhythm_model.horizon_days(rhythm, rules.horizon_gap_multiple)
    )
    fallback = RiskModel(
        version=day,
        source="rhythm_fallback",
        horizon_days=horizon,
        population_gap_days=rhythm.population_gap_days,
        danger_risk=rules.fallback_danger_percentile,
        danger_exit_risk=max(rules.fallback_danger_percentile - rules.danger_exit_margin, 0),
        termination_risk=rules.fallback_termination_percentile,
        figures=_rhythm_figures(rhythm),
    )
    cutoffs = _cutoffs(settings, lake, day, horizon)
    if len(cutoffs) < 2:
        reason = (
            f"too little history to backtest a {horizon}-day horizon: "
            f"{len(cutoffs)} cut-off date(s) with their outcome known by {day}, 2 needed"
        )
        log.warning("risk model %s: %s; the rhythm percentile stands in", day, reason)
        return _with(fallback, reason=reason), curve
    per_cutoff = max(1, rules.sample_size // len(cutoffs))
    samples = [_sample(con, settings, cutoff, per_cutoff) for cutoff in cutoffs]
    _read_cutoff_days(con, settings, day, horizon, cutoffs, samples)
    examples = [
        _examples(con, settings, cutoff, day, horizon, rhythm, per_cutoff, sample, SHARED_DAYS)
        for cutoff, sample in zip(cutoffs, samples, strict=True)
    ]
    return _fit_classifier(settings, fallback, cutoffs, examples, alive), curve


def _with(model: RiskModel, **changes: Any) -> RiskModel:
    return RiskModel(**(asdict(model) | {"estimator": model.estimator} | changes))


def _fit_rhythm(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date
) -> rhythm_model.Rhythm:
    rules = settings.lifecycle
    # Registers customer_days: every export up to the date (a declared lake input).
    build_intermediate(con, settings, "lifecycle/int_purchase_days", {"known_by": day})
    customers = con.execute(
        "select count(distinct customer_id) from customer_days where export_date <= $day",
        {"day": day},
    ).fetchall()[0][0]
    buckets = min(1000, max(1, math.ceil(1000 * rules.sample_size / max(customers, 1))))
    build_intermediate(
        con, settings, "lifecycle/purchase_gaps", {"as_of_date": day, "sample_buckets": buckets}
    )
    gaps = con.table("purchase_gaps").to_arrow_table()
    if gaps.num_rows == 0:
        raise ValueError(f"no purchase day up to {day}")
    return rhythm_model.estimate(
        gaps.column("customer_id").to_numpy(zero_copy_only=False),
        gaps.column("stratum").to_numpy(zero_copy_only=False),
        gaps.column("gap_days").to_numpy(zero_copy_only=False),
        gaps.column("event").to_numpy(zero_copy_only=False),
        prior_gaps=rules.prior_gaps,
        fallback_gap_days=float(settings.scoring.window_days),
    )


def _rhythm_figures(rhythm: rhythm_model.Rhythm) -> dict[str, Any]:
    second = rhythm.second_purchase
    return {
        "population_gap_days": round(rhythm.population_gap_days, 2),
        "population_gap_is_censored": rhythm.median_is_censored,
        "second_purchase_share_by_follow_up": round(second.ended_share, 4),
        "second_purchase_median_wait_days": second.conditional_quantile(0.5),
        "second_purchase_wait_p80_days": second.conditional_quantile(0.8),
    }


def _cutoffs(settings: Settings, lake: Lake, day: date, horizon: int) -> list[date]:
    """Past dates whose outcome over the horizon is known by ``day``, newest first.

    Each needs its customer_segments partition and at least ``horizon`` days of history
    before it (a customer's rhythm needs time to show).
    """
    rules = settings.lifecycle
    scored = set(lake.partition_dates(CUSTOMER_SEGMENTS, AS_OF_KEY))
    history = lake.partition_dates(CUSTOMER_DAYS)
    if not scored or not history:
        return []
    first = history[0]
    step = rules.backtest_step_days or max(7, math.ceil(horizon / 8))
    cutoffs: list[date] = []
    cutoff = day - timedelta(days=horizon)
    while len(cutoffs) < rules.backtest_cutoffs and cutoff - first >= timedelta(days=horizon):
        if cutoff in scored:
            cutoffs.append(cutoff)
        cutoff -= timedelta(days=step)
    return cutoffs


def build_features(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    population_gap_days: float,
    *,
    customers: str | None = None,
    registered: Collection[str] = (),
) -> None:
    """The temporary table lifecycle_features as of ``day`` (``gap_curve`` registered;
    the date's segments are its declared lake input): the declared configuration, the
    date and the shop's gap (the rhythm model's). With ``customers`` (a registered
    table), for those customers only; ``registered`` names the inputs the caller has
    registered (:func:`pipeline.declarations.build_intermediate`): the daily step's
    ``recent_activity`` (its kept state), or else it is counted here from the window's
    customer days (also among ``registered`` when the caller read them)."""
    if recent.TABLE not in registered:
        recent.build_as_of(con, settings, day, customers=customers, registered=registered)
    build_intermediate(
        con,
        settings,
        "lifecycle/lifecycle_features",
        {"as_of_date": day, "population_gap_days": population_gap_days},
        customers=customers,
        registered=registered,
    )


# The lake input the cut-offs' features and labels share: read once for all of them.
SHARED_DAYS = ("customer_days",)


def _sample(
    con: duckdb.DuckDBPyConnection, settings: Settings, cutoff: date, per_cutoff: int
) -> str | None:
    """The cut-off's sample of customers, a temporary table of its own; None when the
    cut-off knows no more customers than its share of the sample (all of them)."""
    segments = Lake(settings.paths.lake).partition_file(CUSTOMER_SEGMENTS, cutoff, AS_OF_KEY)
    if count_rows(con, segments) <= per_cutoff:
        return None
    build_intermediate(
        con,
        settings,
        "lifecycle/backtest_sample",
        {"as_of_date": cutoff, "sample_rows": per_cutoff},
    )
    name = f"backtest_sample_{cutoff:%Y%m%d}"
    con.execute(f"alter table backtest_sample rename to {name}")  # kept beside the others
    return name


def _read_cutoff_days(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    horizon: int,
    cutoffs: list[date],
    samples: list[str | None],
) -> None:
    """customer_days for every cut-off at once: a table of the partitions their
    features and labels declare (the union of their windows), for the customers they
    read (each cut-off's sample, or all its customers when it is not sampled: never
    more than the sample size), read once instead of once per cut-off and query.

    Each query keeps its own window by its date filters, which select the same rows
    from the union as from its declared partitions: a customer day is exported on its
    activity day or up to ``late_span_days`` later (customer_days' declared test), and
    the windows are declared that way.
    """
    lake = Lake(settings.paths.lake)
    wanted: set[date] = set()
    customers: duckdb.DuckDBPyRelation | None = None
    for cutoff, sample in zip(cutoffs, samples, strict=True):
        labels = {"cutoff_date": cutoff, "horizon_days": horizon, "known_by": day}
        wanted.update(recent.window_dates(settings, cutoff))
        wanted.update(
            input_dates(settings, "lifecycle/risk_labels", "customer_days", cutoff, labels)
        )
        segments = lake.partition_file(CUSTOMER_SEGMENTS, cutoff, AS_OF_KEY)
        known = con.table(sample) if sample else con.read_parquet(str(segments))
        ids = known.select("customer_id")
        customers = ids if customers is None else customers.union(ids)
    assert customers is not None
    files = lake.existing_partitions(CUSTOMER_DAYS, sorted(wanted))
    days = con.read_parquet(
        [str(path) for path in files], hive_partitioning=True, union_by_name=True
    )
    # A table in the fit connection's own scratch database, gone when it is released.
    days.join(customers, "customer_id", how="semi").create("cutoff_customer_days")
    con.execute("create or replace temp view customer_days as select * from cutoff_customer_days")


def _examples(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cutoff: date,
    day: date,
    horizon: int,
    rhythm: rhythm_model.Rhythm,
    per_cutoff: int,
    sample: str | None,
    registered: Collection[str] = (),
) -> pa.Table:
    """One cut-off's sample of customers (``sample``, or all): features as of the
    cut-off, and what they did next. ``registered``: the lake inputs already registered
    (the fit's :data:`SHARED_DAYS`), or none (each read from its declared partitions)."""
    build_features(
        con, settings, cutoff, rhythm.population_gap_days, customers=sample, registered=registered
    )
    con.execute("create or replace temp view cutoff_customers as select * from lifecycle_features")
    build_intermediate(
        con,
        settings,
        "lifecycle/risk_labels",
        {"cutoff_date": cutoff, "horizon_days": horizon, "known_by": day},
        customers=sample,
        registered=registered,
    )
    return con.sql(
        """
        select lifecycle_features.*, risk_labels.no_purchase
        from lifecycle_features
        inner join risk_labels using (customer_id)
        order by hash(customer_id, $cutoff), customer_id
        limit $rows
        """,
        params={"cutoff": cutoff, "rows": per_cutoff},
    ).to_arrow_table()


def _fit_classifier(
    settings: Settings,
    fallback: RiskModel,
    cutoffs: list[date],
    examples: list[pa.Table],
    alive: Any,
) -> RiskModel:
    """Fit on the older cut-offs and judge on the newest (thresholds, figures); then
    refit on every cut-off for use."""
    rules = settings.lifecycle
    valid, train = examples[0], pa.concat_tables(examples[1:])
    y_train = _labels(train)
    y_valid = _labels(valid)
    problem = _too_few(y_train, "training") or _too_few(y_valid, "validation")
    if problem:
        log.warning("risk model %s: %s; the rhythm percentile stands in", fallback.version, problem)
        return _with(fallback, reason=problem)
    # One thread: the training sets are small (a sample), and OpenMP threads fighting
    # over busy cores cost more than they bring.
    with one_openmp_thread():
        judged = _classifier(settings, len(y_train)).fit(feature_matrix(train), y_train)
    with openmp_threads_for(len(y_valid)):
        predicted = judged.predict_proba(feature_matrix(valid))[:, 1]
    danger = _threshold(predicted, y_valid, rules.danger_target_precision)
    termination = max(_threshold(predicted, y_valid, rules.termination_target_precision), danger)
    figures = fallback.figures | {
        "horizon_days": fallback.horizon_days,
        "cutoffs": [cutoff.isoformat() for cutoff in cutoffs],
        "validation_cutoff": cutoffs[0].isoformat(),
        "training_rows": len(y_train),
        "validation_rows": len(y_valid),
        "validation_no_purchase_share": round(float(y_valid.mean()), 4),
    }
    from pipeline.lifecycle.judge import judge_scores  # sklearn metrics: imported when used

    figures |= judge_scores(predicted, y_valid, valid, fallback.horizon_days, alive, danger)
    # Judged, it is refitted on every cut-off: the newest is the closest to today.
    with one_openmp_thread():
        final = _classifier(settings, len(y_train) + len(y_valid)).fit(
            np.vstack([feature_matrix(train), feature_matrix(valid)]),
            np.concatenate([y_train, y_valid]),
        )
    return _with(
        fallback,
        source="model",
        danger_risk=round(danger, 6),
        danger_exit_risk=round(max(danger - rules.danger_exit_margin, 0.0), 6),
        termination_risk=round(termination, 6),
        figures=figures,
        estimator=final,
    )


def _labels(table: pa.Table) -> npt.NDArray[np.int64]:
    values = table.column("no_purchase").to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.int64)


def _too_few(labels: npt.NDArray[np.int64], name: str, minimum: int = 20) -> str | None:
    lost, kept = int(labels.sum()), int(len(labels) - labels.sum())
    if min(lost, kept) < minimum:
        return (
            f"the {name} set has {lost} customers who did not buy again and {kept} who did;"
            f" at least {minimum} of each are needed"
        )
    return None


def _classifier(settings: Settings, rows: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    booster = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=max(50, rows // 1000),
        l2_regularization=1.0,
        monotonic_cst=list(FEATURES.values()),
        early_stopping=False,
        random_state=settings.clusters.seed,
    )
    # The three calibrated boosters of the folds, averaged: on CDNOW they rank better than
    # one booster with one isotonic map (AUC 0.781 against 0.777 on the holdout), at
    # three times the cost of applying it (docs/benchmarks.md).
    return CalibratedClassifierCV(booster, method="isotonic", cv=3)


def _threshold(
    predicted: npt.NDArray[np.float64], lost: npt.NDArray[np.int64], precision: float
) -> float:
    """The lowest risk at which customers reaching it did not buy, with ``precision``.

    A customer enters danger when their risk crosses the threshold, so what counts is
    the outcome of customers *at* the threshold, not of everyone above it. On the
    validation cut-off, the share who did not buy is smoothed into a non-decreasing
    function of the risk (isotonic regression); the threshold is the lowest risk where
    it reaches ``precision``. 1.0 (nobody) if it never does.
    """
    from sklearn.isotonic import IsotonicRegression

    smoothed = IsotonicRegression(out_of_bounds="clip").fit(predicted, lost)
    candidates = np.unique(predicted)
    reached = np.flatnonzero(smoothed.predict(candidates) >= precision)
    return float(candidates[reached[0]]) if len(reached) else 1.0
