"""The risk model at scale: applied once per group of customers its trees cannot tell
apart, and fitted on cut-offs sampled before their features are built; both give exactly
what the plain way gives."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.config import Settings
from pipeline.declarations import build_intermediate
from pipeline.demo.generate import generate
from pipeline.duck import connect, release
from pipeline.ingest.run import ingest_date
from pipeline.lifecycle import risk, tree_paths
from pipeline.scoring.run import score_date
from tests.support import with_paths


def test_values_between_the_same_thresholds_share_a_group() -> None:
    thresholds = [np.array([1.0, 2.0]), np.array([], dtype=np.float64)]
    # x <= 1 for 0.5 and 1.0; 1 < x <= 2 for 1.5 and 2.0; then 2.5; NaN apart.
    matrix = np.array(
        [[0.5, 7.0], [1.0, 8.0], [1.5, 9.0], [2.0, 7.0], [2.5, 7.0], [np.nan, 7.0], [1.0, np.nan]]
    )
    groups = tree_paths.distinct_paths(thresholds, matrix)
    assert groups is not None
    first, group = groups
    assert len(first) == 5
    assert group[0] == group[1] and group[2] == group[3]
    assert len({group[0], group[2], group[4], group[5], group[6]}) == 5
    assert (group[first] == np.arange(len(first))).all()


def test_too_many_thresholds_for_one_key_apply_the_model_to_every_row() -> None:
    thresholds = [np.arange(1000, dtype=np.float64)] * 8
    assert tree_paths.distinct_paths(thresholds, np.zeros((3, 8))) is None
    assert tree_paths.split_thresholds(object(), 8) is None


def _features(rng: np.random.Generator, rows: int) -> pa.Table:
    """lifecycle_features columns the model reads: whole days and counts (often equal
    between customers), amounts on a continuous scale, and missing values."""
    silence = rng.integers(0, 400, rows).astype(np.float64)
    gaps = np.round(rng.exponential(1.5, rows), 4)
    gaps[rng.random(rows) < 0.05] = np.nan
    return pa.table(
        {
            "days_since_last_purchase": silence,
            "window_purchase_days": rng.integers(0, 12, rows),
            "window_net_amount": pa.array(np.round(rng.gamma(2.0, 60.0, rows), 2)),
            "recent_purchase_days": rng.integers(0, 4, rows),
            "silence_in_gaps": gaps,
            "rhythm_percentile": np.round(rng.random(rows), 4),
            "returned_after_last_purchase": rng.random(rows) < 0.1,
            "recent_sale_amount": np.round(rng.gamma(1.0, 40.0, rows), 2),
            "recent_returned_amount": np.where(rng.random(rows) < 0.1, 10.0, 0.0),
        }
    )


@pytest.fixture(scope="module")
def model() -> risk.RiskModel:
    rng = np.random.default_rng(3)
    train = _features(rng, 4000)
    matrix = risk.feature_matrix(train)
    odds = 0.02 * matrix[:, 0] - 0.3 * matrix[:, 1] + rng.normal(0, 1, len(matrix))
    lost = (odds > np.median(odds)).astype(np.int64)
    estimator = risk._classifier(Settings(), len(lost)).fit(matrix, lost)
    return risk.RiskModel(
        version=date(2025, 1, 1),
        source="model",
        horizon_days=90,
        population_gap_days=30.0,
        danger_risk=0.6,
        danger_exit_risk=0.5,
        termination_risk=0.8,
        estimator=estimator,
    )


def test_the_grouped_risk_is_the_risk_of_every_customer_bit_for_bit(
    model: risk.RiskModel,
) -> None:
    base = _features(np.random.default_rng(11), 10_000)
    # The same customers with a cent more spent: most stay between the same thresholds.
    nudged = pc.add(base.column("window_net_amount"), 0.01)
    features = pa.concat_tables([base, base.set_column(2, "window_net_amount", nudged)])
    matrix = risk.feature_matrix(features)
    thresholds = tree_paths.split_thresholds(model.estimator, len(risk.FEATURES))
    assert thresholds is not None and all(len(values) for values in thresholds[:2])
    groups = tree_paths.distinct_paths(thresholds, matrix)
    assert groups is not None and 10_000 <= len(groups[0]) < len(matrix)
    one_by_one = model.estimator.predict_proba(matrix)[:, 1]
    assert np.array_equal(model.predict(features), one_by_one)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Three weeks of a small demo, ingested and scored (what a backtest cut-off reads)."""
    root = tmp_path_factory.mktemp("risk-sample")
    start = date(2025, 1, 1)
    generate(root, start=start, days=21, customers=300, seed=5)
    settings = with_paths(Settings(), root)
    for offset in range(21):
        day = start + timedelta(days=offset)
        ingest_date(settings, day)
        score_date(settings, day)
    return settings


def test_a_cut_off_sampled_first_learns_from_what_sampling_everyone_after_gives(
    scored: Settings, tmp_path: Path
) -> None:
    """The fit draws a cut-off's sample before building its features and labels (each
    customer's own): the examples are those of building them for everyone, sampled."""
    cutoff, day, horizon, n_cutoffs = date(2025, 1, 12), date(2025, 1, 21), 7, 20
    settings = scored.model_copy(
        update={"lifecycle": scored.lifecycle.model_copy(update={"sample_size": 1000})}
    )
    per_cutoff = 1000 // n_cutoffs
    con = connect(settings.duckdb, spill_dir=tmp_path / "spill")
    rhythm = risk._fit_rhythm(con, settings, day)
    con.register("gap_curve", rhythm.curve_table())
    sample = risk._sample(con, settings, cutoff, per_cutoff)
    assert sample is not None
    sampled = risk._examples(con, settings, cutoff, day, horizon, rhythm, per_cutoff, sample)
    built = con.execute("select count(*) from lifecycle_features").fetchall()[0][0]
    assert built == per_cutoff  # the features were built for the sample alone
    # Everyone first, as the fit did before: then the same order and limit.
    risk.build_features(con, settings, cutoff, rhythm.population_gap_days)
    con.execute("create or replace temp view cutoff_customers as select * from lifecycle_features")
    build_intermediate(
        con,
        settings,
        "lifecycle/risk_labels",
        {"cutoff_date": cutoff, "horizon_days": horizon, "known_by": day},
    )
    everyone = con.sql(
        "select lifecycle_features.*, risk_labels.no_purchase from lifecycle_features"
        " inner join risk_labels using (customer_id)"
        " order by hash(customer_id, $cutoff), customer_id",
        params={"cutoff": cutoff},
    ).to_arrow_table()
    release(con)
    assert everyone.num_rows > per_cutoff  # the sample is drawn, not everyone
    assert sampled.num_rows == per_cutoff
    assert sampled.equals(everyone.slice(0, per_cutoff))


# Sampled: no cut-off, the three newest (the oldest knows fewer customers), all of them.
@pytest.mark.parametrize(("sample_size", "sampled"), [(200_000, 0), (150, 3), (40, 4)])
def test_the_cut_offs_customer_days_read_once_give_each_cut_offs_own_examples(
    scored: Settings, tmp_path: Path, sample_size: int, sampled: int
) -> None:
    """The fit reads the customer days of every cut-off's windows once, for the sampled
    customers, and each cut-off's queries keep their own window by their date filters:
    the examples are those read from each cut-off's declared partitions, with everyone
    (the default sample), with some cut-offs sampled and with all of them."""
    day, horizon = date(2025, 1, 21), 4
    cutoffs = [date(2025, 1, 17), date(2025, 1, 12), date(2025, 1, 8), date(2025, 1, 4)]
    settings = scored.model_copy(
        update={"lifecycle": scored.lifecycle.model_copy(update={"sample_size": sample_size})}
    )
    per_cutoff = max(1, sample_size // len(cutoffs))
    con = connect(settings.duckdb, spill_dir=tmp_path / "spill")
    try:
        rhythm = risk._fit_rhythm(con, settings, day)
        con.register("gap_curve", rhythm.curve_table())
        samples = [risk._sample(con, settings, cutoff, per_cutoff) for cutoff in cutoffs]
        assert sum(sample is not None for sample in samples) == sampled
        own = [
            risk._examples(con, settings, cutoff, day, horizon, rhythm, per_cutoff, sample)
            for cutoff, sample in zip(cutoffs, samples, strict=True)
        ]
        risk._read_cutoff_days(con, settings, day, horizon, cutoffs, samples)
        shared = [
            risk._examples(
                con, settings, cutoff, day, horizon, rhythm, per_cutoff, sample, risk.SHARED_DAYS
            )
            for cutoff, sample in zip(cutoffs, samples, strict=True)
        ]
        read_once = con.execute("select count(*) from cutoff_customer_days").fetchall()[0][0]
    finally:
        release(con)
    assert all(table.num_rows > 0 for table in own)
    assert sum(table.column("no_purchase").to_pylist().count(True) for table in own) > 0
    for cutoff, mine, theirs in zip(cutoffs, own, shared, strict=True):
        assert theirs.equals(mine), cutoff
    assert read_once > 0
