"""Buy-till-you-die models: BG/NBD and MBG/NBD, fitted with scipy.

Each customer buys at a steady Poisson rate while "alive" and may drop out for good; the
models estimate, from three numbers per customer, how likely it is that the customer is
still alive (``p_alive``) and how many purchases to expect in the next ``t`` periods
(``expected_purchases``). Rates and dropout probabilities vary across customers as
gamma(r, alpha) and beta(a, b) distributions, whose four parameters ``fit`` estimates by
maximum likelihood.

Per customer, in one time unit (days or weeks, the same for all three and for every
customer; ``alpha`` is in that unit):

- ``frequency`` (x): the number of *repeat* purchase periods: purchase days after the
  first one (a customer who bought on 3 distinct days has frequency 2);
- ``recency`` (t_x): time from the first purchase to the last one (0 when x = 0);
- ``T``: time from the first purchase to the as-of date (the customer's age).

Two models:

- ``"bgnbd"``, BG/NBD (Fader, Hardie and Lee 2005): a customer may drop out only right
  after a *repeat* purchase. So a customer who never came back is, by construction,
  certainly alive (``p_alive == 1``) however long ago the first purchase was: useless
  for spotting the one-time buyers who are gone, the majority of many customer bases.
- ``"mbgnbd"``, MBG/NBD (Batislam, Denizel and Filiztekin 2007; conditional expectation
  corrected by Wagner and Hoppe 2008): a customer may also drop out right after the
  *first* purchase. A one-time buyer's ``p_alive`` is then below 1 and falls as ``T``
  grows. It fits CDNOW as well as BG/NBD (log-likelihood -9582.1 against
  -9582.4) and is the default here.

No code of ``lifetimes`` is used (it is unmaintained); the test suite checks these
functions against it and against the published CDNOW estimates. See docs/btyd.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

Model = Literal["bgnbd", "mbgnbd"]
MODELS: tuple[Model, ...] = ("bgnbd", "mbgnbd")
Array = npt.NDArray[np.float64]

# The optimizer works on log-parameters, kept within e^±LOG_BOUND so that every
# evaluation is finite; an estimate on a bound means the maximum is not interior.
LOG_BOUND = 25.0
# Times are divided by max(T) / TIME_SCALE_TO while fitting (alpha absorbs the factor).
TIME_SCALE_TO = 10.0
# Near a = 1 the conditional expectation is 0/0 (a removable singularity): it is
# interpolated between a = 1 - A_ONE_STEP and a = 1 + A_ONE_STEP.
A_ONE_STEP = 1e-5
# A fit also counts as converged when the gradient of the mean log-likelihood in the
# log-parameters is below this, whatever the optimizer's message.
GRADIENT_CONVERGED = 1e-6
# Degenerate fits (docs/btyd.md, "Degenerate fits"): a maximum on the boundary of the
# parameter space, where the model collapses into a simpler one and the parameter values
# are wherever the optimizer stopped on a ridge running to infinity.
# The gamma (purchase rates) or the beta (dropout probabilities) has collapsed to one
# value when its coefficient of variation is below this: every customer the same.
MIN_SPREAD_CV = 0.1
# The mean dropout probability a / (a + b) below this (nobody ever drops out) or above
# 1 - this (everybody drops out after each purchase).
DROPOUT_MEAN_BOUND = 1e-3
# Default least number of repeat buyers (customers with frequency > 0) to fit on.
MIN_REPEAT_BUYERS = 100
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Params:
    """Parameters of a BG/NBD or MBG/NBD model, and how they were obtained.

    ``r`` and ``alpha`` are the shape and rate of the gamma distribution of purchase
    rates (``alpha`` in the time unit of the data it was fitted on); ``a`` and ``b``
    those of the beta distribution of dropout probabilities. ``log_likelihood`` is the
    maximum of the (weighted) log-likelihood in that time unit, ``n_customers`` the
    number of customers fitted, ``converged`` whether the optimizer reached a maximum
    (it reported success, or the gradient vanished) with every parameter inside its
    bounds. ``repeat_buyers`` is the number of customers with frequency > 0 among them,
    and ``degenerate_reason`` why the fit is degenerate (see :func:`degeneracy`), None
    if it is not. Built by hand (e.g. from stored values), the fit fields keep their
    defaults: such parameters are not degenerate, nor ``usable`` (not a converged fit).
    """

    r: float
    alpha: float
    a: float
    b: float
    model: Model = "mbgnbd"
    log_likelihood: float = math.nan
    n_customers: int = 0
    converged: bool = False
    repeat_buyers: int = 0
    degenerate_reason: str | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}; got {self.model!r}")
        for name in ("r", "alpha", "a", "b"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"parameter {name} must be a finite number > 0; got {value!r}")
        if not 0 <= self.repeat_buyers <= max(self.n_customers, 0):
            raise ValueError(
                f"repeat_buyers must be between 0 and n_customers ({self.n_customers}); "
                f"got {self.repeat_buyers!r}"
            )
        if self.degenerate_reason is not None and not self.degenerate_reason.strip():
            raise ValueError("degenerate_reason must be None or say why")

    @property
    def degenerate(self) -> bool:
        """Whether the fit was found degenerate (``degenerate_reason`` says why)."""
        return self.degenerate_reason is not None

    @property
    def usable(self) -> bool:
        """A converged fit that is not degenerate: fit to score customers with."""
        return self.converged and not self.degenerate

    def sql_parameters(self) -> dict[str, float]:
        """The values to bind to ``$r, $alpha, $a, $b`` of :func:`sql_p_alive_expression`."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def fit(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    model: Model = "mbgnbd",
    weights: npt.ArrayLike | None = None,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
) -> Params:
    """Fit a BG/NBD or MBG/NBD model by maximum likelihood.

    ``frequency``, ``recency`` and ``T`` are one value per customer (see the module
    docstring for their definitions; all times in one unit). ``weights``, if given, are
    whole numbers >= 0: the number of customers having each row's (frequency, recency,
    T), as in Fader and Hardie's condensed data. Rows with equal values are merged
    before fitting, so customers measured in whole days fit fast however many they are.

    MBG/NBD is the default because BG/NBD cannot tell a one-time buyer who left from
    one who is still around (``p_alive`` is 1 for both); see the module docstring.

    The log-likelihood is maximized with scipy's L-BFGS-B over the log-parameters, with
    its analytic gradient, from a fixed starting point (r = alpha = a = b = 1 after
    times are scaled so that max(T) = 10): the same data always gives the same result.

    The result's ``degenerate_reason`` says why the fit is degenerate, if it is (see
    :func:`degeneracy`; fewer than ``min_repeat_buyers`` customers with frequency > 0
    is one reason); check ``usable`` before scoring customers with it.
    Raises ValueError on invalid inputs.
    """
    _check_model(model)
    if isinstance(min_repeat_buyers, bool) or not (
        isinstance(min_repeat_buyers, int) and min_repeat_buyers >= 0
    ):
        raise ValueError(
            f"min_repeat_buyers must be a whole number >= 0; got {min_repeat_buyers!r}"
        )
    x, tx, age = _customers(frequency, recency, T, one_dimensional=True)
    if x.size == 0:
        raise ValueError("cannot fit a model on no customers")
    w = _weights(weights, x.size)
    if w.sum() == 0:
        raise ValueError("weights must not all be 0")
    if not np.any((x > 0) & (w > 0)):
        raise ValueError(
            "cannot fit a model without a single repeat purchase (frequency > 0): "
            "the likelihood has no maximum"
        )
    ux, utx, uage, counts = _merge_identical(x, tx, age, w)

    max_age = float(uage.max())
    scale = max_age / TIME_SCALE_TO if max_age > 0 else 1.0
    shift = 1 if model == "mbgnbd" else 0
    total = float(counts.sum())
    by_frequency = np.unique(ux, return_inverse=True)

    def objective(log_params: Array) -> tuple[float, Array]:
        params = np.exp(log_params)
        ll, grad = _log_likelihood(
            params, ux, utx / scale, uage / scale, shift, gradient=True, by_frequency=by_frequency
        )
        assert grad is not None
        value = -float(np.dot(counts, ll)) / total
        # d/d(log p) = p * d/dp; the objective is the mean negative log-likelihood.
        jac = -(grad @ counts) / total * params
        return value, jac

    result = minimize(
        objective,
        x0=np.zeros(4),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * 4,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    log_params = np.asarray(result.x, dtype=np.float64)
    interior = bool(np.all(np.abs(log_params) < LOG_BOUND - 1e-6))
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    alpha *= scale
    params = np.array([r, alpha, a, b])
    ll, _ = _log_likelihood(params, ux, utx, uage, shift, gradient=False, by_frequency=by_frequency)
    total_ll = float(np.dot(counts, ll))
    # L-BFGS-B may stop on a failed line search at the limit of precision: converged too.
    flat = float(np.max(np.abs(result.jac))) < GRADIENT_CONVERGED
    converged = (bool(result.success) or flat) and interior and math.isfinite(total_ll)
    fitted = Params(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        model=model,
        log_likelihood=total_ll,
        n_customers=round(total),
        converged=converged,
        repeat_buyers=round(float(counts[ux > 0].sum())),
    )
    return replace(
        fitted, degenerate_reason=degeneracy(fitted, min_repeat_buyers=min_repeat_buyers)
    )


def degeneracy(params: Params, *, min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> str | None:
    """Why a fit is degenerate (its reasons joined by "; "), or None if it is not.

    A fit is degenerate when any of these holds (docs/btyd.md, "Degenerate fits"):

    - it did not converge (``params.converged`` is False);
    - fewer than ``min_repeat_buyers`` of its customers have frequency > 0
      (``params.repeat_buyers``; pass 0 to skip this check, e.g. for parameters
      stored without the count);
    - the purchase rates collapsed to one value: the gamma's coefficient of variation
      1 / sqrt(r) is below ``MIN_SPREAD_CV`` (r and alpha running off to infinity
      together, every customer buying at the same rate);
    - the dropout collapsed: the beta's mean a / (a + b) is below ``DROPOUT_MEAN_BOUND``
      (nobody ever drops out) or above 1 minus it (everybody drops out after each
      purchase), or it has collapsed to one value (every customer has the same
      dropout probability): the coefficients of variation of both the dropout
      probability p and its complement 1 - p, sqrt(b / (a (a + b + 1))) and
      sqrt(a / (b (a + b + 1))), below ``MIN_SPREAD_CV``.

    Only the parameters and the fit fields are read: the criteria do not depend on the
    time unit.
    """
    reasons = []
    if not params.converged:
        reasons.append("did not converge (the optimizer failed or a parameter reached its bound)")
    if params.repeat_buyers < min_repeat_buyers:
        reasons.append(
            f"too few repeat buyers: {params.repeat_buyers} customers with frequency > 0, "
            f"fewer than {min_repeat_buyers}"
        )
    r, a, b = params.r, params.a, params.b
    rate_cv = 1.0 / math.sqrt(r)
    if rate_cv < MIN_SPREAD_CV:
        reasons.append(
            f"purchase rates collapsed to one value: r = {r:.4g}, alpha = {params.alpha:.4g} "
            f"(the gamma's coefficient of variation 1/sqrt(r) = {rate_cv:.3g} < "
            f"{MIN_SPREAD_CV}): every customer buys at the same rate"
        )
    dropout_mean = a / (a + b)
    if dropout_mean < DROPOUT_MEAN_BOUND:
        reasons.append(
            f"dropout collapsed to 0: a = {a:.4g}, b = {b:.4g} (the beta's mean a/(a+b) = "
            f"{dropout_mean:.3g} < {DROPOUT_MEAN_BOUND}): nobody ever drops out"
        )
    elif dropout_mean > 1.0 - DROPOUT_MEAN_BOUND:
        reasons.append(
            f"dropout collapsed to 1: a = {a:.4g}, b = {b:.4g} (the beta's mean a/(a+b) = "
            f"{dropout_mean:.6g} > {1.0 - DROPOUT_MEAN_BOUND}): everybody drops out after "
            "each purchase"
        )
    # Of p or of 1 - p, whichever is larger: a beta with a mean near 1 has a small
    # coefficient of variation of p while its survival probabilities 1 - p vary widely.
    dropout_cv = math.sqrt(max(a, b) / (min(a, b) * (a + b + 1.0)))
    if dropout_cv < MIN_SPREAD_CV:
        reasons.append(
            f"dropout probabilities collapsed to one value: a = {a:.4g}, b = {b:.4g} (the "
            f"beta's coefficient of variation, of p or 1 - p, = {dropout_cv:.3g} < "
            f"{MIN_SPREAD_CV}): every "
            "customer drops out with the same probability"
        )
    return "; ".join(reasons) if reasons else None


def log_likelihood(
    params: Params,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """Each customer's log-likelihood under ``params`` (their sum is what ``fit`` maximizes)."""
    x, tx, age = _customers(frequency, recency, T)
    values = np.array([params.r, params.alpha, params.a, params.b])
    ll, _ = _log_likelihood(values, x, tx, age, _shift(params), gradient=False)
    return ll


def p_alive(
    params: Params,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """The probability that each customer is still alive as of the end of ``T``.

    Vectorized over customers (inputs broadcast). With x = frequency, t_x = recency:

    - MBG/NBD: 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x));
    - BG/NBD: the same with b + x - 1 in place of b + x when x > 0, and exactly 1 when
      x = 0: the model's known flaw, which is why MBG/NBD is the default.

    Computed as a logistic of the log-odds, so it neither overflows nor loses the tiny
    probabilities of long-gone frequent buyers.
    """
    x, tx, age = _customers(frequency, recency, T)
    return _p_alive(params, x, tx, age)


def expected_purchases(
    params: Params,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """Expected number of purchases in the next ``t`` periods, given each customer's history.

    Vectorized (all arguments broadcast). With x = frequency, t_x = recency,
    z = t / (alpha + T + t), and c = a + b + x - 1 (BG/NBD, Fader, Hardie and Lee 2005,
    eq. 10) or c = a + b + x (MBG/NBD, Wagner and Hoppe 2008):

        E = p_alive * c / (a - 1) * (1 - (1 - z) ** (a - 1) * 2F1(c - r - x, a - 1; c; z))

    which is the published formula after Euler's transformation of the hypergeometric
    function 2F1(r + x, c - a + 1; c; z) (its first two arguments grow with x and it
    overflows for frequent buyers; the transformed one stays near 1). At a = 1 the
    formula is 0/0 and the limit is taken by interpolation.
    """
    x, tx, age = _customers(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ValueError("t must be finite and >= 0")
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    alive = _p_alive(params, x, tx, age)
    a = params.a
    if abs(a - 1.0) < A_ONE_STEP:
        below = _expected_if_alive(params, 1.0 - A_ONE_STEP, horizon, x, age)
        above = _expected_if_alive(params, 1.0 + A_ONE_STEP, horizon, x, age)
        weight = (a - (1.0 - A_ONE_STEP)) / (2 * A_ONE_STEP)
        if_alive = below + weight * (above - below)
    else:
        if_alive = _expected_if_alive(params, a, horizon, x, age)
    result: Array = alive * if_alive
    return result


def sql_p_alive_expression(
    model: Model = "mbgnbd",
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
) -> str:
    """A DuckDB scalar expression for :func:`p_alive`, with parameters ``$r, $alpha, $a, $b``.

    Bind them from :meth:`Params.sql_parameters` (the model must match the parameters').
    ``frequency``, ``recency`` and ``T`` name the columns (plain or ``table.column``
    identifiers), measured in the time unit the parameters were fitted in. Only ``ln``
    and ``exp`` are needed (no gamma function appears in P(alive)); the result equals
    :func:`p_alive` to about 1e-12 relative. For a log-odds above ~709 (P(alive) below
    1e-308) it gives 0.
    """
    _check_model(model)
    for name, column in (("frequency", frequency), ("recency", recency), ("T", T)):
        if not _IDENTIFIER.fullmatch(column):
            raise ValueError(f"{name} column must be a plain identifier; got {column!r}")
    f = frequency
    r, alpha, a, b = (f"CAST(${p} AS DOUBLE)" for p in ("r", "alpha", "a", "b"))
    # BG/NBD uses b + x - 1, where x >= 1 (greatest() keeps ln defined on x = 0 rows).
    denominator = f"{b} + {f}" if model == "mbgnbd" else f"{b} + greatest({f}, 1.0) - 1.0"
    log_odds_dead = (
        f"ln({a} / ({denominator})) + ({r} + {f}) * ln(({alpha} + {T}) / ({alpha} + {recency}))"
    )
    expression = f"1.0 / (1.0 + exp({log_odds_dead}))"
    if model == "bgnbd":
        return f"(CASE WHEN {f} = 0 THEN 1.0 ELSE {expression} END)"
    return f"({expression})"


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")


def _shift(params: Params) -> int:
    """1 for MBG/NBD (dropout possible after the first purchase too), 0 for BG/NBD."""
    return 1 if params.model == "mbgnbd" else 0


def _first_bad(mask: npt.NDArray[np.bool_]) -> str:
    count = int(mask.sum())
    index = np.unravel_index(int(np.argmax(mask)), mask.shape)
    at = index[0] if len(index) == 1 else index
    return f"{count} customer{'s' if count != 1 else ''}, the first at position {at}"


def _customers(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    one_dimensional: bool = False,
) -> tuple[Array, Array, Array]:
    """Validated float arrays of frequency, recency and T, broadcast to one shape."""
    arrays = []
    for name, values in (("frequency", frequency), ("recency", recency), ("T", T)):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be numbers: {error}") from None
        if one_dimensional and array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional (one value per customer)")
        bad = ~np.isfinite(array)
        if bad.any():
            raise ValueError(f"{name} must be finite; NaN or infinite for {_first_bad(bad)}")
        arrays.append(array)
    if one_dimensional and len({a.size for a in arrays}) != 1:
        sizes = ", ".join(
            f"{n}={a.size}" for n, a in zip(("frequency", "recency", "T"), arrays, strict=True)
        )
        raise ValueError(f"frequency, recency and T must have the same length; got {sizes}")
    try:
        x, tx, age = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"frequency, recency and T have incompatible shapes {shapes}") from None
    checks = (
        (
            (x < 0) | (x != np.floor(x)),
            "frequency must be a whole number >= 0 (repeat purchase periods)",
        ),
        (tx < 0, "recency must be >= 0 (time from first to last purchase)"),
        (age < 0, "T must be >= 0 (time from first purchase to the as-of date)"),
        (tx > age, "recency must be <= T (the last purchase cannot follow the as-of date)"),
        ((x == 0) & (tx != 0), "recency must be 0 when frequency is 0 (no repeat purchase)"),
    )
    for bad, message in checks:
        if bad.any():
            raise ValueError(f"{message}; violated by {_first_bad(bad)}")
    return x, tx, age


def _weights(weights: npt.ArrayLike | None, size: int) -> Array:
    if weights is None:
        return np.ones(size)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"weights must be numbers: {error}") from None
    if w.shape != (size,):
        raise ValueError(f"weights must have one value per customer ({size}); got shape {w.shape}")
    bad = ~np.isfinite(w) | (w < 0) | (w != np.floor(w))
    if bad.any():
        raise ValueError(
            f"weights must be whole numbers >= 0 (customers); violated by {_first_bad(bad)}"
        )
    return w


def _merge_identical(
    x: Array, tx: Array, age: Array, w: Array
) -> tuple[Array, Array, Array, Array]:
    """Distinct (x, t_x, T) rows with the total weight of each (rows of weight 0 dropped)."""
    order = np.lexsort((age, tx, x))
    xs, txs, ages, ws = x[order], tx[order], age[order], w[order]
    starts = np.flatnonzero(
        np.concatenate(([True], (np.diff(xs) != 0) | (np.diff(txs) != 0) | (np.diff(ages) != 0)))
    )
    counts = np.add.reduceat(ws, starts)
    keep = counts > 0
    return xs[starts][keep], txs[starts][keep], ages[starts][keep], counts[keep]


def _log_likelihood(
    params: Array,
    x: Array,
    tx: Array,
    age: Array,
    shift: int,
    *,
    gradient: bool,
    by_frequency: tuple[Array, npt.NDArray[np.intp]] | None = None,
) -> tuple[Array, Array | None]:
    """Per-customer log-likelihood and, if asked, its gradient in (r, alpha, a, b).

    L = G(r+x) alpha^r / G(r) * [B(a, b+x+s) / B(a,b) / (alpha+T)^(r+x)
                                 + [x+s > 0] B(a+1, b+x+s-1) / B(a,b) / (alpha+t_x)^(r+x)]

    (G the gamma function, B the beta function)

    with s = 0 (BG/NBD, eq. 6 of Fader, Hardie and Lee 2005) or s = 1 (MBG/NBD). The two
    terms are added in log space (logsumexp) so neither overflows nor underflows. The
    gamma, beta and digamma functions depend on x alone: they are evaluated once per
    distinct frequency and gathered (``by_frequency``: ``np.unique(x, return_inverse=True)``,
    computed here unless given).
    """
    r, alpha, a, b = (float(v) for v in params)
    levels, index = np.unique(x, return_inverse=True) if by_frequency is None else by_frequency
    index = index.ravel()
    has_second_level = (levels + shift) > 0
    bx = b + levels + shift  # b + x + s
    bx_second = np.where(has_second_level, bx - 1.0, 1.0)  # b + x + s - 1 (> 0 where used)
    common = (gammaln(r + levels) - gammaln(r) + r * math.log(alpha) - float(betaln(a, b)))[index]
    beta_first = betaln(a, bx)[index]
    beta_second = np.where(has_second_level, betaln(a + 1.0, bx_second), -np.inf)[index]
    x = x.ravel()
    r_x = r + x
    log_alpha_t = np.log(alpha + age.ravel())
    log_alpha_tx = np.log(alpha + tx.ravel())
    first = beta_first - r_x * log_alpha_t
    second = beta_second - r_x * log_alpha_tx  # -inf where the term is absent
    both = np.logaddexp(first, second)
    ll: Array = (common + both).reshape(age.shape)
    if not gradient:
        return ll, None
    p1 = np.exp(first - both)  # the share of each term in the sum
    p2 = np.exp(second - both)
    psi_a, psi_b, psi_ab, psi_a1 = (float(v) for v in digamma([a, b, a + b, a + 1.0]))
    psi_abx = digamma(a + bx)
    d_r_level = (digamma(r + levels) - digamma(r) + math.log(alpha))[index]
    d_a_first = (psi_a - psi_abx)[index]
    d_a_second = (psi_a1 - psi_abx)[index]
    d_b_first = (digamma(bx) - psi_abx)[index]
    d_b_second = np.where(has_second_level, digamma(bx_second) - psi_abx, 0.0)[index]
    d_r = d_r_level - p1 * log_alpha_t - p2 * log_alpha_tx
    d_alpha = r / alpha - r_x * (p1 / (alpha + age.ravel()) + p2 / (alpha + tx.ravel()))
    d_a = p1 * d_a_first + p2 * d_a_second - (psi_a - psi_ab)
    d_b = p1 * d_b_first + p2 * d_b_second - (psi_b - psi_ab)
    grad: Array = np.stack([d_r, d_alpha, d_a, d_b]).reshape((4, *age.shape))
    return ll, grad


def _p_alive(params: Params, x: Array, tx: Array, age: Array) -> Array:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    shift = _shift(params)
    denominator = np.where(x + shift > 0, b + x + shift - 1.0, 1.0)
    # log of a / (b + x + s - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x): dead vs alive.
    log_odds_dead = np.log(a / denominator) + (r + x) * np.log1p((age - tx) / (alpha + tx))
    alive: Array = expit(-log_odds_dead)
    if shift == 0:
        alive = np.where(x == 0, 1.0, alive)
    return alive


def _expected_if_alive(params: Params, a: float, t: Array, x: Array, age: Array) -> Array:
    """The bracketed factor of the conditional expectation (before the P(alive) factor)."""
    r, alpha, b = params.r, params.alpha, params.b
    c = a + b + x - 1.0 + _shift(params)
    z = t / (alpha + age + t)
    hyp = hyp2f1(c - r - x, a - 1.0, c, z)
    # 1 - (1 - z)^(a-1) * hyp, accurate also when it is small (a near 1 or t near 0).
    one_minus = -np.expm1((a - 1.0) * np.log1p(-z) + np.log(hyp))
    result: Array = c / (a - 1.0) * one_minus
    return result
