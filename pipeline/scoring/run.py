"""Score one as-of date: customer state, clusters, segments and their summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Settings
from pipeline.declarations import build_intermediate, run_model
from pipeline.duck import connect, count_rows, one_row, release, rows
from pipeline.lake import Lake, write_partition
from pipeline.scoring.clusters import ClusterModel, ClusterStore, fit_model, fit_sample
from pipeline.scoring.customer_days import build_customer_days
from pipeline.scoring.customer_state import Mode, build_customer_state
from pipeline.scoring.seeds import segment_lookups
from pipeline.tables import CLUSTER_PROFILES, MODEL_KEY
from pipeline.timing import Timings
from pipeline.workspace import workspace

# What customer_segments binds when there is no model yet (and no customer to assign).
NO_MODEL: dict[str, Any] = {
    "centroids": [[0.0, 0.0, 0.0]],
    "scaler_mean": [0.0, 0.0, 0.0],
    "scaler_scale": [1.0, 1.0, 1.0],
    "cluster_ids": [0],
    "cluster_names": [""],
    "model_version": None,
}


@dataclass(frozen=True)
class ScoreReport:
    """What scoring a date did, and the segment summary it wrote."""

    as_of_date: date
    mode: Mode
    customers: int
    model_version: date | None  # None until a customer has purchased
    refitted: bool
    summary: list[dict[str, Any]]
    pareto_top_share: float
    timings: dict[str, float]


def score_date(
    settings: Settings,
    day: date,
    *,
    full: bool = False,
    refit: bool = False,
    customer_days: bool = True,
) -> ScoreReport:
    """Rebuild ``day``'s customer days, then its state, clusters and segment tables.

    ``full`` recomputes the state from every order line instead of the day before's;
    ``refit`` fits a new cluster model as of ``day`` (the schedule is the caller's:
    :func:`pipeline.steps.refit_due`); without it the newest model on or before ``day``
    is used, and one is fitted only when there is none;
    ``customer_days=False`` skips rebuilding the date's customer days, for a caller that
    has just built them (``build_customer_days``, the DAG's task of its own).

    Raises:
        NotIngestedError: ``day`` has no complete ingest.
    """
    timings = Timings()
    if customer_days:
        with timings.phase("customer_days"):
            build_customer_days(settings, day)
    with workspace(settings.paths.state, "score", day) as scratch:
        # The state gets a connection of its own: closing it hands the memory of a
        # full recompute back before the model is fitted.
        with timings.phase("customer_state"), _connection(settings, scratch) as con:
            state = build_customer_state(con, settings, day, full=full)
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            params = _params(settings, day)
            build_intermediate(con, settings, "scoring/customer_features", params)
            population = _population(con, settings)
            with timings.phase("cluster_model"):
                model, refitted = _model(
                    con, settings, day, force=refit, customers=population["customers"]
                )
            with timings.phase("customer_segments"):
                model_params = model.sql_params() if model else NO_MODEL
                bound = params | population | segment_lookups() | model_params
                segments = run_model(con, settings, "scoring/customer_segments", day, bound)
            with timings.phase("segment_summary"):
                summary = run_model(con, settings, "scoring/segment_summary", day, params)
            return ScoreReport(
                as_of_date=day,
                mode=state.mode,
                customers=count_rows(con, segments),
                model_version=model.version if model else None,
                refitted=refitted,
                summary=_rows(con, summary),
                pareto_top_share=settings.scoring.pareto_top_share,
                timings=timings.seconds,
            )
        finally:
            release(con)


@contextmanager
def _connection(settings: Settings, scratch: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(settings.duckdb, spill_dir=scratch / "spill")
    try:
        yield con
    finally:
        release(con)


def _params(settings: Settings, day: date) -> dict[str, Any]:
    """What scoring's SQL binds beyond its configuration section (declared per model)."""
    scoring = settings.scoring
    return {
        "as_of_date": day,
        "pareto_cutoff_quantile": max(0.0, 1.0 - scoring.pareto_top_share - 0.1),
    }


def _model(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    *,
    force: bool,
    customers: int,
) -> tuple[ClusterModel | None, bool]:
    """The model in force on ``day``: the newest fitted on or before it, or a new one
    when asked (``force``) or when there is none yet (none while no customer has
    purchased: there is nothing to fit on)."""
    store = ClusterStore(settings.paths.models)
    current = store.newest_on_or_before(day)
    due = force or current is None
    if not due or customers == 0:
        return current, False
    sample, population = fit_sample(con, settings.clusters)
    previous = current if current is None or current.version < day else _before(store, day)
    model = fit_model(sample, population, day, settings.clusters, settings.scoring, previous)
    store.save(model)
    _write_profiles(con, Lake(settings.paths.lake), model)
    return model, True


def _population(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """rfm_population's one row, as parameters."""
    build_intermediate(con, settings, "scoring/rfm_population")
    return one_row(con.table("rfm_population"))


def _before(store: ClusterStore, day: date) -> ClusterModel | None:
    """The newest model strictly before ``day`` (what a refit of ``day`` follows)."""
    earlier = [version for version in store.versions() if version < day]
    return store.load(earlier[-1]) if earlier else None


def _write_profiles(con: duckdb.DuckDBPyConnection, lake: Lake, model: ClusterModel) -> None:
    """cluster_profiles: one row per cluster of the model, partitioned by its version."""
    import pandas as pd

    quality = model.quality
    frame = pd.DataFrame([vars(profile) for profile in model.profiles]).assign(
        k=model.k,
        silhouette=quality.get("silhouette"),
        inertia=quality.get("inertia"),
        sample_size=quality.get("sample_size"),
        population=quality.get("population"),
        previous_version=model.previous_version,
    )
    relation = con.from_df(frame).project(
        "cluster_id::integer as cluster_id, cluster_name, value_rank::integer as value_rank,"
        " rfm_pattern, rfm_type, weighted_score, sample_customers::bigint as sample_customers,"
        " centroid_recency_days, centroid_frequency, centroid_monetary, mean_recency_days,"
        " mean_frequency, mean_monetary, k::integer as k, silhouette::double as silhouette,"
        " inertia, sample_size::bigint as sample_size, population::bigint as population,"
        " previous_version::date as previous_version"
    )
    target = lake.partition_file(CLUSTER_PROFILES, model.version, MODEL_KEY)
    write_partition(relation.order("cluster_id"), target)


def _rows(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, Any]]:
    relation = con.sql("select * from read_parquet($path)", params={"path": str(path)})
    return rows(relation)
