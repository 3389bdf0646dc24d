"""K-means clusters of customers on log-scaled, standardized R, F and M.

A model is fitted on a deterministic sample, stored as a versioned JSON artifact
(``paths.models/kmeans/version=YYYY-MM-DD/model.json``: scaler, centroids, k, quality;
:mod:`pipeline.model_store`) and applied daily as nearest-centroid in SQL. Its version is
its fit date; a new one is fitted when asked (``schedule.refit_cron`` decides for the
daily run: :func:`pipeline.steps.refit_due`) or when there is none. Cluster ids
stay stable across refits: new centroids are matched to the previous model's (the
assignment that minimises the total distance), and only unmatched clusters get new ids.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import numpy.typing as npt

from pipeline import seeds
from pipeline.config import ClustersConfig, ScoringConfig
from pipeline.model_store import VersionedStore
from pipeline.threads import openmp_threads_for

FEATURES = ("log_recency", "log_frequency", "log_monetary")
# The documents' five value classes, best first (article 7).
VALUE_CLASSES = (
    "high-value",
    "important-to-develop",
    "generally important",
    "general",
    "low-value",
)
MODEL_FILE = "model.json"
SILHOUETTE_WORKING_MB = 64

if TYPE_CHECKING:  # pandas and scikit-learn load only when a model is fitted
    import pandas as pd

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClusterProfile:
    """One cluster of a model, described in the units people read."""

    cluster_id: int
    cluster_name: str
    value_rank: int  # 1 = highest weighted score of its centroid
    rfm_pattern: str  # e.g. R↑F↓M↑, against the sample's means
    rfm_type: str
    weighted_score: float
    sample_customers: int
    centroid_recency_days: float
    centroid_frequency: float
    centroid_monetary: float
    mean_recency_days: float
    mean_frequency: float
    mean_monetary: float


@dataclass(frozen=True)
class ClusterModel:
    """A fitted model: enough to assign any customer to its nearest centroid."""

    version: date
    k: int
    scaler_mean: list[float]
    scaler_scale: list[float]
    centroids: list[list[float]]  # standardized space, one per profile, same order
    profiles: list[ClusterProfile]
    quality: dict[str, Any] = field(default_factory=dict)
    previous_version: date | None = None
    # The lowest id this model's lineage never used: a cluster that appears later gets
    # it, so an id dropped in one refit is never given to another group in the next.
    next_cluster_id: int = 0

    @property
    def cluster_ids(self) -> list[int]:
        return [profile.cluster_id for profile in self.profiles]

    @property
    def cluster_names(self) -> list[str]:
        return [profile.cluster_name for profile in self.profiles]

    def log_centroids(self) -> Matrix:
        """Centroids in log-feature units (comparable across models)."""
        return np.asarray(self.centroids) * self.scaler_scale + self.scaler_mean

    def sql_params(self) -> dict[str, Any]:
        return {
            "centroids": self.centroids,
            "scaler_mean": self.scaler_mean,
            "scaler_scale": self.scaler_scale,
            "cluster_ids": self.cluster_ids,
            "cluster_names": self.cluster_names,
            "model_version": self.version,
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = self.version.isoformat()
        data["previous_version"] = self.previous_version and self.previous_version.isoformat()
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterModel:
        data = json.loads(text)
        return cls(
            version=date.fromisoformat(data["version"]),
            k=data["k"],
            scaler_mean=data["scaler_mean"],
            scaler_scale=data["scaler_scale"],
            centroids=data["centroids"],
            profiles=[ClusterProfile(**profile) for profile in data["profiles"]],
            quality=data["quality"],
            previous_version=data["previous_version"]
            and date.fromisoformat(data["previous_version"]),
            next_cluster_id=data["next_cluster_id"],
        )


class ClusterStore(VersionedStore[ClusterModel]):
    """Model versions under ``paths.models/kmeans``, each one ``model.json``."""

    kind = "kmeans"
    marker = MODEL_FILE
    title = "cluster"

    def write(self, model: ClusterModel, folder: Path) -> None:
        (folder / MODEL_FILE).write_text(model.to_json(), encoding="utf-8")

    def read(self, folder: Path, version: date) -> ClusterModel:
        return ClusterModel.from_json((folder / MODEL_FILE).read_text(encoding="utf-8"))


def fit_sample(con: duckdb.DuckDBPyConnection, config: ClustersConfig) -> tuple[pd.DataFrame, int]:
    """A deterministic sample of the view ``customer_features``, and the population size.

    The sample is the customers with the smallest hash of (id, seed): the same customers
    whatever the order of rows or the number of threads.
    """
    population = con.execute("select count(*) from customer_features").fetchall()[0][0]
    sample = con.execute(
        "select recency_days, frequency, monetary::double as monetary,"
        " log_recency::double as log_recency, log_frequency::double as log_frequency,"
        " log_monetary::double as log_monetary"
        " from customer_features order by hash(customer_id, $seed), customer_id limit $n",
        {"seed": config.seed, "n": config.sample_size},
    ).df()
    return sample, int(population)


def fit_model(
    sample: pd.DataFrame,
    population: int,
    day: date,
    clusters: ClustersConfig,
    scoring: ScoringConfig,
    previous: ClusterModel | None,
) -> ClusterModel:
    """Fit K-means on the sample and describe its clusters; ids follow ``previous``."""
    from sklearn.cluster import KMeans  # imported here: daily runs without a refit skip it
    from sklearn.preprocessing import StandardScaler

    features = sample[list(FEATURES)].to_numpy(dtype=np.float64)
    scaler = StandardScaler().fit(features)
    scaled = scaler.transform(features)
    distinct = len(np.unique(scaled, axis=0))
    with openmp_threads_for(len(scaled)):
        k, candidates = _choose_k(scaled, distinct, clusters)
        kmeans = KMeans(n_clusters=k, n_init=clusters.n_init, random_state=clusters.seed)
        labels = kmeans.fit_predict(scaled)
    centroids: Matrix = kmeans.cluster_centers_
    weights = np.array([-scoring.weight_recency, scoring.weight_frequency, scoring.weight_monetary])
    scores = centroids @ weights
    ranks = np.empty(k, dtype=int)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, k + 1)
    log_centroids = centroids * scaler.scale_ + scaler.mean_
    ids = _stable_ids(log_centroids, ranks, previous)
    profiles = _profiles(sample, labels, log_centroids, scores, ranks, ids)
    order = np.argsort(ids)
    quality: dict[str, Any] = {
        "inertia": round(float(kmeans.inertia_), 6),
        "silhouette": _silhouette(scaled, labels, clusters),
        "sample_size": len(sample),
        "population": population,
        "k_candidates": candidates,
        "seed": clusters.seed,
        "n_init": clusters.n_init,
    }
    return ClusterModel(
        version=day,
        k=k,
        scaler_mean=[float(value) for value in scaler.mean_],
        scaler_scale=[float(value) for value in scaler.scale_],
        centroids=[[float(value) for value in centroids[index]] for index in order],
        profiles=[profiles[index] for index in order],
        quality=quality,
        previous_version=previous.version if previous else None,
        next_cluster_id=max(int(ids.max()) + 1, previous.next_cluster_id if previous else 0),
    )


def _choose_k(
    scaled: Matrix, distinct: int, config: ClustersConfig
) -> tuple[int, dict[str, float]]:
    """The configured k, or the best silhouette in [k_min, k_max]; never above the
    number of distinct points (K-means cannot place more centroids than that)."""
    from sklearn.cluster import KMeans

    if config.k:
        return max(1, min(config.k, distinct)), {}
    candidates: dict[str, float] = {}
    for k in range(config.k_min, min(config.k_max, distinct - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=config.n_init, random_state=config.seed).fit_predict(
            scaled
        )
        silhouette = _silhouette(scaled, labels, config)
        candidates[str(k)] = -1.0 if silhouette is None else silhouette
    if not candidates:
        return max(1, min(config.k_min, distinct)), candidates
    best = max(candidates, key=lambda k: (candidates[k], -int(k)))
    return int(best), candidates


def _silhouette(scaled: Matrix, labels: npt.NDArray[Any], config: ClustersConfig) -> float | None:
    from sklearn import config_context
    from sklearn.metrics import silhouette_score

    clusters = len(set(labels.tolist()))
    if not 2 <= clusters < len(scaled):  # the silhouette needs 2..n-1 clusters
        return None
    size = min(config.quality_sample_size, len(scaled))
    # Pairwise distances in small chunks: scikit-learn's default 1 GB of working memory
    # would take the process past its memory budget.
    with config_context(working_memory=SILHOUETTE_WORKING_MB):
        value = silhouette_score(scaled, labels, sample_size=size, random_state=config.seed)
    return round(float(value), 6)


def _stable_ids(
    log_centroids: Matrix, ranks: npt.NDArray[Any], previous: ClusterModel | None
) -> npt.NDArray[np.int64]:
    """Ids of the new clusters: the previous model's id of the centroid each is matched
    to, else (first model, or more clusters than before) new ids in value order."""
    k = len(log_centroids)
    ids = np.zeros(k, dtype=np.int64)
    if previous is None:
        ids[:] = ranks
        return ids
    from scipy.optimize import linear_sum_assignment

    before = previous.log_centroids()
    distance = np.linalg.norm(log_centroids[:, None, :] - before[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(distance)
    ids[rows] = np.asarray(previous.cluster_ids)[cols]
    unmatched = [index for index in np.argsort(ranks) if index not in set(rows.tolist())]
    next_id = max(previous.next_cluster_id, max(previous.cluster_ids) + 1)
    for index in unmatched:
        ids[index] = next_id
        next_id += 1
    return ids


def _profiles(
    sample: pd.DataFrame,
    labels: npt.NDArray[Any],
    log_centroids: Matrix,
    scores: Matrix,
    ranks: npt.NDArray[Any],
    ids: npt.NDArray[np.int64],
) -> list[ClusterProfile]:
    k = len(log_centroids)
    raw = sample[["recency_days", "frequency", "monetary"]].astype("float64")
    overall = raw.mean()
    names = _names(sample, labels, ranks, overall)
    profiles = []
    for index in range(k):
        members = raw[labels == index]
        means = members.mean()
        pattern, rfm_type = _pattern(means, overall)
        centroid = np.expm1(log_centroids[index])
        profiles.append(
            ClusterProfile(
                cluster_id=int(ids[index]),
                cluster_name=names[index],
                value_rank=int(ranks[index]),
                rfm_pattern=pattern,
                rfm_type=rfm_type,
                weighted_score=round(float(scores[index]), 6) + 0.0,  # never -0.0
                sample_customers=len(members),
                centroid_recency_days=round(float(centroid[0]), 2),
                centroid_frequency=round(float(centroid[1]), 3),
                centroid_monetary=round(float(centroid[2]), 2),
                mean_recency_days=round(float(means["recency_days"]), 2),
                mean_frequency=round(float(means["frequency"]), 3),
                mean_monetary=round(float(means["monetary"]), 2),
            )
        )
    return profiles


def _names(
    sample: pd.DataFrame, labels: npt.NDArray[Any], ranks: npt.NDArray[Any], overall: pd.Series
) -> list[str]:
    """Five clusters take the value classes in rank order; other k take their RFM type,
    numbered when two clusters share one."""
    k = len(ranks)
    if k == len(VALUE_CLASSES):
        return [VALUE_CLASSES[rank - 1] for rank in ranks]
    raw = sample[["recency_days", "frequency", "monetary"]].astype("float64")
    types = [_pattern(raw[labels == index].mean(), overall)[1] for index in range(k)]
    names = []
    for index in range(k):
        same = sorted(ranks[other] for other in range(k) if types[other] == types[index])
        suffix = f" {same.index(ranks[index]) + 1}" if len(same) > 1 else ""
        names.append(types[index] + suffix)
    return names


def _pattern(means: pd.Series, overall: pd.Series) -> tuple[str, str]:
    recent = bool(means["recency_days"] < overall["recency_days"])
    frequent = bool(means["frequency"] > overall["frequency"])
    spending = bool(means["monetary"] > overall["monetary"])
    # The 8 RFM types by (recent, frequent, high-spending) above the mean: the seed.
    found = next(
        row
        for row in seeds.rows("rfm_types")
        if (row["r_up"], row["f_up"], row["m_up"]) == (recent, frequent, spending)
    )
    return str(found["rfm_pattern"]), str(found["rfm_type"])
