"""The P(alive) model in force (pipeline.lifecycle.alive): degenerate fits rejected, fits
in weeks bound to the lifecycle SQL in days, expected purchases in days.

Data: CDNOW_sample.txt shipped with lifetimes (2,357 customers of the 1997 Q1 cohort,
their purchases to June 1998), as purchase days in a real DuckDB, backfilled as of a
date: the lake's customer_segments and customer_days partitions as the scoring step
leaves them for alive_model and the lifecycle's features.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from pipeline.config import LifecycleConfig, Settings
from pipeline.lake import AS_OF_KEY, Lake, write_partition
from pipeline.lifecycle import alive, btyd, judge
from pipeline.lifecycle.alive import AliveModel, AliveStore, alive_model
from pipeline.lifecycle.rhythm import Rhythm, kaplan_meier
from pipeline.lifecycle.risk import build_features
from pipeline.lifecycle.run import _params
from pipeline.scoring.inputs import date_range
from tests.deploy.support import (
    REPO,
    environment,
    interpolate_tree,
    load_compose,
    read_env_file,
)
from tests.support import with_paths

with warnings.catch_warnings():
    # lifetimes 0.11.3 sets pandas' mode.chained_assignment on import, deprecated in pandas 3.
    warnings.simplefilter("ignore", DeprecationWarning)
    import lifetimes
    from lifetimes import ModifiedBetaGeoFitter

Array = npt.NDArray[np.float64]
CDNOW_SAMPLE = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
# 3 weeks in: 35 repeat buyers, the MLE runs to a -> 0 (nobody ever drops out).
THREE_WEEKS = date(1997, 1, 21)
# 5 and 6 weeks in: 9x and 14x repeat buyers; the first fit is interior, the second
# runs to a -> 0 again.
FIVE_WEEKS, SIX_WEEKS = date(1997, 2, 4), date(1997, 2, 11)
# A quarter in: every customer of the cohort has bought, ~500 repeat buyers.
QUARTER = date(1997, 3, 31)


@pytest.fixture(scope="module")
def purchases() -> pd.DataFrame:
    """One row per (customer, purchase day)."""
    lines = pd.read_csv(
        CDNOW_SAMPLE,
        sep=r"\s+",
        header=None,
        names=["customer_id", "master_id", "day", "quantity", "amount"],
        dtype={"customer_id": str, "day": str},
    )
    assert lines["customer_id"].nunique() == 2357
    lines["day"] = pd.to_datetime(lines["day"], format="%Y%m%d").dt.date
    days = lines.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    return days.rename(columns={"day": "activity_date"})


def _connect(purchases: pd.DataFrame, as_of: date, settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB with the purchase days, and the lake's customer_segments partition of
    ``as_of`` as scoring writes it (all first purchases inside the scoring window)."""
    con = duckdb.connect()
    con.register("purchase_days", purchases)
    params = {"as_of_date": as_of, "window_days": settings.scoring.window_days}
    segments = con.sql(
        """
        select
            customer_id,
            min(activity_date) as first_purchase_date,
            max(activity_date) as last_purchase_date,
            count(*)::integer as frequency,
            ($as_of_date::date - min(activity_date))::integer as tenure_days,
            sum(amount)::decimal(18, 2) as monetary,
            0::decimal(18, 2) as returned_amount,
            'none' as segment,
            0 as cluster_id,
            'none' as cluster_name,
        from purchase_days
        where activity_date <= $as_of_date::date
            and activity_date > $as_of_date::date - $window_days::integer
        group by customer_id
        order by customer_id
        """,
        params=params,
    )
    lake = Lake(settings.paths.lake)
    write_partition(segments, lake.partition_file("customer_segments", as_of, AS_OF_KEY))
    return con


def _write_customer_days(
    con: duckdb.DuckDBPyConnection, settings: Settings, days: list[date]
) -> None:
    """customer_days partitions of ``days``: each purchase day exported on its day."""
    lake = Lake(settings.paths.lake)
    for day in days:
        rows = con.sql(
            """
            select
                customer_id,
                activity_date,
                amount::decimal(18, 2) as sale_amount,
                0::decimal(18, 2) as returned_amount,
                0 as return_lines,
                1 as sale_lines,
                amount::decimal(18, 2) as net_amount,
            from purchase_days
            where activity_date = $day::date
            order by customer_id
            """,
            params={"day": day},
        )
        write_partition(rows, lake.partition_file("customer_days", day, "export_date"))


def _lifecycle_params(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date
) -> dict[str, Any]:
    """The parameters the lifecycle step binds (pipeline/lifecycle/run.py)."""
    params = _params(settings, as_of, first_run=True)
    return params


def _in_force(
    purchases: pd.DataFrame, settings: Settings, as_of: date, **kwargs: Any
) -> AliveModel | None:
    con = _connect(purchases, as_of, settings)
    try:
        return alive_model(con, settings, as_of, _lifecycle_params(con, settings, as_of), **kwargs)
    finally:
        con.close()


def _customers_in_days(purchases: pd.DataFrame, as_of: date) -> tuple[Array, Array, Array]:
    """frequency (repeat purchase days), recency and T in days, one row per customer."""
    seen = purchases[purchases["activity_date"] <= as_of]
    grouped = seen.groupby("customer_id")["activity_date"].agg(["min", "max", "count"])
    recency = np.array(
        [(last - first).days for first, last in zip(grouped["min"], grouped["max"], strict=True)]
    )
    age = np.array([(as_of - first).days for first in grouped["min"]])
    return (
        (grouped["count"] - 1).to_numpy(dtype=np.float64),
        recency.astype(np.float64),
        age.astype(np.float64),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return with_paths(Settings(), tmp_path)


# --- Degenerate fits are never in force -----------------------------------------------


def test_a_degenerate_fit_is_rejected_recorded_and_logged(
    purchases: pd.DataFrame, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.lifecycle.alive"):
        model = _in_force(purchases, settings, THREE_WEEKS)
    assert model is None  # nothing usable yet: p_alive stays null
    store = AliveStore(settings.paths.models)
    assert not store.path(THREE_WEEKS).exists()
    assert store.newest_on_or_before(THREE_WEEKS) is None
    rejected = store.load_rejected(THREE_WEEKS)
    assert rejected.time_unit == "weeks"
    params = rejected.params
    # The symptom: a converged fit with a ~ 0.
    assert params.converged and params.degenerate and not params.usable
    assert params.a < 1e-4
    assert params.repeat_buyers == 35
    assert params.degenerate_reason is not None
    assert "dropout collapsed to 0" in params.degenerate_reason
    assert "too few repeat buyers: 35 customers" in params.degenerate_reason
    stored = json.loads(store.rejected_path(THREE_WEEKS).read_text(encoding="utf-8"))
    assert stored["params"]["degenerate_reason"] == params.degenerate_reason
    [record] = [r for r in caplog.records if r.name == "pipeline.lifecycle.alive"]
    assert record.levelno == logging.WARNING
    assert "rejected" in record.getMessage() and "dropout collapsed to 0" in record.getMessage()
    assert "none (p_alive null)" in record.getMessage()


def test_the_previous_usable_version_stays_in_force(
    purchases: pd.DataFrame, settings: Settings
) -> None:
    # 5 weeks in, an interior fit; accepted here with a lower minimum of repeat buyers.
    first = _in_force(purchases, settings, FIVE_WEEKS, min_repeat_buyers=50)
    assert first is not None and first.version == FIVE_WEEKS and first.params.usable
    assert first.params.repeat_buyers >= 50
    store = AliveStore(settings.paths.models)
    assert store.load(FIVE_WEEKS) == first
    # A week later (refit due) the fit runs to a -> 0 again: the 5-week model stays.
    later = _in_force(purchases, settings, SIX_WEEKS, min_repeat_buyers=50)
    assert later == first
    rejected = store.load_rejected(SIX_WEEKS).params
    assert rejected.repeat_buyers >= 100 and rejected.degenerate_reason is not None
    assert "dropout collapsed to 0" in rejected.degenerate_reason
    assert not store.path(SIX_WEEKS).exists()
    # Re-running the date gives the same answer and the same record.
    before = store.rejected_path(SIX_WEEKS).read_bytes()
    assert _in_force(purchases, settings, SIX_WEEKS, min_repeat_buyers=50) == first
    assert store.rejected_path(SIX_WEEKS).read_bytes() == before


def test_a_rejected_fit_is_retried_on_the_schedule_not_every_day(
    purchases: pd.DataFrame, settings: Settings
) -> None:
    assert _in_force(purchases, settings, THREE_WEEKS) is None  # rejected
    store = AliveStore(settings.paths.models)
    every = settings.lifecycle.alive_refit_every_days
    assert every == 7
    for offset in range(1, every):
        day = THREE_WEEKS + timedelta(days=offset)
        assert _in_force(purchases, settings, day) is None
        assert not store.rejected_path(day).exists(), f"refitted {offset} days after a try"
    due = THREE_WEEKS + timedelta(days=every)
    _in_force(purchases, settings, due, min_repeat_buyers=50)
    assert store.path(due).exists() or store.rejected_path(due).exists()


def test_p_alive_refits_on_its_schedule_under_the_compose_settings(
    purchases: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-compose.yml's settings parse, and P(alive) keeps its own schedule under
    them."""
    dotenv = {k: v or "s3cret" for k, v in read_env_file(REPO / ".env.example").items()}
    scheduler = interpolate_tree(load_compose(), dotenv)["services"]["airflow-scheduler"]
    for key, value in environment(scheduler).items():
        if key.startswith("RFM_") and not key.startswith("RFM_PATHS__"):
            monkeypatch.setenv(key, value)
    settings = with_paths(Settings(), tmp_path)
    first = _in_force(purchases, settings, FIVE_WEEKS, min_repeat_buyers=50)
    assert first is not None and first.version == FIVE_WEEKS
    later = QUARTER
    refitted = _in_force(purchases, settings, later, min_repeat_buyers=50)
    store = AliveStore(settings.paths.models)
    assert store.path(later).exists() or store.rejected_path(later).exists()
    assert refitted is not None


def _with_schedules(settings: Settings, *, risk: int, alive: int) -> Settings:
    lifecycle = LifecycleConfig.model_validate(
        settings.lifecycle.model_dump()
        | {"refit_every_days": risk, "alive_refit_every_days": alive}
    )
    return settings.model_copy(update={"lifecycle": lifecycle})


def test_p_alive_follows_its_own_setting_not_the_risk_models(
    purchases: pd.DataFrame, tmp_path: Path
) -> None:
    # The risk model's schedule off: P(alive) still refits on its own.
    settings = _with_schedules(with_paths(Settings(), tmp_path / "a"), risk=0, alive=7)
    first = _in_force(purchases, settings, FIVE_WEEKS, min_repeat_buyers=50)
    later = _in_force(purchases, settings, QUARTER, min_repeat_buyers=50)
    assert first is not None and first.version == FIVE_WEEKS
    assert later is not None and later.version == QUARTER
    # Its own schedule off (the risk model's daily): the first usable fit stays, and no
    # later date fits again.
    settings = _with_schedules(with_paths(Settings(), tmp_path / "b"), risk=1, alive=0)
    first = _in_force(purchases, settings, FIVE_WEEKS, min_repeat_buyers=50)
    assert first is not None and first.version == FIVE_WEEKS
    assert _in_force(purchases, settings, QUARTER, min_repeat_buyers=50) == first
    store = AliveStore(settings.paths.models)
    assert (store.versions(), store.rejected_versions()) == ([FIVE_WEEKS], [])


def test_with_its_schedule_off_a_rejected_fit_is_retried_daily_until_one_is_usable(
    purchases: pd.DataFrame, settings: Settings
) -> None:
    settings = _with_schedules(settings, risk=7, alive=0)
    assert _in_force(purchases, settings, THREE_WEEKS) is None  # rejected
    next_day = THREE_WEEKS + timedelta(days=1)
    assert _in_force(purchases, settings, next_day) is None  # tried again: rejected again
    store = AliveStore(settings.paths.models)
    assert store.rejected_versions() == [THREE_WEEKS, next_day]
    assert store.versions() == []


def test_a_healthy_fit_is_in_force_in_weeks(purchases: pd.DataFrame, settings: Settings) -> None:
    model = _in_force(purchases, settings, QUARTER)
    assert model is not None and model.version == QUARTER and model.time_unit == "weeks"
    params = model.params
    assert params.usable and params.degenerate_reason is None
    assert params.repeat_buyers >= btyd.MIN_REPEAT_BUYERS
    # Weekly alpha of the CDNOW cohort is ~4 to 7 (section 5 of Fader, Hardie and Lee).
    assert 3.0 < params.alpha < 8.0
    assert not AliveStore(settings.paths.models).rejected_path(QUARTER).exists()
    # Fitted in days, the same maximum: alpha times 7, r, a, b the same.
    x, tx, T = _customers_in_days(purchases, QUARTER)
    in_days = btyd.fit(x, tx, T)
    assert in_days.alpha == pytest.approx(7 * params.alpha, rel=1e-5)
    for name in ("r", "a", "b"):
        assert getattr(in_days, name) == pytest.approx(getattr(params, name), rel=1e-5), name


def test_a_stored_degenerate_version_is_skipped(settings: Settings) -> None:
    """Versions stored before degeneracy was checked (no degenerate_reason) are judged by
    their parameters on load; a degenerate one is never in force."""
    store = AliveStore(settings.paths.models)
    good = btyd.Params(0.5, 40.0, 0.9, 1.6, converged=True, n_customers=1000, repeat_buyers=400)
    store.save(AliveModel(date(2025, 1, 1), good, "days"))
    legacy = {
        "params": {"r": 6000.0, "alpha": 9.0e5, "a": 1e-7, "b": 3.0, "model": "mbgnbd",
                   "log_likelihood": -100.0, "n_customers": 40, "converged": True},
        "time_unit": "days",
    }  # fmt: skip
    path = store.path(date(2025, 1, 8))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(legacy), encoding="utf-8")
    loaded = store.load(date(2025, 1, 8)).params
    assert loaded.degenerate_reason is not None
    assert "purchase rates collapsed" in loaded.degenerate_reason
    assert "dropout collapsed to 0" in loaded.degenerate_reason
    in_force = store.newest_on_or_before(date(2025, 1, 10))
    assert in_force is not None and in_force.version == date(2025, 1, 1)
    with pytest.raises(ValueError, match="refusing to save an unusable"):
        store.save(AliveModel(date(2025, 1, 15), loaded, "days"))


# --- Weeks in the model, days in the SQL ----------------------------------------------


def test_lifecycle_sql_p_alive_equals_btyd_on_the_weekly_params(
    purchases: pd.DataFrame, settings: Settings
) -> None:
    con = _connect(purchases, QUARTER, settings)
    try:
        params = _lifecycle_params(con, settings, QUARTER)
        model = alive_model(con, settings, QUARTER, params)
        assert model is not None and model.time_unit == "weeks"
        assert model.sql_params()["alive_alpha"] == 7 * model.params.alpha
        # The lifecycle step's own path: its features, then P(alive) on their day counts.
        con.register("gap_curve", Rhythm(30.0, *[kaplan_meier([], [])] * 2, False).curve_table())
        recent = settings.lifecycle.recent_days
        _write_customer_days(
            con, settings, date_range(QUARTER - timedelta(days=recent - 1), QUARTER)
        )
        build_features(con, settings, QUARTER, 30.0)
        features = con.table("lifecycle_features").to_arrow_table()
        lifecycle = features.to_pandas()
        lifecycle["p_alive"] = judge.p_alive(model, features)
    finally:
        con.close()
    lifecycle = lifecycle.sort_values("customer_id")
    x, tx, T = _customers_in_days(purchases, QUARTER)  # sorted by customer_id too
    assert len(lifecycle) == len(x) == 2357
    assert np.array_equal(lifecycle["observed_gaps"].to_numpy(), x)
    expected = btyd.p_alive(model.params, x, tx / 7, T / 7)
    # customer_lifecycle rounds p_alive to 4 decimals.
    np.testing.assert_allclose(
        lifecycle["p_alive"].to_numpy(dtype=np.float64), expected, atol=5.01e-5, rtol=0
    )
    assert np.ptp(expected) > 0.5  # customers far apart: a wrong unit would show
    np.testing.assert_allclose(alive.p_alive(model, x, tx, T), expected, rtol=1e-12)
    # Unrounded, through btyd's own SQL expression over day counts.
    with duckdb.connect() as con:
        con.register("customers", pd.DataFrame({"frequency": x, "recency": tx, "T": T}))
        per_day = {
            name.removeprefix("alive_"): value
            for name, value in model.sql_params().items()
            if name != "has_alive_model"
        }
        got = con.execute(
            f"select {btyd.sql_p_alive_expression()} as p from customers", per_day
        ).fetchnumpy()["p"]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


# --- Expected purchases in days --------------------------------------------------------


@pytest.mark.parametrize("horizon_days", [1.0, 30.0, 90.0, 365.0])
def test_expected_purchases_in_days_match_lifetimes(
    purchases: pd.DataFrame, horizon_days: float
) -> None:
    model = AliveModel(QUARTER, btyd.Params(0.5306, 4.477, 1.208, 1.671), "weeks")
    x, tx, T = _customers_in_days(purchases, date(1998, 6, 30))
    fitter = ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(model.params.sql_parameters())
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(
        horizon_days / 7, x, tx / 7, T / 7
    )
    ours = alive.expected_purchases(model, x, tx, T, horizon_days)
    assert ours.shape == x.shape
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=np.float64), rtol=1e-6, atol=0)
    # The same in a model fitted in days (alpha x 7): the unit is converted, not assumed.
    in_days = AliveModel(QUARTER, btyd.Params(0.5306, 4.477 * 7, 1.208, 1.671), "days")
    np.testing.assert_allclose(
        alive.expected_purchases(in_days, x, tx, T, horizon_days), ours, rtol=1e-9
    )


def test_expected_purchases_of_a_million_customers_are_vectorized() -> None:
    """1,000,000 customers in days in well under 10 s (measured ~0.5 s): no per-row Python."""
    rng = np.random.default_rng(5)
    n = 1_000_000
    T = np.round(rng.uniform(0, 365, n))
    x = np.where(rng.random(n) < 0.5, 0.0, rng.integers(1, 60, n).astype(np.float64))
    tx = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T), 0.0)
    x = np.where(tx > 0, x, 0.0)
    model = AliveModel(QUARTER, btyd.Params(0.5306, 4.477, 1.208, 1.671), "weeks")
    start = time.perf_counter()
    expected = alive.expected_purchases(model, x, tx, T, 90.0)
    seconds = time.perf_counter() - start
    assert expected.shape == (n,) and np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert seconds < 10.0, f"{seconds:.1f} s for 1M customers"
    sample = rng.choice(n, 1000, replace=False)
    np.testing.assert_allclose(
        expected[sample],
        alive.expected_purchases(model, x[sample], tx[sample], T[sample], 90.0),
        rtol=1e-12,
    )


def test_an_unknown_time_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="time_unit must be one of days, weeks"):
        AliveModel(QUARTER, btyd.Params(0.5, 4.0, 1.0, 1.5), "months")
