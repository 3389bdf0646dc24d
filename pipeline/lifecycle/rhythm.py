"""Purchase rhythm: how long customers wait between purchase days, censoring included.

A lake that is three months old cannot contain a gap of four months: ignoring the open
gap (the silence since each customer's last purchase) makes every gap statistic grow
with the lake's age. Here every customer's open gap is a *censored* observation, and the
gap distribution is the Kaplan-Meier estimate over completed and open gaps. Two strata:

- ``second_purchase``: the wait after the first purchase day, in days. Its curve
  answers "how long do one-time buyers who do come back usually wait".
- ``repeat``: later gaps, in units of each customer's expected gap (their own mean gap
  shrunk toward the shop's median by ``prior_gaps`` gaps), so one pooled curve serves
  weekly and twice-a-year buyers alike.

Each curve is stored *conditional on a next purchase* (the share of gaps that ended by
x among the gaps that ended at all), which reads as "9 in 10 of this customer's gaps
were shorter". The shop's median gap (unconditional, censoring-aware) sets the scale of
everything else: the expected gap of customers with few gaps of their own and the risk
model's horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Array = npt.NDArray[np.float64]
STRATA = ("second_purchase", "repeat")
# Repeat gaps are measured in units of the customer's expected gap, to this precision.
UNIT_STEP = 0.01


@dataclass(frozen=True)
class Survival:
    """A Kaplan-Meier curve: at each event time ``x``, the share of gaps ended by then."""

    x: Array
    cdf: Array  # unconditional: 1 - S(x)
    observations: int
    events: int

    @property
    def ended_share(self) -> float:
        """The share of gaps that end within the longest follow-up (the curve's top)."""
        return float(self.cdf[-1]) if len(self.cdf) else 0.0

    def quantile(self, q: float) -> float | None:
        """The smallest x by which a share ``q`` of all gaps ended; None if never reached."""
        reached = np.flatnonzero(self.cdf >= q)
        return float(self.x[reached[0]]) if len(reached) else None

    def conditional(self) -> Array:
        """The curve among gaps that ended: cdf / its top."""
        top = self.ended_share
        return self.cdf / top if top > 0 else self.cdf

    def conditional_quantile(self, q: float) -> float | None:
        """The smallest x by which a share ``q`` of the gaps that ended had ended."""
        if not self.events:
            return None
        reached = np.flatnonzero(self.conditional() >= q)
        return float(self.x[reached[0]]) if len(reached) else None


def kaplan_meier(durations: npt.ArrayLike, ended: npt.ArrayLike) -> Survival:
    """The Kaplan-Meier estimate from durations and whether each ended (else censored)."""
    time = np.asarray(durations, dtype=np.float64)
    event = np.asarray(ended, dtype=bool)
    if len(time) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Survival(empty, empty, 0, 0)
    times, inverse = np.unique(time, return_inverse=True)
    ended_at = np.bincount(inverse, weights=event.astype(np.float64), minlength=len(times))
    leaving = np.bincount(inverse, minlength=len(times)).astype(np.float64)
    # At risk at t: every gap lasting t or longer.
    at_risk = len(time) - np.concatenate(([0.0], np.cumsum(leaving)[:-1]))
    has_event = ended_at > 0
    factors = 1.0 - ended_at[has_event] / at_risk[has_event]
    survival = np.cumprod(factors)
    return Survival(times[has_event], 1.0 - survival, len(time), int(event.sum()))


@dataclass(frozen=True)
class Rhythm:
    """The shop's gap curves and median gap as of a date."""

    population_gap_days: float
    second_purchase: Survival
    repeat: Survival
    median_is_censored: bool  # fewer than half of the repeat gaps have ended yet

    def curve_table(self) -> pa.Table:
        """(stratum, x, cdf) rows, cdf conditional on a next purchase: the SQL's gap_curve."""
        strata, xs, cdfs = [], [], []
        for name, curve in (("second_purchase", self.second_purchase), ("repeat", self.repeat)):
            strata += [name] * len(curve.x)
            xs.append(curve.x)
            cdfs.append(np.minimum(curve.conditional(), 1.0))
        return pa.table(
            {
                "stratum": pa.array(strata, pa.string()),
                "x": pa.array(np.concatenate(xs) if xs else [], pa.float64()),
                "cdf": pa.array(np.concatenate(cdfs) if cdfs else [], pa.float64()),
            }
        )


def estimate(
    customer: npt.ArrayLike,
    stratum: npt.ArrayLike,
    gap_days: npt.ArrayLike,
    ended: npt.ArrayLike,
    *,
    prior_gaps: float,
    fallback_gap_days: float,
) -> Rhythm:
    """The rhythm from one row per gap (purchase_gaps.sql): completed and open gaps.

    ``fallback_gap_days`` is the shop's gap while nobody has bought twice.
    """
    ids = np.asarray(customer)
    kind = np.asarray(stratum)
    gaps = np.asarray(gap_days, dtype=np.float64)
    done = np.asarray(ended, dtype=bool)
    is_repeat = kind == "repeat"
    raw_repeat = kaplan_meier(
        gaps[~(kind == "second_purchase")], done[~(kind == "second_purchase")]
    )
    every_gap = kaplan_meier(gaps, done)
    median = raw_repeat.quantile(0.5) if raw_repeat.events else every_gap.quantile(0.5)
    censored = median is None
    if median is None:
        # Fewer than half of the gaps have ended: the median among those that did is a
        # lower bound, used until the lake is old enough.
        curve = raw_repeat if raw_repeat.events else every_gap
        ended_median = curve.conditional_quantile(0.5)
        median = ended_median if ended_median is not None else fallback_gap_days
    median = max(float(median), 1.0)

    # Each customer's expected gap: their completed gaps shrunk toward the median.
    _, index = np.unique(ids, return_inverse=True)
    completed = np.bincount(index, weights=done.astype(np.float64))
    span = np.bincount(index, weights=np.where(done, gaps, 0.0))
    weight = completed + prior_gaps
    expected = np.divide(
        span + prior_gaps * median, weight, out=np.full(len(weight), median), where=weight > 0
    )
    units = np.round(gaps[is_repeat] / expected[index[is_repeat]] / UNIT_STEP) * UNIT_STEP
    return Rhythm(
        population_gap_days=median,
        second_purchase=kaplan_meier(
            gaps[kind == "second_purchase"], done[kind == "second_purchase"]
        ),
        repeat=kaplan_meier(units, done[is_repeat]),
        median_is_censored=censored,
    )


def horizon_days(rhythm: Rhythm, gap_multiple: float, *, low: int = 7, high: int = 365) -> int:
    """The risk horizon: ``gap_multiple`` median gaps, in whole weeks, within [low, high]."""
    weeks = math.ceil(gap_multiple * rhythm.population_gap_days / 7)
    return int(min(max(7 * weeks, low), high))
