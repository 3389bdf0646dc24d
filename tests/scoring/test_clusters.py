"""The K-means cluster model: fitting, naming, stable ids, versions and daily assignment.

Unit tests fit ``fit_model`` on synthetic samples of well-separated customer groups (a
log-normal spread around each group's R, F and M). Integration tests score a 20-day
history day by day through the real ingest and scoring, and check the model versions,
the cluster_profiles table and every customer's cluster against a numpy computation.

What is guaranteed about determinism (and tested below):

- the same sample, in the same row order, with the same seed gives the same model,
  byte for byte (``to_json``);
- the pipeline's sample (``fit_sample``) is drawn in hash order, so it is the same rows in
  the same order whatever the order of ``customer_features``: a re-run gives the same bytes;
- a shuffled sample is a different K-means input (k-means++ seeds by row position): on
  well-separated groups it gives the same clusters, ids, names and counts, and centroids
  equal up to float rounding (not the same bytes); on data without cluster structure it
  may converge to another local optimum, which is why the pipeline fixes the row order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sklearn.cluster
from sklearn.cluster import KMeans

from pipeline.config import ClustersConfig, ScoringConfig, Settings
from pipeline.lake import Lake
from pipeline.scoring import clusters as clusters_module
from pipeline.scoring.clusters import (
    VALUE_CLASSES,
    ClusterModel,
    ClusterStore,
    fit_model,
    fit_sample,
)
from pipeline.scoring.run import ScoreReport, score_date
from pipeline.steps import refit_due
from pipeline.tables import CLUSTER_PROFILES, MODEL_KEY
from tests.scoring.history import Line, ingest_history, segments_of, with_window
from tests.support import read_lake, with_paths

DAY0 = date(2025, 1, 1)
SCORING = ScoringConfig()
WEIGHTS = np.array([-SCORING.weight_recency, SCORING.weight_frequency, SCORING.weight_monetary])

# Medians of (recency_days, frequency, monetary) of well-separated groups, best first.
GROUPS = [
    (2, 40, 8000.0),
    (5, 10, 3000.0),
    (20, 5, 600.0),
    (60, 2, 150.0),
    (200, 1, 20.0),
]
# A sixth group, far from the five in frequency: what a k = 6 refit discovers.
NEW_GROUP = (10, 1, 5000.0)


# --- synthetic samples -------------------------------------------------------------


def _with_logs(frame: pd.DataFrame) -> pd.DataFrame:
    """The log features the SQL computes: ln(1 + x), monetary clipped at 0."""
    return frame.assign(
        log_recency=np.log1p(frame["recency_days"].astype("float64")),
        log_frequency=np.log1p(frame["frequency"].astype("float64")),
        log_monetary=np.log1p(frame["monetary"].astype("float64").clip(lower=0)),
    )


def _sample(
    per_group: int, groups: list[tuple[int, int, float]] = GROUPS, seed: int = 0
) -> pd.DataFrame:
    """``per_group`` customers around each group's medians (15% log-normal spread)."""
    rng = np.random.default_rng(seed)
    parts = []
    for recency, frequency, monetary in groups:
        spread = np.exp(rng.normal(0, 0.15, size=(per_group, 3)))
        parts.append(
            pd.DataFrame(
                {
                    "recency_days": np.round(recency * spread[:, 0]).astype(int),
                    "frequency": np.maximum(1, np.round(frequency * spread[:, 1])).astype(int),
                    "monetary": np.round(monetary * spread[:, 2], 2),
                }
            )
        )
    return _with_logs(pd.concat(parts, ignore_index=True))


def _perturbed(sample: pd.DataFrame, seed: int, noise: float = 0.02) -> pd.DataFrame:
    """Every raw R, F and M times (1 + noise x N(0, 1)), logs recomputed."""
    rng = np.random.default_rng(seed)
    raw = sample[["recency_days", "frequency", "monetary"]].astype("float64")
    return _with_logs(raw * (1 + noise * rng.normal(size=raw.shape)))


def _fit(
    sample: pd.DataFrame,
    config: ClustersConfig | None = None,
    previous: ClusterModel | None = None,
    day: date = DAY0,
) -> ClusterModel:
    return fit_model(sample, len(sample), day, config or ClustersConfig(), SCORING, previous)


# --- independent computations from a model's fields ------------------------------------


def _log_centroids(model: ClusterModel) -> np.ndarray:
    return np.asarray(model.centroids) * np.asarray(model.scaler_scale) + model.scaler_mean


def _nearest_positions(model: ClusterModel, logs: np.ndarray) -> np.ndarray:
    """Position (in model.centroids) of the nearest centroid to each row of log features."""
    scaled = (logs - np.asarray(model.scaler_mean)) / np.asarray(model.scaler_scale)
    distances = ((scaled[:, None, :] - np.asarray(model.centroids)[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1)


def _nearest_previous_ids(model: ClusterModel, previous: ClusterModel) -> list[int]:
    """For each cluster of ``model``, the id of the previous model's nearest centroid."""
    new, old = _log_centroids(model), _log_centroids(previous)
    distances = np.linalg.norm(new[:, None, :] - old[None, :, :], axis=2)
    return [previous.cluster_ids[index] for index in distances.argmin(axis=1)]


def _log_features(sample: pd.DataFrame) -> np.ndarray:
    return sample[["log_recency", "log_frequency", "log_monetary"]].to_numpy(dtype=np.float64)


def _position_of_group(model: ClusterModel, group: tuple[int, int, float]) -> int:
    """The position of the centroid nearest to a group's medians (in log units)."""
    logs = np.log1p(np.asarray([group], dtype=np.float64))
    return int(_nearest_positions(model, logs)[0])


# --- fit_model: determinism and row order ----------------------------------------------


def _unstructured(rows: int, seed: int = 0) -> pd.DataFrame:
    """Customers spread uniformly, without groups: K-means has many local optima."""
    rng = np.random.default_rng(seed)
    return _with_logs(
        pd.DataFrame(
            {
                "recency_days": rng.integers(0, 365, rows),
                "frequency": rng.integers(1, 30, rows),
                "monetary": rng.uniform(-50, 5000, rows).round(2),
            }
        )
    )


@pytest.mark.parametrize(
    ("sample", "config"),
    [
        (_sample(60), ClustersConfig()),
        (_unstructured(300), ClustersConfig()),
        (_unstructured(150), ClustersConfig(k=0, k_max=5)),
    ],
    ids=["groups", "unstructured", "unstructured-k0"],
)
def test_same_sample_and_seed_give_the_same_model_bytes(
    sample: pd.DataFrame, config: ClustersConfig
) -> None:
    first, second = _fit(sample, config), _fit(sample.copy(), config)

    assert first.to_json() == second.to_json()
    assert first.quality["seed"] == 42


def test_row_order_changes_nothing_but_float_rounding_on_separated_groups() -> None:
    sample = _sample(60)
    shuffled = sample.sample(frac=1, random_state=3).reset_index(drop=True)

    model, other = _fit(sample), _fit(shuffled)

    assert other.k == model.k == 5
    assert other.cluster_ids == model.cluster_ids
    assert other.cluster_names == model.cluster_names
    for mine, theirs in zip(model.profiles, other.profiles, strict=True):
        assert (theirs.value_rank, theirs.rfm_pattern, theirs.sample_customers) == (
            mine.value_rank,
            mine.rfm_pattern,
            mine.sample_customers,
        )
    np.testing.assert_allclose(other.centroids, model.centroids, rtol=0, atol=1e-9)
    np.testing.assert_allclose(other.scaler_mean, model.scaler_mean, rtol=0, atol=1e-9)


def _draw(features: pd.DataFrame, config: ClustersConfig) -> tuple[pd.DataFrame, int]:
    """fit_sample over a view customer_features of ``features``, rows in their order."""
    con = duckdb.connect()
    try:
        con.from_df(features).create_view("customer_features")
        return fit_sample(con, config)
    finally:
        con.close()


def test_pipeline_sample_is_the_same_rows_in_the_same_order_whatever_the_input_order() -> None:
    sample = _sample(50)  # 250 customers, more than the sample size of 100
    frame = sample.assign(customer_id=[f"C{index:04d}" for index in range(len(sample))])
    config = ClustersConfig(sample_size=100)

    drawn, population = _draw(frame, config)
    redrawn, _ = _draw(frame.sample(frac=1, random_state=4).reset_index(drop=True), config)
    other_seed, _ = _draw(frame, ClustersConfig(sample_size=100, seed=7))

    assert population == 250
    assert len(drawn) == 100
    pd.testing.assert_frame_equal(redrawn, drawn)
    assert set(other_seed["monetary"]) != set(drawn["monetary"])  # the seed picks the sample
    model = fit_model(drawn, population, DAY0, config, SCORING, None)
    assert fit_model(redrawn, population, DAY0, config, SCORING, None).to_json() == (
        model.to_json()
    )
    assert (model.quality["sample_size"], model.quality["population"]) == (100, 250)
    assert sum(profile.sample_customers for profile in model.profiles) == 100


# --- fit_model: k = 5, value classes and profiles --------------------------------------


def test_five_clusters_take_the_value_classes_in_weighted_score_order() -> None:
    sample = _sample(60)

    model = _fit(sample)

    assert model.k == 5
    assert model.previous_version is None
    scores = np.asarray(model.centroids) @ WEIGHTS  # independent of the stored score
    assert [profile.weighted_score for profile in model.profiles] == pytest.approx(scores, abs=1e-6)
    by_rank = sorted(model.profiles, key=lambda profile: profile.value_rank)
    assert [profile.value_rank for profile in by_rank] == [1, 2, 3, 4, 5]
    assert [profile.cluster_name for profile in by_rank] == list(VALUE_CLASSES)
    ranked_scores = [profile.weighted_score for profile in by_rank]
    assert ranked_scores == sorted(ranked_scores, reverse=True)
    assert len(set(ranked_scores)) == 5
    # A first model's ids are its value ranks; profiles (and centroids) are in id order.
    assert model.cluster_ids == [1, 2, 3, 4, 5]
    assert [profile.value_rank for profile in model.profiles] == [1, 2, 3, 4, 5]
    # The groups were built best first, so rank r is the r-th group.
    assert [_position_of_group(model, group) for group in GROUPS] == [0, 1, 2, 3, 4]


def test_profiles_describe_their_centroid_and_members() -> None:
    sample = _sample(60)
    model = _fit(sample)
    positions = _nearest_positions(model, _log_features(sample))
    raw = sample[["recency_days", "frequency", "monetary"]].astype("float64")
    overall = raw.mean()

    for position, profile in enumerate(model.profiles):
        members = raw[positions == position]
        means = members.mean()
        recent = bool(means["recency_days"] < overall["recency_days"])
        frequent = bool(means["frequency"] > overall["frequency"])
        spending = bool(means["monetary"] > overall["monetary"])
        arrows = f"R{'↑' if recent else '↓'}F{'↑' if frequent else '↓'}M{'↑' if spending else '↓'}"
        assert profile.rfm_pattern == arrows
        # The documents' 8 types by (recent, frequent, high-spending), written out here.
        assert (
            profile.rfm_type
            == {
                (True, True, True): "important value",
                (True, False, True): "important develop",
                (False, True, True): "important retain",
                (False, False, True): "important win-back",
                (True, True, False): "general value",
                (True, False, False): "general develop",
                (False, True, False): "general retain",
                (False, False, False): "general win-back",
            }[(recent, frequent, spending)]
        )
        assert profile.sample_customers == len(members)
        assert profile.mean_monetary == pytest.approx(means["monetary"], abs=0.01)
        # The centroid in readable units is the same position's standardized centroid.
        centroid = np.expm1(_log_centroids(model)[position])
        assert profile.centroid_recency_days == pytest.approx(centroid[0], abs=0.01)
        assert profile.centroid_frequency == pytest.approx(centroid[1], abs=0.001)
        assert profile.centroid_monetary == pytest.approx(centroid[2], abs=0.01)
    assert model.profiles[0].rfm_pattern == "R↑F↑M↑"
    assert model.profiles[0].rfm_type == "important value"
    assert model.profiles[4].rfm_pattern == "R↓F↓M↓"
    assert model.profiles[4].rfm_type == "general win-back"
    assert model.quality["sample_size"] == model.quality["population"] == 300


# --- fit_model: ids stable across refits -------------------------------------------------


def test_refit_on_a_perturbed_sample_keeps_the_ids_of_the_nearest_previous_centroids() -> None:
    sample = _sample(60)
    first = _fit(sample)
    # The same groups, but the previous model's ids shuffled: ids must follow centroids,
    # not value ranks or K-means' order.
    relabel = {1: 4, 2: 1, 3: 5, 4: 2, 5: 3}
    previous = replace(
        first,
        profiles=[replace(p, cluster_id=relabel[p.cluster_id]) for p in first.profiles],
    )

    refit = _fit(_perturbed(sample, seed=1), previous=previous, day=DAY0 + timedelta(days=7))

    assert refit.previous_version == DAY0
    assert refit.cluster_ids == [1, 2, 3, 4, 5]
    assert refit.cluster_ids == _nearest_previous_ids(refit, previous)
    # Names still follow value: group r (rank r) keeps name r but carries id relabel[r].
    for rank, group in enumerate(GROUPS, start=1):
        profile = refit.profiles[_position_of_group(refit, group)]
        assert (profile.cluster_id, profile.value_rank) == (relabel[rank], rank)
        assert profile.cluster_name == VALUE_CLASSES[rank - 1]


def test_refit_on_another_subsample_of_the_population_keeps_the_ids() -> None:
    population = _sample(200)
    first = _fit(population.sample(n=300, random_state=1).reset_index(drop=True))

    refit = _fit(
        population.sample(n=300, random_state=2).reset_index(drop=True),
        previous=first,
        day=DAY0 + timedelta(days=7),
    )

    assert refit.cluster_ids == _nearest_previous_ids(refit, first) == [1, 2, 3, 4, 5]
    assert [_position_of_group(refit, group) for group in GROUPS] == [0, 1, 2, 3, 4]


class _RotatedKMeans(KMeans):
    """K-means whose clusters come out in another order (rotated by 2), labels to match."""

    calls = 0

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        labels = super().fit_predict(X, y, sample_weight=sample_weight)
        order = np.roll(np.arange(len(self.cluster_centers_)), 2)
        self.cluster_centers_ = self.cluster_centers_[order]
        self.labels_ = np.argsort(order)[labels]
        type(self).calls += 1
        return self.labels_


def test_the_order_kmeans_returns_its_clusters_in_does_not_change_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample, later = _sample(60), _perturbed(_sample(60), seed=5)
    first = _fit(sample)
    refit = _fit(later, previous=first, day=DAY0 + timedelta(days=7))
    # The module may import KMeans at the top or inside the fitting functions: patch both.
    monkeypatch.setattr(sklearn.cluster, "KMeans", _RotatedKMeans)
    monkeypatch.setattr(clusters_module, "KMeans", _RotatedKMeans, raising=False)

    rotated_first = _fit(sample)
    rotated_refit = _fit(later, previous=rotated_first, day=DAY0 + timedelta(days=7))

    assert _RotatedKMeans.calls >= 2
    assert rotated_first.to_json() == first.to_json()
    assert rotated_refit.to_json() == refit.to_json()


def test_a_sixth_cluster_keeps_the_five_old_ids_and_takes_id_6() -> None:
    first = _fit(_sample(60))

    refit = _fit(
        _sample(60, [*GROUPS, NEW_GROUP], seed=1),
        ClustersConfig(k=6),
        previous=first,
        day=DAY0 + timedelta(days=7),
    )

    assert refit.k == 6
    assert refit.cluster_ids == [1, 2, 3, 4, 5, 6]
    new = _position_of_group(refit, NEW_GROUP)
    assert refit.profiles[new].cluster_id == 6
    old_positions = [_position_of_group(refit, group) for group in GROUPS]
    assert [refit.profiles[position].cluster_id for position in old_positions] == [1, 2, 3, 4, 5]
    # Six clusters are named by RFM type, numbered when two share one: names are unique.
    assert len(set(refit.cluster_names)) == 6
    assert not set(refit.cluster_names) & set(VALUE_CLASSES)


def test_fewer_clusters_keep_a_subset_of_the_old_ids() -> None:
    first = _fit(_sample(60))
    kept = [GROUPS[0], GROUPS[1], GROUPS[3], GROUPS[4]]  # group 3 (id 3) is gone

    refit = _fit(_sample(60, kept, seed=1), ClustersConfig(k=4), previous=first)

    assert refit.cluster_ids == [1, 2, 4, 5]
    assert refit.cluster_ids == _nearest_previous_ids(refit, first)


def test_an_id_dropped_in_one_refit_is_never_given_to_another_group() -> None:
    six = _fit(_sample(60, [*GROUPS, NEW_GROUP]), ClustersConfig(k=6))
    dropped_id = six.profiles[_position_of_group(six, NEW_GROUP)].cluster_id
    without = _fit(
        _sample(60, seed=1), ClustersConfig(k=5), previous=six, day=DAY0 + timedelta(days=7)
    )
    another = (120, 8, 900.0)

    again = _fit(
        _sample(60, [*GROUPS, another], seed=2),
        ClustersConfig(k=6),
        previous=without,
        day=DAY0 + timedelta(days=14),
    )

    assert dropped_id not in without.cluster_ids
    assert without.next_cluster_id == 7
    assert again.profiles[_position_of_group(again, another)].cluster_id == 7
    assert again.next_cluster_id == 8


# --- fit_model: choosing k, and degenerate samples -------------------------------------


def test_k_0_chooses_the_best_silhouette_in_the_configured_range() -> None:
    sample = _sample(40, GROUPS[:4])

    model = _fit(sample, ClustersConfig(k=0, k_min=3, k_max=8))

    candidates = model.quality["k_candidates"]
    assert list(candidates) == ["3", "4", "5", "6", "7", "8"]
    assert model.k == 4  # four groups
    assert candidates["4"] == max(candidates.values())
    assert model.quality["silhouette"] == candidates["4"]
    assert len(model.centroids) == len(model.profiles) == 4


def test_k_0_stays_inside_a_narrow_range() -> None:
    model = _fit(_sample(40, GROUPS[:4]), ClustersConfig(k=0, k_min=5, k_max=6))

    assert list(model.quality["k_candidates"]) == ["5", "6"]
    assert model.k in (5, 6)
    assert model.quality["silhouette"] == max(model.quality["k_candidates"].values())


def test_fixed_k_records_no_candidates() -> None:
    assert _fit(_sample(30)).quality["k_candidates"] == {}


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("config", [ClustersConfig(k=5), ClustersConfig(k=0)], ids=["k5", "k0"])
def test_fewer_distinct_customers_than_k_reduce_k(config: ClustersConfig) -> None:
    three = _sample(1, GROUPS[:3])
    sample = pd.concat([three] * 10, ignore_index=True)  # 30 rows, 3 distinct points

    model = _fit(sample, config)

    assert model.k == 3
    assert sorted(profile.sample_customers for profile in model.profiles) == [10, 10, 10]
    assert model.quality["inertia"] == pytest.approx(0, abs=1e-9)
    assert len(set(model.cluster_names)) == 3


@pytest.mark.parametrize("customers", [2, 3, 5])
def test_as_many_clusters_as_customers_has_no_silhouette(customers: int) -> None:
    """A new shop's first days: every customer is a cluster of their own."""
    sample = _sample(1, GROUPS[:customers])

    model = _fit(sample)

    assert model.k == customers
    assert model.quality["silhouette"] is None


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("rows", [1, 10])
def test_identical_customers_make_one_cluster(rows: int) -> None:
    sample = pd.concat([_sample(1, GROUPS[:1])] * rows, ignore_index=True)

    model = _fit(sample)

    assert model.k == 1
    assert model.cluster_ids == [1]
    assert model.profiles[0].sample_customers == rows
    assert model.quality["silhouette"] is None
    assert ClusterModel.from_json(model.to_json()) == model


# --- the artifact --------------------------------------------------------------------


def _models() -> dict[str, ClusterModel]:
    first = _fit(_sample(30))
    return {
        "first": first,
        "refit": _fit(_perturbed(_sample(30), 2), previous=first, day=DAY0 + timedelta(days=7)),
        "k0": _fit(_sample(30, GROUPS[:4]), ClustersConfig(k=0, k_max=5)),
    }


def test_json_round_trip() -> None:
    for name, model in _models().items():
        text = model.to_json()
        data = json.loads(text)

        assert ClusterModel.from_json(text) == model, name
        assert ClusterModel.from_json(text).to_json() == text, name
        assert data["version"] == model.version.isoformat(), name
        assert set(data) >= {"scaler_mean", "scaler_scale", "centroids", "k", "quality"}, name
        assert {"inertia", "silhouette", "sample_size", "population"} <= set(data["quality"])


def test_store_keeps_versions_under_kmeans_version_folders(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path)
    first = _fit(_sample(30))
    later = _fit(_sample(30, seed=1), previous=first, day=DAY0 + timedelta(days=7))

    paths = [store.save(first), store.save(later)]
    (tmp_path / "kmeans" / "version=2025-01-20").mkdir()  # no model.json: not a version

    assert paths == [
        tmp_path / "kmeans" / "version=2025-01-01" / "model.json",
        tmp_path / "kmeans" / "version=2025-01-08" / "model.json",
    ]
    assert store.versions() == [DAY0, DAY0 + timedelta(days=7)]
    assert store.load(DAY0 + timedelta(days=7)) == later
    assert store.newest_on_or_before(DAY0 - timedelta(days=1)) is None
    assert store.newest_on_or_before(DAY0 + timedelta(days=6)) == first
    assert store.newest_on_or_before(DAY0 + timedelta(days=30)) == later
    assert [path.name for path in (tmp_path / "kmeans").rglob("*")].count("model.json") == 2


def test_the_removed_refit_every_days_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match=r"refit_every_days was removed.*refit_cron"):
        ClustersConfig.model_validate({"refit_every_days": 7})


# --- through the pipeline ------------------------------------------------------------

START = date(2025, 3, 3)
DAYS = [START + timedelta(days=offset) for offset in range(20)]
VERSIONS = [DAYS[0], DAYS[7], DAYS[14]]  # the first day, then the schedule's Mondays


def _history() -> list[Line]:
    """120 customers in three habits (often and big, sometimes, rarely and small); the
    first 10 buy on the first day (distinct amounts); NEG's return outweighs its sale."""
    rng = np.random.default_rng(7)
    lines = []
    for number in range(120):
        customer = f"C{number:03d}"
        chance, scale = [(0.6, 400.0), (0.25, 120.0), (0.06, 30.0)][number % 3]
        days = {day for day in DAYS if rng.random() < chance}
        if number < 10:
            days.add(DAYS[0])
        for order, day in enumerate(sorted(days)):
            amount = scale * float(np.exp(rng.normal(0, 0.5))) + number / 100
            lines.append(Line(day, f"{customer}-{order}", customer, f"{amount:.2f}"))
    lines.append(Line(DAYS[1], "NEG-1", "NEG", "50.00"))
    lines.append(Line(DAYS[3], "NEG-R", "NEG", "120.00", kind="return"))
    return lines


@dataclass(frozen=True)
class Scored:
    settings: Settings
    reports: dict[date, ScoreReport]
    versions: list[date]  # the model versions right after scoring day by day


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    settings = with_window(with_paths(Settings(), tmp_path_factory.mktemp("clusters")), 30)
    # Tuesdays' runs refit, so business dates on Mondays (export lag 1 day).
    schedule = settings.schedule.model_copy(update={"refit_cron": "0 8 * * 2"})
    settings = settings.model_copy(update={"schedule": schedule})
    ingest_history(settings, _history(), DAYS[0], DAYS[-1])
    reports = {day: score_date(settings, day, refit=refit_due(settings, day)) for day in DAYS}
    return Scored(settings, reports, ClusterStore(settings.paths.models).versions())


@pytest.fixture
def copied(scored: Scored, tmp_path: Path) -> Settings:
    """A copy of the scored pipeline, for tests that refit or re-score."""
    root = tmp_path / "copy"
    shutil.copytree(scored.settings.paths.lake.parent, root)
    return with_paths(scored.settings, root)


def _model_json(settings: Settings, version: date) -> dict[str, Any]:
    path = settings.paths.models / "kmeans" / f"version={version}" / "model.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _expected_cluster_ids(model: dict[str, Any], rows: list[dict[str, Any]]) -> list[int]:
    """Nearest centroid in numpy, from the model's JSON and the customers' raw R, F, M."""
    raw = np.array(
        [[row["recency_days"], row["frequency"], max(float(row["monetary"]), 0)] for row in rows],
        dtype=np.float64,
    )
    scaled = (np.log1p(raw) - np.asarray(model["scaler_mean"])) / np.asarray(model["scaler_scale"])
    centroids = np.asarray(model["centroids"])
    distances = ((scaled[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    ids = [profile["cluster_id"] for profile in model["profiles"]]
    return [ids[position] for position in distances.argmin(axis=1)]


def _segment_rows(settings: Settings, day: date) -> list[dict[str, Any]]:
    return [dict(row) for _, row in sorted(segments_of(settings, day).items())]


def test_a_model_is_fitted_on_the_first_day_and_every_7_days(scored: Scored) -> None:
    folders = sorted(path.name for path in (scored.settings.paths.models / "kmeans").iterdir())

    assert scored.versions == VERSIONS
    assert folders == [f"version={version}" for version in VERSIONS]
    assert [day for day, report in scored.reports.items() if report.refitted] == VERSIONS
    chain = [_model_json(scored.settings, version)["previous_version"] for version in VERSIONS]
    assert chain == [None, str(VERSIONS[0]), str(VERSIONS[1])]
    for version in VERSIONS:
        model = _model_json(scored.settings, version)
        customers = len(segments_of(scored.settings, version))
        assert model["quality"]["population"] == model["quality"]["sample_size"] == customers
        assert model["k"] == 5
        assert [p["cluster_id"] for p in model["profiles"]] == [1, 2, 3, 4, 5]
        assert sorted(p["cluster_name"] for p in model["profiles"]) == sorted(VALUE_CLASSES)


def test_segments_use_the_newest_model_on_or_before_the_date(scored: Scored) -> None:
    for day in DAYS:
        in_force = max(version for version in VERSIONS if version <= day)
        rows = segments_of(scored.settings, day)

        assert scored.reports[day].model_version == in_force, day
        assert {row["model_version"] for row in rows.values()} == {in_force}, day


def test_every_customer_is_in_the_cluster_of_its_nearest_centroid(scored: Scored) -> None:
    populated: set[int] = set()
    for day in DAYS:
        rows = _segment_rows(scored.settings, day)
        model = _model_json(scored.settings, scored.reports[day].model_version)
        names = {p["cluster_id"]: p["cluster_name"] for p in model["profiles"]}

        assert [row["cluster_id"] for row in rows] == _expected_cluster_ids(model, rows), day
        assert [row["cluster_name"] for row in rows] == [names[row["cluster_id"]] for row in rows]
        populated |= {row["cluster_id"] for row in rows}
    assert populated == {1, 2, 3, 4, 5}
    negative = segments_of(scored.settings, DAYS[-1])["NEG"]
    assert float(negative["monetary"]) < 0  # log_monetary clips it at 0


def test_cluster_profiles_has_one_row_per_cluster_per_version(scored: Scored) -> None:
    settings = scored.settings
    rows = read_lake(settings, CLUSTER_PROFILES)
    lake = Lake(settings.paths.lake)

    assert lake.partition_dates(CLUSTER_PROFILES, MODEL_KEY) == VERSIONS
    assert {row["model_version"] for row in rows} == set(VERSIONS)
    for version in VERSIONS:
        model = _model_json(settings, version)
        table = sorted(
            (row for row in rows if row["model_version"] == version),
            key=lambda row: int(str(row["cluster_id"])),
        )
        assert len(table) == model["k"] == len(model["profiles"])
        for row, profile in zip(table, model["profiles"], strict=True):
            assert {name: row[name] for name in profile} == profile
            assert row["k"] == model["k"]
            assert row["silhouette"] == model["quality"]["silhouette"]
            assert row["population"] == model["quality"]["population"]
            assert row["previous_version"] == (
                model["previous_version"] and date.fromisoformat(model["previous_version"])
            )
        assert (
            sum(int(str(row["sample_customers"])) for row in table)
            == (model["quality"]["sample_size"])
        )


def test_rescoring_an_earlier_date_uses_the_model_in_force_then(copied: Settings) -> None:
    day = DAYS[10]  # in force: VERSIONS[1]; a later one (VERSIONS[2]) exists
    segments = Lake(copied.paths.lake).partition_file("customer_segments", day, "as_of_date")
    before = segments.read_bytes()

    report = score_date(copied, day)

    assert (report.model_version, report.refitted) == (VERSIONS[1], False)
    assert segments.read_bytes() == before
    assert ClusterStore(copied.paths.models).versions() == VERSIONS


def test_refit_creates_a_version_for_the_date(copied: Settings) -> None:
    day = DAYS[10]

    report = score_date(copied, day, refit=True)

    assert (report.model_version, report.refitted) == (day, True)
    assert ClusterStore(copied.paths.models).versions() == sorted([*VERSIONS, day])
    model = _model_json(copied, day)
    assert model["previous_version"] == str(VERSIONS[1])
    rows = _segment_rows(copied, day)
    assert {row["model_version"] for row in rows} == {day}
    assert [row["cluster_id"] for row in rows] == _expected_cluster_ids(model, rows)
    profiles = [row for row in read_lake(copied, CLUSTER_PROFILES) if row["model_version"] == day]
    assert sorted(int(str(row["cluster_id"])) for row in profiles) == [1, 2, 3, 4, 5]
    # The next day follows the new model; the next scheduled version still wins after it.
    assert score_date(copied, DAYS[11]).model_version == day
    assert score_date(copied, DAYS[15]).model_version == VERSIONS[2]


def test_refitting_an_existing_version_gives_the_same_model(copied: Settings) -> None:
    day = VERSIONS[1]
    path = copied.paths.models / "kmeans" / f"version={day}" / "model.json"
    lake = Lake(copied.paths.lake)
    profiles = lake.partition_file(CLUSTER_PROFILES, day, MODEL_KEY)
    before = path.read_bytes(), profiles.read_bytes()

    report = score_date(copied, day, refit=True)

    assert report.refitted
    # It follows the version before it (not itself) and gives the same bytes.
    assert (path.read_bytes(), profiles.read_bytes()) == before


def test_sampled_and_k_0_models_through_the_pipeline(copied: Settings) -> None:
    day = DAYS[-1]
    clusters = ClustersConfig(k=0, k_min=2, k_max=6, sample_size=100)
    settings = copied.model_copy(update={"clusters": clusters})
    customers = len(segments_of(settings, day))

    report = score_date(settings, day, refit=True)

    model = _model_json(settings, day)
    assert report.model_version == day
    assert customers > 100
    assert (model["quality"]["sample_size"], model["quality"]["population"]) == (100, customers)
    assert list(model["quality"]["k_candidates"]) == ["2", "3", "4", "5", "6"]
    assert model["quality"]["silhouette"] == max(model["quality"]["k_candidates"].values())
    rows = _segment_rows(settings, day)
    assert len(rows) == customers
    assert [row["cluster_id"] for row in rows] == _expected_cluster_ids(model, rows)
    assert {row["cluster_id"] for row in rows} <= {p["cluster_id"] for p in model["profiles"]}


def test_no_model_until_a_customer_has_purchased(tmp_path: Path) -> None:
    settings = with_window(with_paths(Settings(), tmp_path), 30)
    first, second, third = DAYS[:3]
    lines = [Line(second, f"O{n}", f"C{n}", f"{10 * n + 5}.00") for n in range(6)]
    lines.append(Line(third, "O9", "C0", "80.00"))
    ingest_history(settings, lines, first, third)

    reports = [score_date(settings, first), score_date(settings, first, refit=True)]
    reports += [score_date(settings, second), score_date(settings, third)]

    assert [(r.model_version, r.refitted) for r in reports] == [
        (None, False),
        (None, False),  # nothing to fit on, even when asked
        (second, True),
        (second, False),
    ]
    assert ClusterStore(settings.paths.models).versions() == [second]
    assert segments_of(settings, first) == {}
    rows = _segment_rows(settings, third)
    model = _model_json(settings, second)
    assert [row["cluster_id"] for row in rows] == _expected_cluster_ids(model, rows)
    assert model["k"] == 5  # six distinct customers on the second day
