"""BG/NBD and MBG/NBD (pipeline.lifecycle.btyd) checked against published figures,
against ``lifetimes`` (a test-only dependency), against customers simulated from the
models themselves, and, for the SQL form of P(alive), against a real DuckDB.

CDNOW: the 2,357-customer summary shipped with lifetimes (frequency, recency, T in weeks,
the data of Fader, Hardie and Lee 2005).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy.special import hyp2f1

from pipeline.lifecycle import btyd

with warnings.catch_warnings():
    # lifetimes 0.11.3 sets pandas' mode.chained_assignment on import, deprecated in pandas 3.
    warnings.simplefilter("ignore", DeprecationWarning)
    import lifetimes
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

Array = npt.NDArray[np.float64]
# lifetimes.datasets needs pkg_resources (gone from setuptools): read the file directly.
CDNOW = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary.csv"
# The same customers' purchases (customer id, date, quantity, amount), January 1997 on.
CDNOW_SAMPLE = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
# Fader, Hardie and Lee (2005), "Counting your customers the easy way", section 5.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
HORIZONS = [0.5, 1.0, 10.0, 39.0, 52.0, 104.0]


@pytest.fixture(scope="module")
def cdnow() -> tuple[Array, Array, Array]:
    data = pd.read_csv(CDNOW, index_col=0)
    assert len(data) == 2357
    return (
        data["frequency"].to_numpy(dtype=np.float64),
        data["recency"].to_numpy(dtype=np.float64),
        data["T"].to_numpy(dtype=np.float64),
    )


@pytest.fixture(scope="module")
def fitted(cdnow: tuple[Array, Array, Array]) -> dict[str, btyd.Params]:
    x, tx, T = cdnow
    return {model: btyd.fit(x, tx, T, model=model) for model in btyd.MODELS}


def _lifetimes_fitter(
    params: btyd.Params,
) -> BetaGeoFitter | ModifiedBetaGeoFitter:
    """A lifetimes fitter holding ``params`` (without fitting it)."""
    fitter = ModifiedBetaGeoFitter() if params.model == "mbgnbd" else BetaGeoFitter()
    fitter.params_ = pd.Series(params.sql_parameters())
    return fitter


# --- Published estimates -------------------------------------------------------------


def test_bgnbd_on_cdnow_reproduces_fader_hardie_lee_2005(fitted: dict[str, btyd.Params]) -> None:
    params = fitted["bgnbd"]
    assert params.model == "bgnbd"
    assert params.converged
    assert params.n_customers == 2357
    # Published to 3 decimals (parameters) and 1 decimal (log-likelihood): agree to that.
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(params, name) == pytest.approx(published, abs=0.0005), name
    assert params.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.05)


# --- lifetimes -----------------------------------------------------------------------


def test_mbgnbd_on_cdnow_matches_lifetimes(
    cdnow: tuple[Array, Array, Array], fitted: dict[str, btyd.Params]
) -> None:
    x, tx, T = cdnow
    ours = fitted["mbgnbd"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ModifiedBetaGeoFitter().fit(x, tx, T)
    assert ours.converged
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(theirs.params_[name], rel=1e-4), name
    # Both found the same maximum: ours is not lower than the likelihood at theirs.
    theirs_params = btyd.Params(**theirs.params_.to_dict(), model="mbgnbd")
    theirs_ll = float(btyd.log_likelihood(theirs_params, x, tx, T).sum())
    assert ours.log_likelihood >= theirs_ll - 1e-6
    assert ours.log_likelihood == pytest.approx(theirs_ll, abs=1e-3)

    # Each fit's own predictions: ours from our parameters, lifetimes' from its own.
    np.testing.assert_allclose(
        btyd.p_alive(ours, x, tx, T), theirs.conditional_probability_alive(x, tx, T), atol=1e-4
    )
    for t in HORIZONS:
        np.testing.assert_allclose(
            btyd.expected_purchases(ours, t, x, tx, T),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
            rtol=1e-4,
            atol=1e-4,
            err_msg=f"t={t}",
        )


@pytest.mark.parametrize("model", btyd.MODELS)
def test_same_parameters_give_lifetimes_predictions(
    model: btyd.Model, cdnow: tuple[Array, Array, Array], fitted: dict[str, btyd.Params]
) -> None:
    x, tx, T = cdnow
    f = fitted[model]
    params = btyd.Params(f.r, f.alpha, f.a, f.b, model)  # parameters only, no fit fields
    theirs = _lifetimes_fitter(params)
    np.testing.assert_allclose(
        btyd.p_alive(params, x, tx, T),
        theirs.conditional_probability_alive(x, tx, T),
        rtol=1e-12,
        atol=1e-14,
    )
    for t in HORIZONS:
        np.testing.assert_allclose(
            btyd.expected_purchases(params, t, x, tx, T),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
            rtol=1e-10,
            atol=1e-13,
            err_msg=f"t={t}",
        )


# --- One-time buyers -----------------------------------------------------------------


def test_one_time_buyers_are_always_alive_under_bgnbd_but_not_mbgnbd(
    fitted: dict[str, btyd.Params],
) -> None:
    ages = np.array([0.0, 1.0, 5.0, 20.0, 52.0, 104.0, 520.0])
    zeros = np.zeros_like(ages)
    assert np.all(btyd.p_alive(fitted["bgnbd"], zeros, zeros, ages) == 1.0)

    mbg = fitted["mbgnbd"]
    alive = btyd.p_alive(mbg, zeros, zeros, ages)
    assert np.all(alive < 1.0)
    assert np.all(np.diff(alive) < 0)  # the longer since the first purchase, the less alive
    # Right after the first purchase: survived the dropout coin with mean probability a/(a+b).
    assert alive[0] == pytest.approx(mbg.b / (mbg.a + mbg.b), rel=1e-12)
    # And their expected purchases fall with T too.
    assert np.all(np.diff(btyd.expected_purchases(mbg, 52.0, zeros, zeros, ages)) < 0)


# --- Simulated customers -------------------------------------------------------------


def _simulate(
    params: btyd.Params, n: int, seed: int, horizon: float
) -> tuple[Array, Array, Array, npt.NDArray[np.bool_], Array]:
    """Customers drawn from the model itself: (x, t_x, T), alive at T, purchases in (T, T+horizon]."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    # Repeat purchases made before dropping out for good: MBG/NBD may drop out right after
    # the first purchase (0 repeat purchases), BG/NBD only after a repeat purchase.
    lifetime = rng.geometric(dropout) - (1 if params.model == "mbgnbd" else 0)
    T = rng.uniform(26.0, 78.0, n)
    arrivals = rng.poisson(rate * T)  # of the Poisson process, ignoring dropout
    x = np.minimum(lifetime, arrivals)
    # The x-th of `arrivals` uniform arrival times in [0, T].
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    alive = lifetime > arrivals  # dropout happens right after the lifetime-th purchase
    future = np.where(alive, np.minimum(rng.poisson(rate * horizon), lifetime - arrivals), 0)
    return x.astype(np.float64), tx, T, alive, future.astype(np.float64)


@pytest.mark.parametrize("model", btyd.MODELS)
def test_fit_recovers_the_parameters_of_simulated_customers(model: btyd.Model) -> None:
    true = btyd.Params(0.5, 6.0, 0.9, 1.6, model)
    x, tx, T, _, _ = _simulate(true, 20_000, seed=0, horizon=26.0)
    params = btyd.fit(x, tx, T, model=model)
    assert params.converged
    for name in ("r", "alpha", "a", "b"):
        assert getattr(params, name) == pytest.approx(getattr(true, name), rel=0.1), name


@pytest.mark.parametrize("model", btyd.MODELS)
def test_p_alive_and_expected_purchases_are_calibrated_on_simulated_customers(
    model: btyd.Model,
) -> None:
    """In each tenth of customers ranked by the prediction, the mean prediction (true
    parameters) is within 4 standard errors of what the simulated customers did."""
    params = btyd.Params(0.5, 6.0, 0.9, 1.6, model)
    horizon = 26.0
    x, tx, T, alive, future = _simulate(params, 20_000, seed=1, horizon=horizon)
    predicted_alive = btyd.p_alive(params, x, tx, T)
    predicted_future = btyd.expected_purchases(params, horizon, x, tx, T)
    for chunk in np.array_split(np.argsort(predicted_alive, kind="stable"), 10):
        p = predicted_alive[chunk]
        error = math.sqrt(float(np.sum(p * (1 - p)))) / len(chunk)
        assert abs(alive[chunk].mean() - p.mean()) <= 4 * error + 1e-9
    for chunk in np.array_split(np.argsort(predicted_future, kind="stable"), 10):
        error = float(future[chunk].std()) / math.sqrt(len(chunk))
        assert abs(future[chunk].mean() - predicted_future[chunk].mean()) <= 4 * error + 1e-9


# --- Degenerate fits ------------------------------------------------------------------


@pytest.mark.parametrize("model", btyd.MODELS)
def test_cdnow_fits_are_usable(model: btyd.Model, fitted: dict[str, btyd.Params]) -> None:
    params = fitted[model]
    assert params.degenerate_reason is None and not params.degenerate
    assert params.usable
    assert params.repeat_buyers == 2357 - 1411  # all but the one-time buyers


def _cdnow_in_weeks_as_of(as_of: str) -> tuple[Array, Array, Array]:
    """CDNOW_sample's customers as of the start of ``as_of``: x, t_x, T in weeks."""
    lines = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, usecols=[0, 2], names=["id", "day"])
    days = pd.to_datetime(lines["day"].astype(str), format="%Y%m%d")
    seen = pd.DataFrame({"id": lines["id"], "day": days})[days < pd.Timestamp(as_of)]
    by = seen.drop_duplicates().groupby("id")["day"].agg(["min", "max", "count"])
    end = pd.Timestamp(as_of)
    return (
        (by["count"] - 1).to_numpy(dtype=np.float64),
        ((by["max"] - by["min"]).dt.days / 7).to_numpy(dtype=np.float64),
        ((end - by["min"]).dt.days / 7).to_numpy(dtype=np.float64),
    )


def test_the_first_three_weeks_of_cdnow_are_flagged_degenerate() -> None:
    """The issue's case: a converged fit with a -> 0 (nobody ever drops out)."""
    x, tx, T = _cdnow_in_weeks_as_of("1997-01-22")
    assert int((x > 0).sum()) == 35
    params = btyd.fit(x, tx, T)
    assert params.converged  # converged says nothing of this
    assert params.a < 1e-4 and params.a / (params.a + params.b) < btyd.DROPOUT_MEAN_BOUND
    assert params.degenerate and not params.usable
    assert params.repeat_buyers == 35
    assert params.degenerate_reason is not None
    assert "too few repeat buyers: 35 customers with frequency > 0, fewer than 100" in (
        params.degenerate_reason
    )
    assert "dropout collapsed to 0" in params.degenerate_reason
    # Without the minimum of repeat buyers, the collapse alone flags it.
    alone = btyd.fit(x, tx, T, min_repeat_buyers=0)
    assert alone.degenerate_reason is not None
    assert alone.degenerate_reason.startswith("dropout collapsed to 0")
    # Two months in, the same cohort fits well.
    healthy = btyd.fit(*_cdnow_in_weeks_as_of("1997-03-01"))
    assert healthy.usable and healthy.repeat_buyers >= btyd.MIN_REPEAT_BUYERS


def test_a_handful_of_new_customers_run_to_the_boundary() -> None:
    """Five customers a few days old: r and alpha run off together (every customer the
    same rate) and a to 0, yet the optimizer reports convergence."""
    params = btyd.fit([1, 0, 0, 2, 0], [2.0, 0.0, 0.0, 3.0, 0.0], [4.0, 5.0, 3.0, 5.0, 2.0])
    assert params.converged and not params.usable
    assert params.r > 1e3 and params.alpha > 1e3
    reason = btyd.degeneracy(params, min_repeat_buyers=0)
    assert reason is not None
    assert reason.startswith("purchase rates collapsed to one value")
    assert "dropout collapsed to 0" in reason


def _fit_like(r: float, a: float, b: float, **kwargs: object) -> btyd.Params:
    fields: dict[str, object] = {"converged": True, "n_customers": 1000, "repeat_buyers": 400}
    return btyd.Params(r, 10.0, a, b, **(fields | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (_fit_like(0.5, 0.9, 1.6), None),
        (_fit_like(99.0, 0.9, 1.6), None),  # 1/sqrt(99) = 0.1005
        (_fit_like(101.0, 0.9, 1.6), "purchase rates collapsed to one value"),
        (_fit_like(0.5, 0.0011, 1.0), None),
        (_fit_like(0.5, 0.0009, 1.0), "dropout collapsed to 0"),
        (_fit_like(0.5, 1.0, 0.0011), None),
        (_fit_like(0.5, 1.0, 0.0009), "dropout collapsed to 1"),
        # a + b large but the mean small: p still varies (coefficient of variation ~1).
        (_fit_like(0.5, 1.0, 99.0), None),
        (_fit_like(0.5, 5.0e5, 3.5e7), "dropout probabilities collapsed to one value"),
        (_fit_like(0.5, 3.5e7, 5.0e5), "dropout probabilities collapsed to one value"),
        (_fit_like(0.5, 0.9, 1.6, converged=False), "did not converge"),
        (_fit_like(0.5, 0.9, 1.6, repeat_buyers=99), "too few repeat buyers: 99"),
        (_fit_like(0.5, 0.9, 1.6, repeat_buyers=100), None),
    ],
)
def test_degeneracy_criteria_at_their_bounds(params: btyd.Params, reason: str | None) -> None:
    got = btyd.degeneracy(params)
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason)


def test_degeneracy_lists_every_reason_and_usable_needs_both() -> None:
    reason = btyd.degeneracy(_fit_like(6000.0, 1e-7, 2.0, converged=False, repeat_buyers=3))
    assert reason is not None
    assert [part.split(":")[0].split(" (")[0] for part in reason.split("; ")] == [
        "did not converge",
        "too few repeat buyers",
        "purchase rates collapsed to one value",
        "dropout collapsed to 0",
    ]
    by_hand = btyd.Params(0.5, 6.0, 0.9, 1.6)  # not a fit: not degenerate, not usable either
    assert not by_hand.degenerate and not by_hand.usable
    with pytest.raises(ValueError, match="min_repeat_buyers must be a whole number >= 0"):
        btyd.fit([1, 0], [2.0, 0.0], [5.0, 5.0], min_repeat_buyers=-1)
    with pytest.raises(ValueError, match="repeat_buyers must be between 0 and n_customers"):
        btyd.Params(0.5, 6.0, 0.9, 1.6, n_customers=10, repeat_buyers=11)
    with pytest.raises(ValueError, match="degenerate_reason must be None or say why"):
        btyd.Params(0.5, 6.0, 0.9, 1.6, degenerate_reason=" ")


# --- Numerics ------------------------------------------------------------------------


@pytest.mark.parametrize("model", btyd.MODELS)
def test_expected_purchases_start_at_the_posterior_rate(model: btyd.Model) -> None:
    """For a small t, E ~ P(alive) * t * (r + x) / (alpha + T): the posterior mean rate.

    Includes frequent buyers in days, where the published form of the formula overflows.
    """
    params = btyd.Params(0.6, 40.0, 0.8, 3.0, model)
    x = np.array([0.0, 1.0, 5.0, 50.0, 300.0, 300.0])
    tx = np.array([0.0, 3.0, 100.0, 300.0, 360.0, 100.0])
    T = np.array([10.0, 30.0, 200.0, 365.0, 365.0, 365.0])
    t = 1e-6
    rate = btyd.p_alive(params, x, tx, T) * (params.r + x) / (params.alpha + T)
    np.testing.assert_allclose(btyd.expected_purchases(params, t, x, tx, T), rate * t, rtol=1e-5)
    longer = btyd.expected_purchases(params, np.array([[1.0], [30.0], [365.0], [3650.0]]), x, tx, T)
    assert np.all(np.isfinite(longer))
    assert np.all(np.diff(longer, axis=0) > 0)
    assert np.all(btyd.expected_purchases(params, 0.0, x, tx, T) == 0.0)


@pytest.mark.parametrize("model", btyd.MODELS)
def test_expected_purchases_equal_the_published_formula(model: btyd.Model) -> None:
    """The Euler-transformed form used equals eq. 10 of Fader, Hardie and Lee (BG/NBD)
    and Wagner and Hoppe's (MBG/NBD), evaluated directly where it does not overflow."""
    r, alpha, a, b = 0.5, 6.0, 0.9, 1.6
    s = 1 if model == "mbgnbd" else 0
    x = np.array([0.0, 1.0, 2.0, 7.0, 20.0])
    tx = np.array([0.0, 5.0, 30.0, 20.0, 38.0])
    T = np.array([30.0, 31.0, 35.0, 38.0, 39.0])
    for t in (0.1, 10.0, 52.0, 500.0):
        c = a + b + x - 1 + s
        hyp = hyp2f1(r + x, b + x + s, c, t / (alpha + T + t))
        odds = np.where(x + s > 0, a / np.maximum(b + x + s - 1, 1e-300), 0.0)
        published = (c / (a - 1) * (1 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x))) / (
            1 + odds * ((alpha + T) / (alpha + tx)) ** (r + x)
        )
        ours = btyd.expected_purchases(btyd.Params(r, alpha, a, b, model), t, x, tx, T)
        np.testing.assert_allclose(ours, published, rtol=1e-10)


def test_expected_purchases_are_smooth_through_a_equal_1() -> None:
    """a = 1 is a removable singularity of the formula (c / (a - 1) times 0): around it the
    values lie on a smooth curve, inside and outside the interpolated band."""
    x, tx, T = np.array([0.0, 3.0, 12.0]), np.array([0.0, 20.0, 25.0]), np.array([30.0] * 3)

    def at(a: float) -> Array:
        return btyd.expected_purchases(btyd.Params(0.5, 6.0, a, 1.6), 26.0, x, tx, T)

    h = 1e-3
    slope = (at(1 + h) - at(1 - h)) / (2 * h)
    assert np.all(np.isfinite(at(1.0)))
    np.testing.assert_allclose(at(1.0), (at(1 - h) + at(1 + h)) / 2, rtol=1e-5)
    for delta in (-3e-5, -1e-6, 1e-6, 3e-5):  # inside and outside the interpolated band
        np.testing.assert_allclose(at(1 + delta), at(1.0) + delta * slope, rtol=1e-9)


# --- Fitting -------------------------------------------------------------------------


@pytest.mark.parametrize("model", btyd.MODELS)
def test_condensed_data_with_weights_fits_like_every_customer(
    model: btyd.Model, cdnow: tuple[Array, Array, Array], fitted: dict[str, btyd.Params]
) -> None:
    x, tx, T = cdnow
    condensed = pd.DataFrame({"x": x, "tx": tx, "T": T}).value_counts().rename("n").reset_index()
    assert len(condensed) < len(x)
    weighted = btyd.fit(
        condensed["x"], condensed["tx"], condensed["T"], model=model, weights=condensed["n"]
    )
    assert weighted == fitted[model]  # every field, bit for bit
    shuffled = np.random.default_rng(3).permutation(len(x))
    assert btyd.fit(x[shuffled], tx[shuffled], T[shuffled], model=model) == fitted[model]


def test_fit_does_not_depend_on_the_time_unit(cdnow: tuple[Array, Array, Array]) -> None:
    """Weeks to days: alpha scales by 7, r, a and b stay; the log-likelihood shifts by
    -sum(x) * ln 7 (the density of purchase times is per day instead of per week)."""
    x, tx, T = cdnow
    weeks = btyd.fit(x, tx, T)
    days = btyd.fit(x, tx * 7, T * 7)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-5)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-5), name
    assert days.log_likelihood == pytest.approx(
        weeks.log_likelihood - x.sum() * math.log(7), abs=1e-5
    )
    assert np.allclose(btyd.p_alive(days, x, tx * 7, T * 7), btyd.p_alive(weeks, x, tx, T))


# --- SQL -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", btyd.MODELS)
def test_sql_p_alive_equals_numpy_in_duckdb(model: btyd.Model) -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    T = np.round(rng.uniform(0, 730, n))  # whole days, some customers new today
    x = rng.integers(0, 120, n)
    x[rng.random(n) < 0.4] = 0
    tx = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T), 0.0)
    customers = pd.DataFrame({"frequency": x, "recency": tx, "T": T})  # frequency BIGINT
    for r, alpha, a, b in [(0.5, 30.0, 0.9, 1.6), (2.5, 400.0, 3.0, 0.7), (0.05, 2.0, 0.2, 25.0)]:
        params = btyd.Params(r, alpha, a, b, model)
        expected = btyd.p_alive(params, x, tx, T)
        with duckdb.connect() as con:
            con.register("customers", customers)
            sql = f"select {btyd.sql_p_alive_expression(model)} as p from customers"
            got = con.execute(sql, params.sql_parameters()).fetchnumpy()["p"]
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-300)
        if model == "bgnbd":
            assert np.all(got[x == 0] == 1.0)


def test_sql_p_alive_takes_other_column_names() -> None:
    params = btyd.Params(0.5, 30.0, 0.9, 1.6)
    sql = btyd.sql_p_alive_expression(frequency="c.f", recency="c.rec", T="c.age")
    with duckdb.connect() as con:
        got = con.execute(
            f"select {sql} from (values (3, 40.0, 90.0)) as c(f, rec, age)",
            params.sql_parameters(),
        ).fetchone()
    assert got is not None
    assert got[0] == pytest.approx(float(btyd.p_alive(params, 3, 40.0, 90.0)), rel=1e-12)


# --- Validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, -1], [2.0, 0.0], [5.0, 5.0], "frequency must be a whole number >= 0"),
        ([1, 1.5], [2.0, 3.0], [5.0, 5.0], "frequency must be a whole number >= 0"),
        ([1, 2], [2.0, 6.0], [5.0, 5.0], "recency must be <= T"),
        ([0, 2], [1.0, 3.0], [5.0, 5.0], "recency must be 0 when frequency is 0"),
        ([1, 2], [-1.0, 3.0], [5.0, 5.0], "recency must be >= 0"),
        ([1, 2], [2.0, 3.0], [5.0, -5.0], "T must be >= 0"),
        ([1, 2], [2.0, float("nan")], [5.0, 5.0], "recency must be finite"),
        ([1, 2], [2.0, 3.0], [5.0, float("inf")], "T must be finite"),
        ([1, 2], [2.0, 3.0], [5.0], "same length"),
        ([1, 2], [2.0, 3.0], ["5", "x"], "T must be numbers"),
    ],
)
def test_invalid_customers_are_rejected(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        btyd.fit(frequency, recency, T)
    if message != "same length":  # p_alive broadcasts; same-length is a fit rule
        with pytest.raises(ValueError, match=message):
            btyd.p_alive(btyd.Params(0.5, 6.0, 0.9, 1.6), frequency, recency, T)


def test_error_names_the_first_offending_customer() -> None:
    with pytest.raises(ValueError, match=r"violated by 2 customers, the first at position 1"):
        btyd.fit([1, 3, 0, 4], [2.0, 6.0, 0.0, 9.0], [5.0, 5.0, 5.0, 5.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "pareto"}, "model must be one of bgnbd, mbgnbd"),
        ({"weights": [1, -1, 1]}, "weights must be whole numbers >= 0"),
        ({"weights": [1, 0.5, 1]}, "weights must be whole numbers >= 0"),
        ({"weights": [1, 1]}, "one value per customer"),
        ({"weights": [0, 0, 0]}, "must not all be 0"),
    ],
)
def test_invalid_fit_options_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        btyd.fit([1, 0, 2], [2.0, 0.0, 3.0], [5.0, 5.0, 5.0], **kwargs)  # type: ignore[arg-type]


def test_fit_refuses_data_without_repeat_purchases() -> None:
    with pytest.raises(ValueError, match="without a single repeat purchase"):
        btyd.fit([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 6.0, 7.0])
    with pytest.raises(ValueError, match="without a single repeat purchase"):
        btyd.fit([0, 2], [0.0, 3.0], [5.0, 6.0], weights=[4, 0])
    with pytest.raises(ValueError, match="no customers"):
        btyd.fit([], [], [])


def test_invalid_parameters_and_horizons_are_rejected() -> None:
    with pytest.raises(ValueError, match="parameter alpha must be a finite number > 0"):
        btyd.Params(0.5, 0.0, 0.9, 1.6)
    with pytest.raises(ValueError, match="parameter b must be a finite number > 0"):
        btyd.Params(0.5, 6.0, 0.9, float("nan"))
    with pytest.raises(ValueError, match="model must be one of"):
        btyd.Params(0.5, 6.0, 0.9, 1.6, "pnbd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t must be finite and >= 0"):
        btyd.expected_purchases(btyd.Params(0.5, 6.0, 0.9, 1.6), -1.0, 1, 2.0, 5.0)
    with pytest.raises(ValueError, match="frequency column must be a plain identifier"):
        btyd.sql_p_alive_expression(frequency="x); drop table t; --")
