"""Generate a synthetic order-line history straight into the lake, for scoring benchmarks.

``python -m bench.history --lake DIR --lines 100000000 --customers 5000000 --days 365``

Writes, for each day, ``order_lines`` and then ``ingest_ledger`` partitions shaped exactly
like the ones ``ingest`` writes (no CSV, no ingest). Every value comes from DuckDB's
``hash()`` of a unique integer key (run seed, stream, day, order, line, customer or
product), so the bytes depend on the arguments only, not on threads or timing, and no row
passes through Python. One query per day, so memory stays bounded whatever the history.

The data:

- lines per day: even, with a weekly rhythm and the 6.18 / 11.11 shopping festivals;
  the days sum to exactly ``lines``;
- orders of 1-4 lines (40/30/20/10 %, mean 2), placed by local (Asia/Shanghai) hour with
  quiet nights and evening peaks; ~1% of orders arrive late, ordered up to 48 hours
  before the export day's local start (their order_date is the day before or the one
  before that); ~5% are guest orders (customer_id null);
- customers C00000001.. in four tiers (share of customers, relative buying rate): one-off
  45% x1, occasional 30% x3, regular 18% x12, loyal 7% x50. 30% already buy when the
  history starts, the others arrive evenly over it; each stays for a hashed 25%-175% of
  the history's length and then stops, so recency and frequency vary as in a real shop
  (an order draws up to 6 customers and takes the first active one, else the last);
- lines: 96% sales, 3% returns (negative quantity and amount), 1% cancellations;
  products P000001.. with Zipf-like popularity and a fixed price each (5.00-499.99 CNY);
  3% of quantities are fractional (weighed goods), the rest whole 1-10;
  amount = round(quantity * unit_price, 2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from pipeline.lake import Lake, write_partition

ORDER_LINES = "order_lines"
INGEST_LEDGER = "ingest_ledger"
LOCAL_UTC_OFFSET_SECONDS = 8 * 3600  # Asia/Shanghai: UTC+8 all year (no DST since 1991)
CATALOG = 20_000  # products
PRODUCT_WIDTH = 6  # digits of a product number
LINES_PER_ORDER_P = (0.40, 0.30, 0.20, 0.10)  # 1, 2, 3 or 4 lines: 2.0 on average
GUEST_SHARE = 0.05  # of orders
LATE_SHARE = 0.01  # of orders: ordered up to 48 h before the export day's local start
LATE_SECONDS = 48 * 3600
RETURN_SHARE = 0.03  # of lines
CANCELLATION_SHARE = 0.01  # of lines
FRACTIONAL_SHARE = 0.03  # of lines: weighed goods, quantity with 3 decimals
# Customer tiers: (residues of v mod TIER_BLOCK, i.e. % of customers; relative order rate).
TIER_BLOCK = 100
TIERS = ((45, 1), (30, 3), (18, 12), (7, 50))
PRE_EXISTING = 0.3  # of customers: bought before the history starts
CANDIDATES = 6  # customers drawn per order until one is active that day (else the last)
MIN_CUSTOMERS = TIER_BLOCK
# Orders per local hour (relative): quiet nights, lunch and evening peaks.
HOUR_WEIGHTS = (3, 2, 1, 1, 1, 1, 2, 4, 6, 8, 10, 11, 12, 10, 9, 9, 9, 10, 11, 13, 15, 16, 12, 6)
HOUR_BUCKETS = 1000
WEEKDAY_WEIGHTS = (96, 94, 95, 97, 102, 110, 106)  # Monday first
FESTIVALS = {(6, 18): 150, (11, 11): 200}  # day weight in % of an ordinary day's
MAX_ORDERS_PER_DAY = 1 << 28  # order keys are day * 2**28 + order
MEMORY_LIMIT = "1GB"

# Independent random streams: u(stream, key) for a key unique within its stream.
S_LINES, S_LATE, S_LATE_SECONDS, S_HOUR, S_SECOND, S_GUEST = 0, 1, 2, 3, 4, 5
S_CUSTOMER = 40  # .. 40 + 2 * CANDIDATES - 1 (two draws each)
S_PRODUCT, S_QUANTITY_KIND, S_QUANTITY, S_LINE_KIND = 16, 17, 18, 19
S_FIRST_DAY, S_LIFETIME = 24, 25
S_PRICE = 32

Progress = Callable[[int, date, int], None]  # (days done, the day just written, lines so far)


def generate_history(
    lake: Path,
    *,
    lines: int,
    customers: int,
    days: int,
    start: date,
    seed: int,
    progress: Progress | None = None,
    threads: int | None = None,
    memory_limit: str = MEMORY_LIMIT,
) -> dict[str, Any]:
    """Write ``days`` days of order lines from ``start`` into ``lake``; return a summary.

    ``progress(days_done, day, lines_done)`` is called after each day's partitions are in
    place. Existing partitions of those days are replaced; other days are left alone.
    """
    if lines < 0 or customers < MIN_CUSTOMERS or days < 1:
        raise ValueError(f"need lines >= 0, customers >= {MIN_CUSTOMERS} and days >= 1")
    began = time.perf_counter()
    per_day = lines_per_day(lines, start, days)
    if max(per_day) >= MAX_ORDERS_PER_DAY:
        raise ValueError(f"at most {MAX_ORDERS_PER_DAY - 1:,} lines a day")
    lake_paths = Lake(lake)
    seen = np.zeros(customers + 1, dtype=np.bool_)
    written_bytes = 0
    lines_done = 0
    orders_done = 0
    with tempfile.TemporaryDirectory(prefix="bench-history-") as spill:
        con = duckdb.connect(":memory:")
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute("set memory_limit = $limit", {"limit": memory_limit})
            con.execute("set temp_directory = $dir", {"dir": spill})
            if threads:
                con.execute("set threads = $threads", {"threads": threads})
            _create_macros(con, seed=seed, customers=customers, days=days)
            for index, day_lines in enumerate(per_day):
                day = start + timedelta(days=index)
                con.execute(_day_query(day, index, day_lines, customers, days))
                order_lines = lake_paths.partition_file(ORDER_LINES, day)
                write_partition(con.table("day_lines"), order_lines)
                row = con.execute(_DAY_STATS).fetchone()
                assert row is not None
                count, orders, csv_bytes = (int(value or 0) for value in row)
                if count != day_lines:
                    raise AssertionError(f"{day}: generated {count} lines, not {day_lines}")
                ids = con.execute(_DAY_CUSTOMERS).fetchnumpy()["customer"]
                seen[np.asarray(ids, dtype=np.int64)] = True
                ledger = lake_paths.partition_file(INGEST_LEDGER, day)
                write_partition(con.sql(_ledger_query(day, seed, count, csv_bytes)), ledger)
                written_bytes += order_lines.stat().st_size + ledger.stat().st_size
                lines_done += count
                orders_done += orders
                if progress is not None:
                    progress(index + 1, day, lines_done)
        finally:
            con.close()
    return {
        "lake": str(lake),
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "days": days,
        "lines": lines_done,
        "orders": orders_done,
        "customers": customers,
        "customers_seen": int(seen.sum()),
        "bytes": written_bytes,
        "seconds": round(time.perf_counter() - began, 3),
    }


@contextmanager
def bench_root(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """A benchmark's workdir: ``--workdir`` (kept), or a temporary folder removed at the
    end unless ``--keep``."""
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix=prefix))
    root.mkdir(parents=True, exist_ok=True)
    try:
        yield root
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def prepare_history(root: Path, args: argparse.Namespace, start: date) -> Path:
    """A benchmark's workdir: the history (generated unless ``root`` holds this very one,
    per ``history.json``) and a pipeline.toml with every path inside ``root``.

    ``args`` carries lines, customers, days, seed, memory_limit and threads.
    """
    lake = root / "lake"
    wanted = {key: getattr(args, key) for key in ("lines", "customers", "days", "seed")}
    manifest = root / "history.json"
    if not manifest.is_file() or json.loads(manifest.read_text()) != wanted:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        print(f"generating {args.lines:,} lines for {args.customers:,} customers ...", flush=True)
        summary = generate_history(lake, start=start, **wanted)
        print(
            f"generated in {summary['seconds']:.0f} s, {summary['bytes'] / 1e9:.2f} GB",
            flush=True,
        )
        manifest.write_text(json.dumps(wanted))
    config = root / "pipeline.toml"
    duckdb_settings = ""
    if args.memory_limit:
        duckdb_settings += f'memory_limit = "{args.memory_limit}"\n'
    if args.threads is not None:
        duckdb_settings += f"threads = {args.threads}\n"
    config.write_text(
        '[paths]\nincoming = "incoming"\nlake = "lake"\nstate = "state"\n'
        'published = "published"\nmodels = "models"\nalerts = "alerts"\n'
        f"[duckdb]\n{duckdb_settings}",
        encoding="utf-8",
    )
    return config


def lines_per_day(lines: int, start: date, days: int) -> list[int]:
    """Split ``lines`` over the days by weekday and festival weights; exact integer sum."""
    weights = []
    for index in range(days):
        day = start + timedelta(days=index)
        weights.append(FESTIVALS.get((day.month, day.day), 100) * WEEKDAY_WEIGHTS[day.weekday()])
    total = sum(weights)
    counts = [lines * weight // total for weight in weights]
    # Largest remainder first (earlier day on ties): the sum is exactly `lines`.
    by_remainder = sorted(range(days), key=lambda i: (-(lines * weights[i] % total), i))
    for index in by_remainder[: lines - sum(counts)]:
        counts[index] += 1
    return counts


# --- SQL -----------------------------------------------------------------------------------


def _create_macros(con: duckdb.DuckDBPyConnection, *, seed: int, customers: int, days: int) -> None:
    """Macros with the run's constants inlined (all integers or floats, never text).

    Customers live in a virtual index v in [0, C), ordered by arrival: the first
    PRE_EXISTING share already bought before the history starts, the others arrive evenly
    over it, so the customers arrived by a day are a prefix of v. Tiers interleave by
    v mod 100 (45 one-off, 30 occasional, 18 regular, 7 loyal residues), so every prefix
    has the tier mix. Customer number = (v * A + B) mod C + 1 scatters v over 1..C.
    """
    seed_key = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64)
    pre_existing = _pre_existing(customers)
    con.execute(
        # A uniform double in [0, 1) from the top 53 bits of hash(seed-key xor key*64+stream).
        "create or replace temp macro u(stream, key) as"
        f" (hash(xor({seed_key}::ubigint, (key * 64 + stream)::ubigint)) >> 11)::double"
        " / 9007199254740992.0"
    )
    con.execute(f"create or replace temp macro residue(x) as {_residue_expr()}")
    # v of a draw: x picks the residue (by tier rate), y the block among the arrived ones.
    con.execute(
        "create or replace temp macro virtual_customer(x, y, blocks) as"
        f" {TIER_BLOCK} * floor(y * blocks)::bigint + residue(x)"
    )
    # First day (relative to the history's first day) a customer buys on: pre-existing
    # ones in the half history before it, the rest in arrival order over it.
    con.execute(
        "create or replace temp macro first_day(v) as case"
        f" when v < {pre_existing}"
        f" then -1 - floor(u({S_FIRST_DAY}, v) * {days / 2!r})::bigint"
        f" else ((v - {pre_existing}) * {days}) // {customers - pre_existing} end"
    )
    # Active from the first day for 25%-175% of the history's length, then gone.
    con.execute(
        "create or replace temp macro active(v, d) as first_day(v) <= d"
        f" and d <= first_day(v) + floor((0.25 + 1.5 * u({S_LIFETIME}, v)) * {days})"
    )
    multiplier = _coprime_near(customers, 0.6180339887 * customers)
    offset = (customers * 7) // 13
    con.execute(
        "create or replace temp macro customer_number(v) as"
        f" (v * {multiplier} + {offset}) % {customers} + 1"
    )
    cumulative = np.cumsum(np.array(HOUR_WEIGHTS, dtype=np.float64))
    buckets = np.searchsorted(
        cumulative / cumulative[-1], (np.arange(HOUR_BUCKETS) + 0.5) / HOUR_BUCKETS
    )
    con.execute(
        "create or replace temp macro hour_of(x) as"
        f" [{', '.join(str(int(h)) for h in buckets)}][1 + floor(x * {HOUR_BUCKETS})::integer]"
    )


def _pre_existing(customers: int) -> int:
    return math.floor(PRE_EXISTING * customers)


def _arrived_blocks(customers: int, days: int, index: int) -> int:
    """Whole blocks of TIER_BLOCK customers arrived by day ``index`` (at least one)."""
    pre_existing = _pre_existing(customers)
    arrived = pre_existing + (customers - pre_existing) * (index + 1) // days
    return max(1, arrived // TIER_BLOCK)


def _residue_expr() -> str:
    """x in [0, 1) to a residue in [0, TIER_BLOCK), tiers weighted by rate.

    Tier t holds residues [begin_t, begin_t + size_t); x picks a tier in proportion to
    size_t * rate_t and then a residue uniformly inside it.
    """
    sizes = [size for size, _rate in TIERS]
    weights = [size * rate for size, rate in TIERS]
    total = sum(weights)
    branches = []
    begin = 0
    below = 0.0
    for size, weight in zip(sizes, weights, strict=True):
        upper = below + weight / total
        scale = size / (upper - below)
        branches.append(
            (upper, f"least({begin} + floor((x - {below!r}) * {scale!r}), {begin + size - 1})")
        )
        begin += size
        below = upper
    cases = " ".join(f"when x < {upper!r} then {index}" for upper, index in branches[:-1])
    return f"(case {cases} else {branches[-1][1]} end)::bigint"


def _coprime_near(modulus: int, target: float) -> int:
    candidate = max(1, round(target))
    while math.gcd(candidate, modulus) != 1:
        candidate += 1
    return candidate


def _day_query(day: date, index: int, day_lines: int, customers: int, days: int) -> str:
    """Materialize one export day's lines, already in file order, as temp table day_lines."""
    epoch_day = (day - date(1970, 1, 1)).days
    local_start = epoch_day * 86_400 - LOCAL_UTC_OFFSET_SECONDS  # 00:00 local, in UTC
    width = max(7, len(str(day_lines)))
    customer_width = max(8, len(str(customers)))
    p1, p2, p3, _ = (float(p) for p in np.cumsum(LINES_PER_ORDER_P))
    cancellations_from = round(1 - CANCELLATION_SHARE, 6)
    returns_from = round(cancellations_from - RETURN_SHARE, 6)
    blocks = _arrived_blocks(customers, days, index)
    candidates = ",\n        ".join(
        f"virtual_customer(u({S_CUSTOMER + 2 * i}, order_key),"
        f" u({S_CUSTOMER + 2 * i + 1}, order_key), {blocks}) as v{i}"
        for i in range(CANDIDATES)
    )
    chosen = (
        "case "
        + " ".join(f"when active(v{i}, {index}) then v{i}" for i in range(CANDIDATES - 1))
        + f" else v{CANDIDATES - 1} end"
    )
    return f"""
create or replace temp table day_lines as
with
sizes as (
    select
        k,
        {epoch_day}::bigint * {MAX_ORDERS_PER_DAY} + k as order_key,
        case
            when u({S_LINES}, order_key) < {p1!r} then 1
            when u({S_LINES}, order_key) < {p2!r} then 2
            when u({S_LINES}, order_key) < {p3!r} then 3
            else 4
        end as wanted,
    from range({day_lines}) as r(k)
),
kept as (
    select
        k,
        order_key,
        wanted,
        sum(wanted) over (order by k rows between unbounded preceding and current row)::bigint
            as upto,
    from sizes
    qualify upto - wanted < {day_lines}
),
drawn as (
    select
        *,
        {candidates},
    from kept
),
orders as (
    select
        k,
        order_key,
        least(wanted, {day_lines} - (upto - wanted)) as line_count,
        case
            when u({S_LATE}, order_key) < {LATE_SHARE!r}
                then -1 - floor(u({S_LATE_SECONDS}, order_key) * {LATE_SECONDS})::bigint
            else hour_of(u({S_HOUR}, order_key)) * 3600
                + floor(u({S_SECOND}, order_key) * 3600)::bigint
        end as offset_seconds,
        case
            when u({S_GUEST}, order_key) >= {GUEST_SHARE!r} then customer_number({chosen})
        end as customer,
    from drawn
),
numbered as (
    select
        *,
        row_number() over (order by offset_seconds, k) as seq,
    from orders
),
placed as (
    select
        *,
        sum(line_count) over (order by seq rows between unbounded preceding and current row)::bigint
            - line_count as first_row,
    from numbered
),
lines as (
    select
        *,
        unnest(range(line_count)) as j,
    from placed
),
priced as (
    select
        *,
        order_key * 4 + j as line_key,
        1 + floor({CATALOG} * pow(u({S_PRODUCT}, line_key), 3))::bigint as product,
        u({S_LINE_KIND}, line_key) as kind_draw,
        case
            when u({S_QUANTITY_KIND}, line_key) < {FRACTIONAL_SHARE!r}
                then cast(round(0.1 + 4.9 * u({S_QUANTITY}, line_key), 3) as decimal(18, 3))
            when u({S_QUANTITY}, line_key) < 0.70 then 1::decimal(18, 3)
            when u({S_QUANTITY}, line_key) < 0.88 then 2::decimal(18, 3)
            when u({S_QUANTITY}, line_key) < 0.95 then 3::decimal(18, 3)
            else cast(4 + floor(7 * u({S_QUANTITY_KIND}, line_key)) as decimal(18, 3))
        end as size,
        cast((500 + floor(49500 * pow(u({S_PRICE}, product), 2))) / 100.0 as decimal(18, 4))
            as unit_price,
    from lines
    order by seq, j  -- narrow rows: cheaper to sort here than the final ones
)
select
    'O{day:%Y%m%d}' || substr(({10**width} + seq)::varchar, 2) as order_id,
    (j + 1)::varchar as line_id,
    'C' || substr(({10**customer_width} + customer)::varchar, 2) as customer_id,
    to_timestamp({local_start} + offset_seconds) as ordered_at,
    date '{day.isoformat()}' + floor(offset_seconds / 86400)::integer as order_date,
    'P' || substr(({10**PRODUCT_WIDTH} + product)::varchar, 2) as product_id,
    case when kind_draw >= {returns_from!r}
        and kind_draw < {cancellations_from!r} then -size else size end as quantity,
    unit_price,
    cast(round(quantity * unit_price, 2) as decimal(18, 4)) as amount,
    'CNY' as currency,
    case
        when kind_draw >= {cancellations_from!r} then 'cancellation'
        when kind_draw >= {returns_from!r} then 'return'
        else 'sale'
    end as line_kind,
    'sales_{day:%Y%m%d}.csv' as source_file,
    first_row + j + 1 as source_row,
    null::varchar as source_currency,
    null::decimal(18, 4) as source_amount,
    null::decimal(18, 8) as exchange_rate,
    false as is_amount_derived,
    false as is_amount_inconsistent,
    false as is_nonexistent_local_time,
    false as is_ambiguous_local_time,
from priced
"""


CSV_HEADER = (
    "order_id,line_id,customer_id,ordered_at,product_id,quantity,unit_price,amount,currency,status"
)
# Lines, orders and the size the day's CSV export would have (header, commas, newlines;
# ordered_at as 'YYYY-MM-DD hh:mm:ss', status as long as line_kind).
_DAY_STATS = f"""
select
    count(*),
    count(*) filter (where line_id = '1'),
    {len(CSV_HEADER) + 1}
    + coalesce(sum(
        length(order_id) + length(line_id) + coalesce(length(customer_id), 0)
        + 19 + length(product_id) + length(quantity::varchar) + length(unit_price::varchar)
        + length(amount::varchar) + length(currency) + length(line_kind) + 10
    ), 0),
from day_lines
"""

_DAY_CUSTOMERS = """
select distinct cast(substr(customer_id, 2) as bigint) as customer
from day_lines
where customer_id is not null
"""


def _ledger_query(day: date, seed: int, rows: int, csv_bytes: int) -> str:
    source_file = f"sales_{day:%Y%m%d}.csv"
    sha256 = hashlib.sha256(f"bench.history:{seed}:{source_file}".encode()).hexdigest()
    return f"""
select
    '{source_file}'::varchar as source_file,
    '{sha256}'::varchar as file_sha256,
    {csv_bytes}::bigint as file_bytes,
    'csv'::varchar as file_format,
    'utf-8'::varchar as encoding,
    ','::varchar as delimiter,
    {rows}::bigint as rows_in,
    {rows}::bigint as rows_accepted,
    0::bigint as rows_quarantined,
    0::bigint as rows_duplicate,
"""


# --- command -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    every = max(1, min(30, args.days // 12 or 1))

    def report(days_done: int, day: date, lines_done: int) -> None:
        if days_done % every == 0 or days_done == args.days:
            elapsed = time.perf_counter() - began
            print(
                f"{day.isoformat()}  day {days_done:>4}/{args.days}  {lines_done:>13,} lines"
                f"  {elapsed:7.1f} s",
                flush=True,
            )

    began = time.perf_counter()
    summary = generate_history(
        args.lake,
        lines=args.lines,
        customers=args.customers,
        days=args.days,
        start=args.start,
        seed=args.seed,
        progress=report,
        threads=args.threads,
        memory_limit=args.memory_limit,
    )
    print(
        f"{summary['lines']:,} lines in {summary['orders']:,} orders,"
        f" {summary['start']}..{summary['end']} ({summary['days']} days),"
        f" {summary['customers_seen']:,} of {summary['customers']:,} customers seen,"
        f" {summary['bytes'] / 1e6:,.1f} MB on disk, {summary['seconds']:.1f} s"
        f" -> {summary['lake']}",
        flush=True,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history",
        description="Generate a synthetic order-line history as lake partitions.",
    )
    parser.add_argument("--lake", type=Path, required=True, help="the lake folder to write into")
    parser.add_argument("--lines", type=int, default=100_000_000, help="order lines in all")
    parser.add_argument("--customers", type=int, default=5_000_000, help="customer id range")
    parser.add_argument("--days", type=int, default=365, help="export days")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=date(2025, 1, 1), help="first export day"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--memory-limit", default=MEMORY_LIMIT, help=f"DuckDB memory_limit ({MEMORY_LIMIT})"
    )
    args = parser.parse_args(argv)
    if args.lines < 0 or args.customers < MIN_CUSTOMERS or args.days < 1:
        parser.error(f"need --lines >= 0, --customers >= {MIN_CUSTOMERS} and --days >= 1")
    return args


if __name__ == "__main__":
    main()
