"""Generate a seeded demo dataset: daily sales exports plus the hidden lifecycle ground truth.

Layout under `out_dir` (the same arguments always give byte-identical files):

incoming/  one set of exports per day D in [start, start + days)
    sales_YYYYMMDD_web.csv.gz    web shop; gzip (mtime 0), UTF-8, comma, `\\n` line ends.
        Header: order_id,line_number,customer_id,order_time,sku,quantity,unit_price,amount,
        currency,status. order_id `W` + 10 digits, unique in the dataset; order_time is local
        Asia/Shanghai `YYYY-MM-DD HH:MM:SS` within D; customer_id `C0000123`, empty for
        guests; money with 2 decimals, amount = quantity * unit_price; status completed,
        returned (negative quantity and amount, its own order, 1-30 days after the purchase)
        or cancelled. Values are quoted only when they contain a comma or a quote.
        Injected noise (about 0.15% of lines, counted per kind in the summary): quantity
        like `3x`, unit_price and amount like `12,5O`, order_time like `2026-13-45 25:61:00`,
        empty order_id, currency `USD`, order_time 9 days before D.
    sales_YYYYMMDD_web_resend.csv.gz    on a few days: a byte copy of the previous day's web
        file (its lines belong to D - 1 and duplicate lines already delivered).
    sales_YYYYMMDD_store.tsv    stores (POS); GBK, TAB, header
        订单号 客户编号 下单时间 商品编号 数量 单价 金额; order id `S` + 10 digits; no status:
        returns have negative 数量 and 金额, there are no cancellations. Some SKU codes end in
        `-礼盒` (gift sets), in every channel.
    sales_YYYYMMDD_store (1).tsv    once: a byte copy of the same day's store file.
    sales_YYYYMMDD_app.parquet    app/marketplace; order_id `A` + 10 digits, line_number
        int32, customer_id (null for guests), ordered_at timestamp[us, UTC] (absolute; the
        local day is D, so early-morning orders fall on D - 1 in UTC), sku, quantity int32,
        unit_price and amount decimal128(12, 2), currency, status.
    customers_YYYYMMDD.csv    customer master, UTF-8, comma: customer_id,signup_date,email,
        phone,city for customers who signed up on D. The first day's file also carries the
        whole base that signed up before `start` (the initial load), with their real dates.

ground_truth/  what the pipeline must discover (days before `start` come from a silent
    warm-up of `SimulationParams.warmup_days` days that writes no exports)
    customers.parquet    one row per customer: customer_id, signup_date,
        first_purchase_date (null if none before the end), mean_gap_days,
        gap_regularity_shape, archetype, primary_channel, basket_lines_mean,
        price_preference, dissatisfaction_proneness, is_never_buyer, state_at_end.
    state_episodes.parquet    one row per customer per hidden-state episode: customer_id,
        state (prospect, socialization, growth, maturity, dissatisfied, churned),
        valid_from, valid_to (exclusive, null if open at the end), is_win_back.
    dissatisfaction.parquet    one row per dissatisfaction episode: customer_id, onset_date,
        outcome (recovered, churned, open), resolved_date (null if open), stage_at_onset.

manifest.json    the arguments and the summary counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pipeline.demo import exports
from pipeline.demo.simulate import (
    APP,
    CANCELLED,
    CHANNEL_NAMES,
    CHURNED_OUTCOME,
    DISSATISFIED,
    RETURNED,
    STORE,
    WEB,
    DayLines,
    GroundTruth,
    Simulator,
)

NOISE_RATE_PER_KIND = 0.00025
RESEND_EVERY_DAYS = 120


@dataclass(frozen=True)
class GenerateSummary:
    """Counts of what one `generate` run wrote (resent copies are not counted as lines)."""

    start: date
    days: int
    seed: int
    customers: int
    backfilled_customers: int  # signed up during the silent warm-up, before `start`
    warmup_days: int
    orders_written: int  # all channels; each return is an order of its own
    order_lines_written: int
    web_lines: int
    store_lines: int
    app_lines: int
    return_lines: int
    cancelled_lines: int
    guest_lines: int
    files_written: int  # every file under out_dir, manifest.json included
    resent_files: int  # web resends plus the one store `(1)` copy
    bad_quantity: int
    bad_price: int
    bad_timestamp: int
    empty_order_id: int
    unknown_currency: int
    out_of_window_time: int
    # from the ground truth: lifecycle events dated inside [start, start + days)
    dissatisfaction_onsets_in_window: int
    churns_in_window: int
    win_backs_in_window: int

    @property
    def bad_rows_injected(self) -> int:
        return sum(getattr(self, kind) for kind in exports.NOISE_KINDS)

    def as_dict(self) -> dict[str, object]:
        values: dict[str, object] = asdict(self)
        values["start"] = self.start.isoformat()
        values["bad_rows_injected"] = self.bad_rows_injected
        return values


@dataclass
class _Tally:
    orders: int = 0
    lines: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNEL_NAMES, 0))
    returns: int = 0
    cancelled: int = 0
    guests: int = 0
    files: int = 0
    resent: int = 0
    noise: dict[str, int] = field(default_factory=lambda: dict.fromkeys(exports.NOISE_KINDS, 0))


@dataclass(frozen=True)
class _Plan:
    """Which days get the re-sent files and the guaranteed noise kinds."""

    resend_days: frozenset[int]
    store_copy_day: int
    forced_noise: dict[int, frozenset[str]]


def _plan(rng: np.random.Generator, days: int) -> _Plan:
    n_resend = min(max(1, round(days / RESEND_EVERY_DAYS)), days - 1)
    resend: list[int] = (
        rng.choice(np.arange(1, days), size=n_resend, replace=False).tolist() if n_resend else []
    )
    forced: dict[int, set[str]] = {}
    # Each kind shows up at least once even in a tiny run, so tests and demos can see it.
    for kind, day in zip(
        exports.NOISE_KINDS, rng.integers(0, days, len(exports.NOISE_KINDS)), strict=True
    ):
        forced.setdefault(int(day), set()).add(kind)
    return _Plan(
        resend_days=frozenset(int(d) for d in resend),
        store_copy_day=int(rng.integers(0, days)),
        forced_noise={day: frozenset(kinds) for day, kinds in forced.items()},
    )


def generate(
    out_dir: Path,
    *,
    start: date,
    days: int,
    customers: int,
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
) -> GenerateSummary:
    """Simulate `customers` over a warm-up and `days` days; write exports and ground truth.

    Args:
        out_dir: created if missing; files of an earlier run with other arguments are not
            removed, so use a fresh directory.
        progress: called once per simulated day of the window with the day index (0-based).
    """
    if days < 1 or customers < 1:
        raise ValueError("days and customers must be at least 1")
    incoming = out_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    sim = Simulator(start, days, customers, seed)
    plan_seq, noise_seq, contact_seq = np.random.SeedSequence(seed, spawn_key=(1,)).spawn(3)
    plan = _plan(np.random.default_rng(plan_seq), days)
    writer = _DayWriter(incoming, sim, plan, noise_seq, contact_seq)
    for day in range(sim.first_day, 0):
        sim.step(day)
    for day in range(days):
        lines = sim.step(day)
        assert lines is not None  # window days always produce lines
        writer.write(day, start + timedelta(days=day), lines)
        if progress is not None:
            progress(day)
    truth = sim.ground_truth()
    exports.write_ground_truth(
        out_dir / "ground_truth", start, days, sim.population, truth, writer.ctx.customer_width
    )
    summary = _summarize(start, days, seed, sim, truth, writer.tally)
    _write_manifest(out_dir, summary)
    return summary


class _DayWriter:
    """Writes one day's export files and keeps the running order numbers and counts."""

    def __init__(
        self,
        incoming: Path,
        sim: Simulator,
        plan: _Plan,
        noise_seq: np.random.SeedSequence,
        contact_seq: np.random.SeedSequence,
    ) -> None:
        self.incoming = incoming
        self.start = sim.calendar.start
        self.signup_day = sim.population.signup_day
        self.ctx = exports.make_context(sim.catalogue.sku_codes, sim.population.size)
        self.plan = plan
        self.noise_rng = np.random.default_rng(noise_seq)
        self.contact_rng = np.random.default_rng(contact_seq)
        self.next_number = dict.fromkeys(CHANNEL_NAMES, 1)
        self.previous_web: bytes | None = None
        self.tally = _Tally()

    def _save(self, name: str, data: bytes) -> None:
        (self.incoming / name).write_bytes(data)
        self.tally.files += 1

    def write(self, day: int, on: date, lines: DayLines) -> None:
        stamp = on.strftime("%Y%m%d")
        self._count(lines)
        web = self._web_bytes(day, on, lines.subset(lines.channel == WEB))
        self._save(f"sales_{stamp}_web.csv.gz", web)
        if day in self.plan.resend_days and self.previous_web is not None:
            self._save(f"sales_{stamp}_web_resend.csv.gz", self.previous_web)
            self.tally.resent += 1
        self.previous_web = web
        store_lines = lines.subset(lines.channel == STORE)
        store = exports.store_file_bytes(
            store_lines, self.ctx, on, self._take_numbers("store", store_lines)
        )
        self._save(f"sales_{stamp}_store.tsv", store)
        if day == self.plan.store_copy_day:
            self._save(f"sales_{stamp}_store (1).tsv", store)
            self.tally.resent += 1
        app_lines = lines.subset(lines.channel == APP)
        table = exports.app_table(app_lines, self.ctx, on, self._take_numbers("app", app_lines))
        exports.write_parquet(table, self.incoming / f"sales_{stamp}_app.parquet")
        self.tally.files += 1
        self._save(f"customers_{stamp}.csv", self._customers_bytes(day))

    def _take_numbers(self, channel: str, lines: DayLines) -> int:
        """First order number for today's orders of `channel`; advances the counter."""
        first = self.next_number[channel]
        self.next_number[channel] += int(lines.order_seq.max()) + 1 if len(lines) else 0
        return first

    def _web_bytes(self, day: int, on: date, lines: DayLines) -> bytes:
        columns = exports.web_columns(lines, self.ctx, on, self._take_numbers("web", lines))
        forced = self.plan.forced_noise.get(day, frozenset())
        counts = exports.inject_web_noise(
            columns, lines, on, self.noise_rng, NOISE_RATE_PER_KIND, forced
        )
        for kind, count in counts.items():
            self.tally.noise[kind] += count
        return exports.web_file_bytes(columns)

    def _customers_bytes(self, day: int) -> bytes:
        # Day 0 carries the backfilled base too: the pipeline's initial load of the master.
        low = 0 if day == 0 else int(np.searchsorted(self.signup_day, day, side="left"))
        high = int(np.searchsorted(self.signup_day, day, side="right"))
        index = np.arange(low, high, dtype=np.int64)
        return exports.customer_file_bytes(
            index, self.signup_day[low:high], self.start, self.ctx, self.contact_rng
        )

    def _count(self, lines: DayLines) -> None:
        tally = self.tally
        for channel, name in enumerate(CHANNEL_NAMES):
            tally.lines[name] += int(np.count_nonzero(lines.channel == channel))
        tally.orders += int(np.count_nonzero(lines.line_number == 1))
        tally.returns += int(np.count_nonzero(lines.status == RETURNED))
        tally.cancelled += int(np.count_nonzero(lines.status == CANCELLED))
        tally.guests += int(np.count_nonzero(lines.customer < 0))


def _summarize(
    start: date, days: int, seed: int, sim: Simulator, truth: GroundTruth, tally: _Tally
) -> GenerateSummary:
    in_window = truth.episode_from >= 0
    win_backs = in_window & truth.episode_win_back
    churned = (truth.dissatisfied_outcome == CHURNED_OUTCOME) & (truth.dissatisfied_resolved < days)
    return GenerateSummary(
        start=start,
        days=days,
        seed=seed,
        customers=sim.population.size,
        backfilled_customers=int(np.count_nonzero(sim.population.signup_day < 0)),
        warmup_days=sim.params.warmup_days,
        orders_written=tally.orders,
        order_lines_written=sum(tally.lines.values()),
        web_lines=tally.lines["web"],
        store_lines=tally.lines["store"],
        app_lines=tally.lines["app"],
        return_lines=tally.returns,
        cancelled_lines=tally.cancelled,
        guest_lines=tally.guests,
        files_written=tally.files + 3 + 1,  # ground truth tables and the manifest
        resent_files=tally.resent,
        bad_quantity=tally.noise["bad_quantity"],
        bad_price=tally.noise["bad_price"],
        bad_timestamp=tally.noise["bad_timestamp"],
        empty_order_id=tally.noise["empty_order_id"],
        unknown_currency=tally.noise["unknown_currency"],
        out_of_window_time=tally.noise["out_of_window_time"],
        dissatisfaction_onsets_in_window=int(
            np.count_nonzero(in_window & (truth.episode_state == DISSATISFIED))
        ),
        churns_in_window=int(np.count_nonzero(churned & (truth.dissatisfied_resolved >= 0))),
        win_backs_in_window=int(np.count_nonzero(win_backs)),
    )


def _write_manifest(out_dir: Path, summary: GenerateSummary) -> None:
    arguments = {
        "start": summary.start.isoformat(),
        "days": summary.days,
        "customers": summary.customers,
        "seed": summary.seed,
    }
    manifest = {"arguments": arguments, "summary": summary.as_dict()}
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
