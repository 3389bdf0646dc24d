"""Event-driven customer lifecycle simulation behind the demo exports (pure numpy, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

I8 = npt.NDArray[np.int8]
I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

# "No such event": far beyond any simulated day, and a day plus any capped delay
# (NEVER // 2) still fits the int32 schedule arrays.
NEVER = 1_000_000_000

NOT_SIGNED_UP = -1
PROSPECT, SOCIALIZATION, GROWTH, MATURITY, DISSATISFIED, CHURNED = range(6)
STATE_NAMES = ("prospect", "socialization", "growth", "maturity", "dissatisfied", "churned")

WEB, STORE, APP = range(3)
CHANNEL_NAMES = ("web", "store", "app")

COMPLETED, RETURNED, CANCELLED = range(3)
STATUS_NAMES = ("completed", "returned", "cancelled")

RECOVERED, CHURNED_OUTCOME = range(2)

# Chinese New Year (first day of the lunar year); outside the table a early-February date is
# close enough for a demo dip.
_CNY = {
    2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28", 2018: "2018-02-16",
    2019: "2019-02-05", 2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01",
    2023: "2023-01-22", 2024: "2024-02-10", 2025: "2025-01-29", 2026: "2026-02-17",
    2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13", 2030: "2030-02-03",
    2031: "2031-01-23", 2032: "2032-02-11", 2033: "2033-01-31", 2034: "2034-02-19",
    2035: "2035-02-08",
}  # fmt: skip

# Share of a channel's orders placed in each local hour (Asia/Shanghai).
_HOUR_WEIGHTS = np.array(
    [
        # web: lunch break and late evening peaks, a long night tail
        [2, 1, 1, .5, .5, .5, 1, 2, 3, 5, 6, 6, 5, 5, 5, 5, 5, 5, 6, 7, 9, 10, 8, 4],
        # store: opening hours only
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5, 7, 8, 7, 6, 6, 7, 8, 9, 9, 7, 4, 0, 0],
        # app: commuting and bedtime scrolling
        [3, 2, 1, .5, .5, .5, 1, 4, 6, 4, 4, 5, 6, 4, 4, 4, 4, 5, 7, 8, 9, 10, 9, 6],
    ]
)  # fmt: skip
_WEEKDAY = np.array([0.94, 0.93, 0.95, 0.97, 1.02, 1.12, 1.07])  # Monday first


@dataclass(frozen=True)
class SimulationParams:
    """Rates of the simulated retailer; defaults give plausible e-commerce behaviour."""

    warmup_days: int = 730
    horizon_days: int = 4000
    signup_growth: float = 0.5
    never_buyer_share: float = 0.2
    same_day_first_purchase: float = 0.35
    first_purchase_delay_mean: float = 12.0
    gap_median_days: float = 35.0
    gap_sigma: float = 0.75
    gap_min_days: float = 5.0
    gap_max_days: float = 240.0
    gap_shape_min: float = 2.0
    gap_shape_max: float = 4.0
    dissatisfaction_hazard: float = 0.0012
    # socialization, growth, maturity: new customers are the most fragile
    hazard_by_stage: tuple[float, float, float] = (1.6, 1.0, 0.7)
    recover_share_by_stage: tuple[float, float, float] = (0.25, 0.35, 0.45)
    dissatisfied_gap_min: float = 2.5
    dissatisfied_gap_max: float = 4.0
    # Dissatisfaction starts with a bad order (a faulty product, a late delivery): the
    # hazard picks the day, the customer's next order goes wrong. Most such orders come
    # back as a return within complaint_return_days (an after-sales problem, the sign
    # of dissatisfaction the source documents name).
    complaint_return_share: float = 0.85
    complaint_return_days: int = 10
    # A customer who gets over it comes back after skipping a purchase cycle or two:
    # recovery takes this many of their own mean gaps (at least recovery_days_min).
    recovery_gaps_min: float = 1.5
    recovery_gaps_max: float = 3.0
    recovery_days_min: int = 21
    churn_decision_gap_multiple: float = 1.8
    churn_days_min: int = 21
    churn_days_max: int = 270
    win_back_share: float = 0.25
    win_back_min_days: int = 60
    win_back_mean_extra: float = 150.0
    # prospect (unused), socialization, growth, maturity, dissatisfied
    return_rate_by_state: tuple[float, ...] = (0.03, 0.035, 0.03, 0.025, 0.15)
    guest_return_rate: float = 0.02
    cancel_rate: float = 0.015
    guest_order_share: float = 0.07
    channel_shares: tuple[float, float, float] = (0.5, 0.3, 0.2)
    return_window_days: int = 30
    catalogue_size: int = 1500
    gift_set_share: float = 0.02


@dataclass(frozen=True)
class Calendar:
    """Per-day seasonal purchase intensity over the whole simulated range."""

    start: date
    first_day: int
    intensity: F64
    cumulative: F64
    promo_boost: F64

    def advance(self, day: int, gaps: F64) -> I64:
        """Day of the next purchase after `gaps` units of seasonal time from `day`."""
        pos = day - self.first_day
        found = np.searchsorted(self.cumulative, self.cumulative[pos] + gaps, side="left")
        found = np.maximum(found, pos + 1)
        return np.where(found >= len(self.cumulative), NEVER, found + self.first_day)


@dataclass(frozen=True)
class Catalogue:
    """Products: skewed prices, Zipf-like popularity."""

    sku_codes: npt.NDArray[np.str_]
    price_cents: I64
    popularity_cdf: F64
    by_price: I64


@dataclass(frozen=True)
class Population:
    """Static per-customer traits, customers indexed in signup order."""

    signup_day: I32
    first_purchase_day: I32
    mean_gap: F32
    gap_shape: F32
    lines_mean: F32
    price_preference: F32
    primary_channel: I8
    channel_loyalty: F32
    frailty: F32
    maturity_after: I16

    @property
    def size(self) -> int:
        return len(self.signup_day)


@dataclass(frozen=True)
class DayLines:
    """Order lines of one day, sorted by channel, order time, order, line number."""

    channel: I8
    order_seq: I64
    line_number: I32
    customer: I32
    seconds: I32
    sku: I64
    quantity: I64
    price_cents: I64
    status: I8

    def subset(self, mask: Bool) -> DayLines:
        return DayLines(
            channel=self.channel[mask],
            order_seq=self.order_seq[mask],
            line_number=self.line_number[mask],
            customer=self.customer[mask],
            seconds=self.seconds[mask],
            sku=self.sku[mask],
            quantity=self.quantity[mask],
            price_cents=self.price_cents[mask],
            status=self.status[mask],
        )

    def __len__(self) -> int:
        return len(self.channel)


@dataclass(frozen=True)
class GroundTruth:
    """Hidden states, one row per episode and per dissatisfaction episode (days are offsets)."""

    episode_customer: I32
    episode_state: I8
    episode_from: I32
    episode_to: I64
    episode_win_back: Bool
    dissatisfied_customer: I32
    dissatisfied_onset: I32
    dissatisfied_outcome: I8
    dissatisfied_resolved: I32
    dissatisfied_from_state: I8
    final_state: I8


@dataclass
class _Orders:
    """Orders of one day before they are expanded to lines."""

    customer: I32
    channel: I8
    spend: F64
    lines_mean: F64
    price_preference: F64
    return_rate: F64
    return_days: I64


def cny_date(year: int) -> np.datetime64:
    """First day of the lunar new year."""
    return np.datetime64(_CNY.get(year, f"{year:04d}-02-05"), "D")


def seasonal_intensity(dates: npt.NDArray[np.datetime64]) -> tuple[F64, F64]:
    """Purchase intensity per day and the extra promo-day purchase probability."""
    month_start = dates.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    dom = (dates - month_start).astype(np.int64) + 1
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    weekday = (dates.astype(np.int64) + 3) % 7
    factor = _WEEKDAY[weekday].copy()
    factor *= _festival_factor(month, dom)
    cny = np.array([cny_date(int(y)) for y in np.unique(years)])
    cny_offset = (dates - cny[np.searchsorted(np.unique(years), years)]).astype(np.int64)
    factor *= _cny_factor(cny_offset)
    promo = np.zeros(len(dates))
    promo[(month == 11) & (dom == 11)] = 0.2
    promo[(month == 6) & (dom == 18)] = 0.08
    promo[(month == 12) & (dom == 12)] = 0.05
    return factor, promo


def _festival_factor(month: I64, dom: I64) -> F64:
    """Singles' Day, 618 and the December run-up, as multiplicative bumps."""
    factor = np.ones(len(month))
    factor[(month == 11) & (dom <= 10)] = 1.25
    factor[(month == 11) & (dom == 11)] = 2.2
    factor[(month == 11) & (dom >= 12) & (dom <= 14)] = 0.85
    factor[(month == 6) & (dom < 18)] = 1.1
    factor[(month == 6) & (dom == 18)] = 1.8
    december = month == 12
    factor[december] = 1.2 + 0.01 * np.minimum(dom[december], 24)
    factor[december & (dom == 12)] *= 1.5
    return factor


def _cny_factor(offset: I64) -> F64:
    """New-year shopping before the holiday, then logistics and shops shut down."""
    factor = np.ones(len(offset))
    factor[(offset >= -12) & (offset <= -3)] = 1.15
    factor[(offset >= -2) & (offset <= 6)] = 0.4
    factor[(offset >= 7) & (offset <= 14)] = 0.75
    return factor


def build_calendar(start: date, first_day: int, last_day: int) -> Calendar:
    """Calendar over day offsets [first_day, last_day) relative to `start`."""
    dates = np.datetime64(start, "D") + np.arange(first_day, last_day)
    intensity, promo = seasonal_intensity(dates)
    return Calendar(start, first_day, intensity, np.cumsum(intensity), promo)


def build_catalogue(rng: np.random.Generator, size: int, gift_share: float) -> Catalogue:
    """Products with lognormal prices ending in .00 or .90 and a popularity skew."""
    raw = np.clip(rng.lognormal(np.log(79.0), 1.0, size), 2.0, 6000.0)
    yuan = np.ceil(raw)
    cents = (yuan * 100 - np.where(rng.random(size) < 0.6, 10, 100)).astype(np.int64)
    cents = np.maximum(cents, 190)
    popularity = 1.0 / np.arange(1, size + 1) ** 0.9
    popularity = popularity[rng.permutation(size)]
    codes = np.char.add("SKU", np.char.zfill(np.arange(1, size + 1).astype(str), 5))
    # Gift sets carry Chinese in their code: it exercises the GBK store file end to end.
    gift = rng.random(size) < gift_share
    codes = np.where(gift, np.char.add(codes, "-礼盒"), codes)
    return Catalogue(
        sku_codes=codes,
        price_cents=cents,
        popularity_cdf=np.cumsum(popularity) / popularity.sum(),
        by_price=np.argsort(cents, kind="stable").astype(np.int64),
    )


def draw_population(
    rng: np.random.Generator, calendar: Calendar, days: int, size: int, params: SimulationParams
) -> Population:
    """Customer traits; signups spread over warm-up and window, growing and seasonal."""
    span = np.arange(calendar.first_day, days)
    weights = (1 + params.signup_growth * (span - span[0]) / len(span)) * np.sqrt(
        calendar.intensity[: len(span)]
    )
    cdf = np.cumsum(weights) / weights.sum()
    signup = np.sort(
        span[np.searchsorted(cdf, rng.random(size), side="right").clip(0, len(span) - 1)]
    )
    delay = np.where(
        rng.random(size) < params.same_day_first_purchase,
        0,
        np.ceil(rng.exponential(params.first_purchase_delay_mean, size)),
    )
    never = rng.random(size) < params.never_buyer_share
    first = np.where(never, NEVER, signup + delay)
    gap = np.clip(
        rng.lognormal(np.log(params.gap_median_days), params.gap_sigma, size),
        params.gap_min_days,
        params.gap_max_days,
    )
    return Population(
        signup_day=signup.astype(np.int32),
        first_purchase_day=first.astype(np.int32),
        mean_gap=gap.astype(np.float32),
        gap_shape=rng.uniform(params.gap_shape_min, params.gap_shape_max, size).astype(np.float32),
        lines_mean=np.clip(rng.lognormal(np.log(1.7), 0.35, size), 1.0, 6.0).astype(np.float32),
        price_preference=rng.beta(2.0, 2.5, size).astype(np.float32),
        primary_channel=rng.choice(3, size=size, p=params.channel_shares).astype(np.int8),
        channel_loyalty=rng.uniform(0.6, 1.0, size).astype(np.float32),
        frailty=rng.gamma(2.0, 0.5, size).astype(np.float32),
        maturity_after=rng.integers(3, 8, size).astype(np.int16),
    )


class _Log:
    """Append-only columns collected in chunks, concatenated once at the end."""

    def __init__(self, dtypes: tuple[type[np.generic], ...]) -> None:
        self._dtypes = dtypes
        self._chunks: list[list[npt.NDArray[np.generic]]] = [[] for _ in dtypes]

    def add(self, *columns: npt.ArrayLike) -> None:
        for chunks, dtype, column in zip(self._chunks, self._dtypes, columns, strict=True):
            chunks.append(np.asarray(column, dtype=dtype))

    def columns(self) -> list[npt.NDArray[np.generic]]:
        return [
            np.concatenate(chunks) if chunks else np.empty(0, dtype)
            for chunks, dtype in zip(self._chunks, self._dtypes, strict=True)
        ]


class Simulator:
    """Advance all customers one day at a time; only customers with an event that day work."""

    def __init__(
        self,
        start: date,
        days: int,
        customers: int,
        seed: int,
        params: SimulationParams | None = None,
    ) -> None:
        self.params = params or SimulationParams()
        self.days = days
        population_seq, life_seq, catalogue_seq = np.random.SeedSequence(seed).spawn(3)
        first_day = -self.params.warmup_days
        self.calendar = build_calendar(start, first_day, days + self.params.horizon_days)
        self.catalogue = build_catalogue(
            np.random.default_rng(catalogue_seq),
            self.params.catalogue_size,
            self.params.gift_set_share,
        )
        self.population = draw_population(
            np.random.default_rng(population_seq), self.calendar, days, customers, self.params
        )
        self._rng = np.random.default_rng(life_seq)
        self._signup_bounds = np.searchsorted(
            self.population.signup_day, np.arange(first_day, days + 1), side="left"
        )
        self._init_state(customers)

    @property
    def first_day(self) -> int:
        return self.calendar.first_day

    def _init_state(self, size: int) -> None:
        self.state = np.full(size, NOT_SIGNED_UP, np.int8)
        self.next_buy = self.population.first_purchase_day.copy()
        self.event_day = np.full(size, NEVER, np.int32)
        self.n_buys = np.zeros(size, np.int16)
        self.gap_mult = np.ones(size, np.float32)
        self.prev_state = np.zeros(size, np.int8)
        self.outcome = np.zeros(size, np.int8)
        self.bad_next_order = np.zeros(size, np.bool_)
        self._complaints = np.empty(0, np.int64)
        self._episodes = _Log((np.int32, np.int8, np.int32, np.bool_))
        self._dissatisfied = _Log((np.int32, np.int32, np.int8, np.int32, np.int8))
        self._pending = _PendingReturns()

    # -- one day -------------------------------------------------------------------------

    def step(self, day: int) -> DayLines | None:
        """Simulate `day`; return its order lines when the day needs them (near or in window).

        Call it for every day in order, from `first_day` (warm-up) to `days - 1`.
        """
        self._complaints = np.empty(0, np.int64)
        self._sign_up(day)
        self._lifecycle_events(day)
        buyers = self._purchase(day)
        bonus = self._promo_buyers(day, buyers)
        if day < -self.params.return_window_days:
            return None  # early warm-up: only states matter, no line can reach the window
        members = np.concatenate([buyers, bonus])
        orders = self._member_orders(members)
        if day >= 0:
            orders = _concat_orders(orders, self._guest_orders(len(members)))
        return self._lines(day, orders)

    def _sign_up(self, day: int) -> None:
        pos = day - self.first_day
        idx = np.arange(self._signup_bounds[pos], self._signup_bounds[pos + 1])
        self.state[idx] = PROSPECT
        self._log_state(idx, PROSPECT, day)

    def _log_state(self, idx: I64, state: int, day: int, *, win_back: bool = False) -> None:
        if len(idx):
            n = len(idx)
            self._episodes.add(idx, np.full(n, state), np.full(n, day), np.full(n, win_back))

    def _onset_delay(self, idx: I64, states: I8) -> I64:
        hazard = np.asarray(self.params.hazard_by_stage)[states - SOCIALIZATION]
        rate = self.params.dissatisfaction_hazard * hazard * self.population.frailty[idx]
        delay = 1 + np.floor(self._rng.exponential(1.0, len(idx)) / np.maximum(rate, 1e-9))
        capped: I64 = np.minimum(delay, NEVER // 2).astype(np.int64)
        return capped

    def _schedule_onset(self, idx: I64, day: int) -> None:
        self.event_day[idx] = day + self._onset_delay(idx, self.state[idx])

    # -- lifecycle -----------------------------------------------------------------------

    def _lifecycle_events(self, day: int) -> None:
        due = np.flatnonzero(self.event_day == day)
        if not len(due):
            return
        states = self.state[due]
        # The customer's next order goes wrong; dissatisfaction starts with it.
        self.bad_next_order[due[(states >= SOCIALIZATION) & (states <= MATURITY)]] = True
        self.event_day[due[(states >= SOCIALIZATION) & (states <= MATURITY)]] = NEVER
        self._resolve(due[states == DISSATISFIED], day)
        self._win_back(due[states == CHURNED], day)

    def _onset(self, idx: I64, day: int, stage_at_onset: I8) -> None:
        """Dissatisfaction from ``day``; ``stage_at_onset`` is the stage the bad order
        was placed in (the order itself may have promoted the customer)."""
        if not len(idx):
            return
        p = self.params
        stage = stage_at_onset
        self.prev_state[idx] = self.state[idx]
        self.state[idx] = DISSATISFIED
        self._log_state(idx, DISSATISFIED, day)
        mult = self._rng.uniform(p.dissatisfied_gap_min, p.dissatisfied_gap_max, len(idx))
        self.gap_mult[idx] = mult
        # The purchase the customer was heading for now comes much later, if at all.
        pending = self.next_buy[idx]
        stretched = day + np.maximum(1, np.round((pending - day + 0.5) * mult))
        self.next_buy[idx] = np.where(pending >= NEVER, NEVER, stretched)
        recover = self._rng.random(len(idx)) < np.asarray(p.recover_share_by_stage)[stage - 1]
        recovery = np.maximum(
            p.recovery_days_min,
            np.round(
                self._rng.uniform(p.recovery_gaps_min, p.recovery_gaps_max, len(idx))
                * self.population.mean_gap[idx]
            ),
        )
        churn = np.clip(
            np.round(
                self._rng.gamma(2.0, p.churn_decision_gap_multiple / 2.0, len(idx))
                * self.population.mean_gap[idx]
            ),
            p.churn_days_min,
            p.churn_days_max,
        )
        resolve = day + np.where(recover, recovery, churn).astype(np.int64)
        self.outcome[idx] = np.where(recover, RECOVERED, CHURNED_OUTCOME)
        self.event_day[idx] = resolve
        self._dissatisfied.add(idx, np.full(len(idx), day), self.outcome[idx], resolve, stage)

    def _resolve(self, idx: I64, day: int) -> None:
        recovered = idx[self.outcome[idx] == RECOVERED]
        churned = idx[self.outcome[idx] == CHURNED_OUTCOME]
        self.gap_mult[idx] = 1.0
        for stage in (SOCIALIZATION, GROWTH, MATURITY):
            back = recovered[self.prev_state[recovered] == stage]
            self.state[back] = stage
            self._log_state(back, stage, day)
        if len(recovered):
            # A recovered customer returns to their own rhythm from today.
            fresh = self.calendar.advance(day, self._gaps(recovered, 1.0))
            self.next_buy[recovered] = np.minimum(self.next_buy[recovered], fresh)
            self._schedule_onset(recovered, day)
        self.state[churned] = CHURNED
        self._log_state(churned, CHURNED, day)
        self.next_buy[churned] = NEVER
        returns = self._rng.random(len(churned)) < self.params.win_back_share
        delay = self.params.win_back_min_days + np.round(
            self._rng.exponential(self.params.win_back_mean_extra, len(churned))
        )
        self.event_day[churned] = np.where(returns, day + delay, NEVER)

    def _win_back(self, idx: I64, day: int) -> None:
        if not len(idx):
            return
        self.state[idx] = SOCIALIZATION
        self._log_state(idx, SOCIALIZATION, day, win_back=True)
        self.n_buys[idx] = 0
        self.next_buy[idx] = day  # the comeback is itself a purchase
        self._schedule_onset(idx, day)

    # -- purchases -----------------------------------------------------------------------

    def _gaps(self, idx: I64, mult: F64 | float) -> F64:
        shape = self.population.gap_shape[idx].astype(np.float64)
        scale = self.population.mean_gap[idx] * mult / shape
        return self._rng.gamma(shape, scale)

    def _growth_progress(self, idx: I64) -> F64:
        span = np.maximum(self.population.maturity_after[idx] - 2, 1)
        return np.clip((self.n_buys[idx] - 2) / span, 0.0, 1.0)

    def _purchase(self, day: int) -> I64:
        buyers = np.flatnonzero(self.next_buy == day)
        if not len(buyers):
            return buyers
        before = self.state[buyers]
        self.n_buys[buyers] += 1
        self._promote(buyers, before, day)
        self.next_buy[buyers] = self.calendar.advance(
            day, self._gaps(buyers, self._gap_mult(buyers))
        )
        is_bad = self.bad_next_order[buyers] & (self.state[buyers] >= SOCIALIZATION)
        bad = buyers[is_bad]
        self.bad_next_order[bad] = False
        self._onset(bad, day, before[is_bad])
        self._complaints = bad
        return buyers

    def _promote(self, idx: I64, before: I8, day: int) -> None:
        """First purchase socializes, the second starts growth, enough purchases mature."""
        mature_after = self.population.maturity_after[idx]
        moves = (
            (before == PROSPECT, SOCIALIZATION),
            ((before == SOCIALIZATION) & (self.n_buys[idx] >= 2), GROWTH),
            ((before == GROWTH) & (self.n_buys[idx] >= mature_after), MATURITY),
        )
        for mask, target in moves:
            moved = idx[mask]
            self.state[moved] = target
            self._log_state(moved, target, day)
            # Hazard depends on the stage; exponential waits allow a fresh draw.
            self._schedule_onset(moved, day)

    def _gap_mult(self, idx: I64) -> F64:
        """Longer gaps before the rhythm settles, much longer when dissatisfied."""
        state = self.state[idx]
        growth = 1.3 - 0.3 * self._growth_progress(idx)
        mult = np.select(
            [state == SOCIALIZATION, state == GROWTH, state == DISSATISFIED],
            [np.full(len(idx), 1.4), growth, self.gap_mult[idx].astype(np.float64)],
            1.0,
        )
        return mult

    def _spend(self, idx: I64) -> F64:
        state = self.state[idx]
        growth = 0.85 + 0.2 * self._growth_progress(idx)
        return np.select(
            [state == SOCIALIZATION, state == GROWTH, state == MATURITY],
            [np.full(len(idx), 0.85), growth, np.full(len(idx), 1.05)],
            0.6,
        )

    def _promo_buyers(self, day: int, buyers: I64) -> I64:
        """Festival days pull extra orders from active customers, frequent ones most."""
        boost = self.calendar.promo_boost[day - self.first_day]
        if boost <= 0:
            return np.empty(0, np.int64)
        active = (self.state >= SOCIALIZATION) & (self.state <= MATURITY)
        active[buyers] = False
        idx = np.flatnonzero(active)
        chance = boost * np.clip(30.0 / self.population.mean_gap[idx], 0.1, 1.0)
        chosen: I64 = idx[self._rng.random(len(idx)) < chance]
        return chosen

    # -- orders and lines ----------------------------------------------------------------

    def _member_orders(self, idx: I64) -> _Orders:
        pop = self.population
        primary = pop.primary_channel[idx]
        other = self._rng.choice(3, size=len(idx), p=self.params.channel_shares)
        loyal = self._rng.random(len(idx)) < pop.channel_loyalty[idx]
        rates = np.asarray(self.params.return_rate_by_state)
        state = self.state[idx]
        complaint = np.isin(idx, self._complaints)
        return _Orders(
            customer=idx.astype(np.int32),
            channel=np.where(loyal, primary, other).astype(np.int8),
            spend=self._spend(idx),
            lines_mean=pop.lines_mean[idx].astype(np.float64),
            price_preference=pop.price_preference[idx].astype(np.float64),
            return_rate=np.where(
                complaint,
                self.params.complaint_return_share,
                rates[np.minimum(state, DISSATISFIED)],
            ),
            return_days=np.where(
                complaint, self.params.complaint_return_days, self.params.return_window_days
            ).astype(np.int64),
        )

    def _guest_orders(self, member_orders: int) -> _Orders:
        share = self.params.guest_order_share
        n = int(self._rng.poisson(share / (1 - share) * max(member_orders, 1)))
        return _Orders(
            customer=np.full(n, -1, np.int32),
            channel=self._rng.choice(3, size=n, p=(0.6, 0.25, 0.15)).astype(np.int8),
            spend=np.ones(n),
            lines_mean=np.full(n, 1.5),
            price_preference=self._rng.beta(2.0, 2.5, n),
            return_rate=np.full(n, self.params.guest_return_rate),
            return_days=np.full(n, self.params.return_window_days, np.int64),
        )

    def _lines(self, day: int, orders: _Orders) -> DayLines:
        """Baskets for today's orders, plus the returns that fall due today."""
        rng = self._rng
        n_orders = len(orders.customer)
        lam = np.maximum(orders.lines_mean * orders.spend - 1.0, 0.0)
        lam = np.where(orders.channel == STORE, lam * 1.2, lam)
        n_lines = np.minimum(1 + rng.poisson(lam), 12)
        order_of_line = np.repeat(np.arange(n_orders), n_lines)
        first_line = np.cumsum(n_lines) - n_lines
        line_number = np.arange(len(order_of_line)) - first_line[order_of_line] + 1
        shift = 0.3 * (orders.spend - 1.0)
        sku = self._pick_skus(orders.price_preference[order_of_line] + shift[order_of_line])
        price = self.catalogue.price_cents[sku]
        quantity = 1 + rng.poisson(np.where(price < 3000, 0.8, 0.15))
        cancelled = (rng.random(n_orders) < self.params.cancel_rate) & (orders.channel != STORE)
        status = np.where(cancelled, CANCELLED, COMPLETED).astype(np.int8)
        self._schedule_returns(day, orders, status, first_line, n_lines, sku, quantity, price)
        returns = self._pending.pop(day)
        seconds = self._order_seconds(np.concatenate([orders.channel, returns.channel]))
        return _assemble(
            channel=np.concatenate([orders.channel[order_of_line], returns.channel]),
            order=np.concatenate([order_of_line, n_orders + np.arange(len(returns.channel))]),
            line_number=np.concatenate([line_number, np.ones(len(returns.channel), np.int64)]),
            customer=np.concatenate([orders.customer[order_of_line], returns.customer]),
            seconds=seconds,
            sku=np.concatenate([sku, returns.sku]),
            quantity=np.concatenate([quantity, -returns.quantity]),
            price_cents=np.concatenate([price, returns.price_cents]),
            status=np.concatenate(
                [status[order_of_line], np.full(len(returns.channel), RETURNED, np.int8)]
            ),
        )

    def _pick_skus(self, preference: F64) -> I64:
        """Half bestsellers, half products in the customer's own price band."""
        rng = self._rng
        cat = self.catalogue
        n, size = len(preference), len(cat.price_cents)
        popular = np.searchsorted(cat.popularity_cdf, rng.random(n), side="right")
        band = np.clip((preference + rng.normal(0.0, 0.12, n)) * size, 0, size - 1)
        own_band = cat.by_price[band.astype(np.int64)]
        return np.where(rng.random(n) < 0.55, np.minimum(popular, size - 1), own_band)

    def _order_seconds(self, channel: I8) -> I32:
        """Local second of day per order, from the channel's hourly profile."""
        rng = self._rng
        cdf = np.cumsum(_HOUR_WEIGHTS, axis=1)
        cdf /= cdf[:, -1:]
        u = rng.random(len(channel))
        hour = np.zeros(len(channel), np.int64)
        for ch in range(len(CHANNEL_NAMES)):
            mask = channel == ch
            hour[mask] = np.searchsorted(cdf[ch], u[mask], side="right")
        return (hour * 3600 + rng.integers(0, 3600, len(channel))).astype(np.int32)

    def _schedule_returns(
        self,
        day: int,
        orders: _Orders,
        status: I8,
        first_line: I64,
        n_lines: I64,
        sku: I64,
        quantity: I64,
        price: I64,
    ) -> None:
        rng = self._rng
        n_orders = len(status)
        returned = (status == COMPLETED) & (rng.random(n_orders) < orders.return_rate)
        line = first_line + np.floor(rng.random(n_orders) * n_lines).astype(np.int64)
        line = line[returned]
        self._pending.add(
            due=day + 1 + np.floor(rng.random(int(returned.sum())) * orders.return_days[returned]),
            channel=orders.channel[returned],
            customer=orders.customer[returned],
            sku=sku[line],
            quantity=quantity[line],
            price_cents=price[line],
        )

    # -- ground truth --------------------------------------------------------------------

    def ground_truth(self) -> GroundTruth:
        """Episodes per customer in time order; valid_to is the next episode's start."""
        cust, state, start, win_back = self._episodes.columns()
        order = np.argsort(cust, kind="stable")
        cust, state, start, win_back = cust[order], state[order], start[order], win_back[order]
        end = np.full(len(cust), NEVER, np.int64)
        same = cust[1:] == cust[:-1]
        end[:-1] = np.where(same, start[1:], NEVER)
        end = np.where(end >= self.days, NEVER, end)
        keep = end != start  # zero-length stages (first purchase on signup day) carry no time
        d_cust, d_onset, d_outcome, d_resolve, d_from = self._dissatisfied.columns()
        d_order = np.lexsort((d_onset, d_cust))
        return GroundTruth(
            episode_customer=cust[keep].astype(np.int32),
            episode_state=state[keep].astype(np.int8),
            episode_from=start[keep].astype(np.int32),
            episode_to=end[keep],
            episode_win_back=win_back[keep].astype(np.bool_),
            dissatisfied_customer=d_cust[d_order].astype(np.int32),
            dissatisfied_onset=d_onset[d_order].astype(np.int32),
            dissatisfied_outcome=d_outcome[d_order].astype(np.int8),
            dissatisfied_resolved=d_resolve[d_order].astype(np.int32),
            dissatisfied_from_state=d_from[d_order].astype(np.int8),
            final_state=self.state.copy(),
        )


@dataclass
class _Returns:
    channel: I8
    customer: I32
    sku: I64
    quantity: I64
    price_cents: I64


class _PendingReturns:
    """Returns promised for a later day; bounded by the return window, not by history."""

    _FIELDS = ("due", "channel", "customer", "sku", "quantity", "price_cents")

    def __init__(self) -> None:
        self._data: dict[str, npt.NDArray[np.int64]] = {
            name: np.empty(0, np.int64) for name in self._FIELDS
        }

    def add(self, **columns: npt.NDArray[np.generic]) -> None:
        for name in self._FIELDS:
            self._data[name] = np.concatenate([self._data[name], columns[name].astype(np.int64)])

    def pop(self, day: int) -> _Returns:
        due = self._data["due"] == day
        out = {name: values[due] for name, values in self._data.items()}
        self._data = {name: values[~due] for name, values in self._data.items()}
        return _Returns(
            channel=out["channel"].astype(np.int8),
            customer=out["customer"].astype(np.int32),
            sku=out["sku"],
            quantity=out["quantity"],
            price_cents=out["price_cents"],
        )


def _concat_orders(a: _Orders, b: _Orders) -> _Orders:
    return _Orders(
        customer=np.concatenate([a.customer, b.customer]),
        channel=np.concatenate([a.channel, b.channel]),
        spend=np.concatenate([a.spend, b.spend]),
        lines_mean=np.concatenate([a.lines_mean, b.lines_mean]),
        price_preference=np.concatenate([a.price_preference, b.price_preference]),
        return_rate=np.concatenate([a.return_rate, b.return_rate]),
        return_days=np.concatenate([a.return_days, b.return_days]),
    )


def _assemble(
    *,
    channel: I8,
    order: I64,
    line_number: I64,
    customer: I32,
    seconds: I32,
    sku: I64,
    quantity: I64,
    price_cents: I64,
    status: I8,
) -> DayLines:
    """Sort lines by channel and order time; number orders per channel in time order."""
    line_seconds = seconds[order]
    sort = np.lexsort((line_number, order, line_seconds, channel))
    channel, order = channel[sort], order[sort]
    new_order = np.concatenate([[True], order[1:] != order[:-1]])
    rank = np.cumsum(new_order) - 1
    # Lines are grouped by channel: the first line of a line's channel starts its numbering.
    channel_start = np.searchsorted(channel, channel, side="left")
    return DayLines(
        channel=channel.astype(np.int8),
        order_seq=(rank - rank[channel_start]).astype(np.int64),
        line_number=line_number[sort].astype(np.int32),
        customer=customer[sort].astype(np.int32),
        seconds=line_seconds[sort].astype(np.int32),
        sku=sku[sort].astype(np.int64),
        quantity=quantity[sort].astype(np.int64),
        price_cents=price_cents[sort].astype(np.int64),
        status=status[sort].astype(np.int8),
    )
