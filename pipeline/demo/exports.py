"""Write simulated days as the retailer's export files, and the hidden truth as Parquet."""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.demo.simulate import (
    CHANNEL_NAMES,
    NEVER,
    STATE_NAMES,
    STATUS_NAMES,
    DayLines,
    GroundTruth,
    Population,
)

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

LOCAL_UTC_OFFSET_SECONDS = 8 * 3600  # Asia/Shanghai, no daylight saving time
CURRENCY = "CNY"
ORDER_NUMBER_WIDTH = 10
CUSTOMER_NUMBER_WIDTH = 7

WEB_HEADER = (
    "order_id", "line_number", "customer_id", "order_time", "sku",
    "quantity", "unit_price", "amount", "currency", "status",
)  # fmt: skip
STORE_HEADER = ("订单号", "客户编号", "下单时间", "商品编号", "数量", "单价", "金额")
CUSTOMER_HEADER = ("customer_id", "signup_date", "email", "phone", "city")
APP_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("line_number", pa.int32()),
        ("customer_id", pa.string()),
        ("ordered_at", pa.timestamp("us", tz="UTC")),
        ("sku", pa.string()),
        ("quantity", pa.int32()),
        ("unit_price", pa.decimal128(12, 2)),
        ("amount", pa.decimal128(12, 2)),
        ("currency", pa.string()),
        ("status", pa.string()),
    ]
)
ORDER_PREFIX = {"web": "W", "store": "S", "app": "A"}

NOISE_KINDS = (
    "bad_quantity",
    "bad_price",
    "bad_timestamp",
    "empty_order_id",
    "unknown_currency",
    "out_of_window_time",
)
OUT_OF_WINDOW_DAYS = 9
CHUNK_ROWS = 250_000
SLICE_ROWS = 1_000_000
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
}

_CITIES = (
    "上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉", "苏州", "西安",
    "重庆", "天津", "长沙", "郑州", "青岛", "宁波", "厦门", "合肥", "昆明", "沈阳",
)  # fmt: skip
_CITY_WEIGHTS = np.array([14, 12, 9, 9, 8, 7, 6, 5, 5, 4, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1], float)
_SYLLABLES = (
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
    "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "luo", "gao",
    "min", "jie", "hua", "ling", "xin", "yu", "fang", "ting", "wei", "qiang",
)  # fmt: skip
_MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "outlook.com", "gmail.com")
_MAIL_WEIGHTS = np.array([40, 25, 10, 5, 10, 10], float)
_MOBILE_PREFIXES = ("138", "139", "137", "136", "150", "151", "158", "186", "187", "188", "135")


@dataclass(frozen=True)
class ExportContext:
    """Run-wide lookups shared by every day's files."""

    sku_codes: pa.Array
    customer_width: int


def make_context(sku_codes: npt.NDArray[np.str_], customers: int) -> ExportContext:
    return ExportContext(
        sku_codes=pa.array(sku_codes.tolist(), pa.string()),
        customer_width=max(CUSTOMER_NUMBER_WIDTH, len(str(customers))),
    )


# -- value formatting ---------------------------------------------------------------------


def _numbered(prefix: str, numbers: I64, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def customer_ids(customer: I32, width: int, *, guest_as_null: bool = False) -> pa.Array:
    """`C0000123` for members (index + 1); empty string or null for guests."""
    ids = _numbered("C", customer.astype(np.int64) + 1, width)
    guest = pa.array(customer < 0)
    return pc.if_else(guest, pa.scalar(None, pa.string()) if guest_as_null else "", ids)


def order_ids(channel: str, first_number: int, order_seq: I64) -> pa.Array:
    return _numbered(ORDER_PREFIX[channel], first_number + order_seq, ORDER_NUMBER_WIDTH)


def _local_instants(day: date, seconds: I32) -> npt.NDArray[np.datetime64]:
    return np.datetime64(day, "s") + seconds.astype("timedelta64[s]")


@functools.cache
def _clock_strings() -> pa.Array:
    """`HH:MM:SS` for every second of a day; a lookup is far faster than strftime."""
    second = np.arange(86400, dtype=np.int64)
    parts = [_int_strings(part) for part in (second // 3600, second // 60 % 60, second % 60)]
    padded = [pc.utf8_lpad(part, width=2, padding="0") for part in parts]
    return pc.binary_join_element_wise(*padded, ":")


def local_time_strings(day: date, seconds: I32) -> pa.Array:
    """`YYYY-MM-DD HH:MM:SS` of `day` plus `seconds` (which may fall on other days)."""
    day_offset, second = np.divmod(seconds.astype(np.int64), 86400)
    offsets, which = np.unique(day_offset, return_inverse=True)
    dates = [(day + timedelta(days=int(offset))).isoformat() for offset in offsets]
    prefix = pa.array(dates, pa.string()).take(pa.array(which.astype(np.int64)))
    return pc.binary_join_element_wise(prefix, _clock_strings().take(pa.array(second)), " ")


def decimal_cents(cents: I64) -> pa.Array:
    """Exact decimal128(12, 2) from integer cents (no float rounding on the way)."""
    words = np.empty(2 * len(cents), np.int64)
    words[0::2] = cents
    words[1::2] = np.where(cents < 0, -1, 0)  # two's complement high word
    buffer = pa.py_buffer(words.tobytes())
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, buffer])


def money_strings(cents: I64) -> pa.Array:
    return decimal_cents(cents).cast(pa.string())


def _int_strings(values: I64) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.string())


def _take(values: Sequence[str], index: I64) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index, pa.int64()))


# -- delimited text -----------------------------------------------------------------------


def _quote_where_needed(column: pa.Array, delimiter: str) -> pa.Array:
    """RFC 4180 quoting, only for values that contain a delimiter, quote or line break."""
    needs = pc.match_substring_regex(column, f'["\r\n{delimiter}]')
    escaped = pc.replace_substring(column, '"', '""')
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    return pc.if_else(needs, quoted, column)


def delimited_rows(columns: Sequence[pa.Array], delimiter: str) -> bytes:
    """UTF-8 rows, `\\n` line ends, joined by Arrow kernels without Python strings."""
    if not len(columns[0]):
        return b""
    rows = pc.binary_join_element_wise(*columns, delimiter)
    # One pass over whole rows finds the rare value needing quotes (only injected noise does);
    # checking every column separately costs more than the rest of the formatting.
    extra_delimiters = pc.not_equal(pc.count_substring(rows, delimiter), len(columns) - 1)
    special = pc.or_(extra_delimiters, pc.match_substring_regex(rows, '["\r\n]'))
    if pc.any(special).as_py():
        fields = [_quote_where_needed(column, delimiter) for column in columns]
        rows = pc.binary_join_element_wise(*fields, delimiter)
    rows = pc.binary_join_element_wise(rows, "", "\n")
    offsets = np.frombuffer(rows.buffers()[1], np.int32)[rows.offset : rows.offset + len(rows) + 1]
    body: bytes = rows.buffers()[2].to_pybytes()[int(offsets[0]) : int(offsets[-1])]
    return body


def delimited_bytes(header: Sequence[str], columns: Sequence[pa.Array], delimiter: str) -> bytes:
    """UTF-8 header line plus rows."""
    return (delimiter.join(header) + "\n").encode("utf-8") + delimited_rows(columns, delimiter)


def gzip_bytes(data: bytes) -> bytes:
    """Gzip without timestamp or file name so the bytes repeat run after run."""
    return gzip.compress(data, compresslevel=6, mtime=0)


# -- web (gzip CSV) -----------------------------------------------------------------------


def web_columns(
    lines: DayLines, ctx: ExportContext, day: date, first_number: int
) -> dict[str, pa.Array]:
    """All web columns as text, so noise can replace any value."""
    return {
        "order_id": order_ids("web", first_number, lines.order_seq),
        "line_number": _int_strings(lines.line_number.astype(np.int64)),
        "customer_id": customer_ids(lines.customer, ctx.customer_width),
        "order_time": local_time_strings(day, lines.seconds),
        "sku": ctx.sku_codes.take(pa.array(lines.sku)),
        "quantity": _int_strings(lines.quantity),
        "unit_price": money_strings(lines.price_cents),
        "amount": money_strings(lines.quantity * lines.price_cents),
        "currency": pa.array(np.full(len(lines), CURRENCY)),
        "status": _take(STATUS_NAMES, lines.status.astype(np.int64)),
    }


def inject_web_noise(
    columns: dict[str, pa.Array],
    lines: DayLines,
    day: date,
    rng: np.random.Generator,
    rate: float,
    forced: frozenset[str],
) -> dict[str, int]:
    """Corrupt a few distinct rows per kind in place; return how many per kind."""
    n = len(lines)
    counts = {kind: int(rng.binomial(n, rate)) for kind in NOISE_KINDS}
    for kind in forced:
        counts[kind] = max(counts[kind], 1)
    total = sum(counts.values())
    if total > n:  # a tiny day cannot host every forced kind; keep the first ones
        counts = _trim_counts(counts, n)
        total = n
    rows = rng.choice(n, size=total, replace=False) if total else np.empty(0, np.int64)
    cut = 0
    for kind in NOISE_KINDS:
        chosen = np.sort(rows[cut : cut + counts[kind]])
        cut += counts[kind]
        if len(chosen):
            _corrupt(columns, kind, chosen, lines, day, rng)
    return counts


def _trim_counts(counts: dict[str, int], room: int) -> dict[str, int]:
    trimmed = {}
    for kind in NOISE_KINDS:
        trimmed[kind] = min(counts[kind], room)
        room -= trimmed[kind]
    return trimmed


def _corrupt(
    columns: dict[str, pa.Array],
    kind: str,
    rows: I64,
    lines: DayLines,
    day: date,
    rng: np.random.Generator,
) -> None:
    def put(name: str, values: pa.Array) -> None:
        mask = np.zeros(len(columns[name]), np.bool_)
        mask[rows] = True
        columns[name] = pc.replace_with_mask(columns[name], pa.array(mask), values)

    taken = pa.array(rows, pa.int64())
    k = len(rows)
    if kind == "bad_quantity":
        put("quantity", pc.binary_join_element_wise(columns["quantity"].take(taken), "x", ""))
    elif kind == "bad_price":
        for name in ("unit_price", "amount"):
            comma = pc.replace_substring(columns[name].take(taken), ".", ",")
            put(name, pc.utf8_replace_slice(comma, start=-1, stop=2**31 - 1, replacement="O"))
    elif kind == "bad_timestamp":
        minutes = _int_strings(rng.integers(60, 100, k))
        put("order_time", pc.binary_join_element_wise(f"{day.year}-13-45 25:", minutes, ":00", ""))
    elif kind == "empty_order_id":
        put("order_id", pa.array([""] * k))
    elif kind == "unknown_currency":
        put("currency", pa.array(["USD"] * k))
    elif kind == "out_of_window_time":
        shifted = lines.seconds[rows] - OUT_OF_WINDOW_DAYS * 86400
        put("order_time", local_time_strings(day, shifted.astype(np.int32)))


def web_file_bytes(columns: Mapping[str, pa.Array]) -> bytes:
    return gzip_bytes(delimited_bytes(WEB_HEADER, [columns[name] for name in WEB_HEADER], ","))


# -- store (GBK TSV) ----------------------------------------------------------------------


def store_file_bytes(lines: DayLines, ctx: ExportContext, day: date, first_number: int) -> bytes:
    """POS export: GBK, tab-delimited, Chinese header, no status (returns are negative)."""
    columns = [
        order_ids("store", first_number, lines.order_seq),
        customer_ids(lines.customer, ctx.customer_width),
        local_time_strings(day, lines.seconds),
        ctx.sku_codes.take(pa.array(lines.sku)),
        _int_strings(lines.quantity),
        money_strings(lines.price_cents),
        money_strings(lines.quantity * lines.price_cents),
    ]
    text = delimited_bytes(STORE_HEADER, columns, "\t").decode("utf-8")
    return text.encode("gbk")


# -- app (Parquet) ------------------------------------------------------------------------


def app_table(lines: DayLines, ctx: ExportContext, day: date, first_number: int) -> pa.Table:
    """Marketplace feed: typed columns, absolute UTC instants."""
    instants = _local_instants(day, lines.seconds) - np.timedelta64(LOCAL_UTC_OFFSET_SECONDS, "s")
    columns = [
        order_ids("app", first_number, lines.order_seq),
        pa.array(lines.line_number, pa.int32()),
        customer_ids(lines.customer, ctx.customer_width, guest_as_null=True),
        pa.array(instants.astype("datetime64[us]").astype(np.int64), pa.timestamp("us", tz="UTC")),
        ctx.sku_codes.take(pa.array(lines.sku)),
        pa.array(lines.quantity, pa.int64()).cast(pa.int32()),
        decimal_cents(lines.price_cents),
        decimal_cents(lines.quantity * lines.price_cents),
        pa.array(np.full(len(lines), CURRENCY), pa.string()),
        _take(STATUS_NAMES, lines.status.astype(np.int64)),
    ]
    return pa.Table.from_arrays(columns, schema=APP_SCHEMA)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Fixed writer options: the same table always gives the same bytes."""
    pq.write_table(table, path, **PARQUET_OPTIONS)


# -- customer master ----------------------------------------------------------------------


def customer_file_bytes(
    customer: I64, signup_day: I32, start: date, ctx: ExportContext, rng: np.random.Generator
) -> bytes:
    """Customers with their signup date and fake, plausible contact fields."""
    head = (",".join(CUSTOMER_HEADER) + "\n").encode("utf-8")
    # The day-one backfill can hold millions of customers: format it in slices.
    chunks = [
        _customer_rows(
            customer[low : low + CHUNK_ROWS], signup_day[low : low + CHUNK_ROWS], start, ctx, rng
        )
        for low in range(0, len(customer), CHUNK_ROWS)
    ]
    return head + b"".join(chunks)


def _customer_rows(
    customer: I64, signup_day: I32, start: date, ctx: ExportContext, rng: np.random.Generator
) -> bytes:
    n = len(customer)
    columns = [
        customer_ids(customer.astype(np.int32), ctx.customer_width),
        pa.array(np.datetime64(start, "D") + signup_day.astype("timedelta64[D]")).cast(pa.string()),
        _emails(rng, n),
        _phones(rng, n),
        _take(_CITIES, rng.choice(len(_CITIES), n, p=_CITY_WEIGHTS / _CITY_WEIGHTS.sum())),
    ]
    return delimited_rows(columns, ",")


def _emails(rng: np.random.Generator, n: int) -> pa.Array:
    first = _take(_SYLLABLES, rng.integers(0, len(_SYLLABLES), n))
    second = _take(_SYLLABLES, rng.integers(0, len(_SYLLABLES), n))
    digits = _int_strings(rng.integers(1, 10_000, n))
    domain = _take(_MAIL_DOMAINS, rng.choice(len(_MAIL_DOMAINS), n, p=_MAIL_WEIGHTS / 100))
    email = pc.binary_join_element_wise(first, second, digits, "@", domain, "")
    # Real masters have holes: not every customer leaves an email.
    return pc.if_else(pa.array(rng.random(n) < 0.12), "", email)


def _phones(rng: np.random.Generator, n: int) -> pa.Array:
    prefix = _take(_MOBILE_PREFIXES, rng.integers(0, len(_MOBILE_PREFIXES), n))
    rest = pc.utf8_lpad(_int_strings(rng.integers(0, 100_000_000, n)), width=8, padding="0")
    phone = pc.binary_join_element_wise(prefix, rest, "")
    return pc.if_else(pa.array(rng.random(n) < 0.05), "", phone)


# -- ground truth -------------------------------------------------------------------------


def _dates(
    start: date, offsets: npt.NDArray[np.integer], *, null_from: int | None = None
) -> pa.Array:
    values = np.datetime64(start, "D") + offsets.astype(np.int64).astype("timedelta64[D]")
    mask = None if null_from is None else offsets >= null_from
    return pa.array(values, pa.date32(), mask=mask)


def archetypes(mean_gap: npt.NDArray[np.float32], never_buys: npt.NDArray[np.bool_]) -> pa.Array:
    """Readable rhythm label from the mean gap; never-buyers are prospects only."""
    labels = ("weekly", "fortnightly", "monthly", "quarterly", "occasional")
    bucket = np.searchsorted(np.array([10.0, 21.0, 50.0, 120.0]), mean_gap)
    return pc.if_else(pa.array(never_buys), "prospect_only", _take(labels, bucket.astype(np.int64)))


def write_ground_truth(
    directory: Path, start: date, days: int, population: Population, truth: GroundTruth, width: int
) -> None:
    directory.mkdir(parents=True, exist_ok=True)

    def customers(rows: slice) -> pa.Table:
        return _customers_table(start, days, population, truth, width, rows)

    def episodes(rows: slice) -> pa.Table:
        return _episodes_table(start, days, truth, width, rows)

    def dissatisfaction(rows: slice) -> pa.Table:
        return _dissatisfaction_table(start, days, truth, width, rows)

    _write_in_slices(directory / "customers.parquet", population.size, customers)
    _write_in_slices(directory / "state_episodes.parquet", len(truth.episode_customer), episodes)
    _write_in_slices(
        directory / "dissatisfaction.parquet", len(truth.dissatisfied_customer), dissatisfaction
    )


def _write_in_slices(path: Path, rows: int, build: Callable[[slice], pa.Table]) -> None:
    """Tens of millions of truth rows at full scale: build and write a slice at a time."""
    writer: pq.ParquetWriter | None = None
    for low in range(0, max(rows, 1), SLICE_ROWS):
        table = build(slice(low, low + SLICE_ROWS))
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, **PARQUET_OPTIONS)
        writer.write_table(table, row_group_size=SLICE_ROWS)
    assert writer is not None
    writer.close()


def _round(values: npt.NDArray[np.floating], decimals: int) -> pa.Array:
    return pa.array(np.round(values.astype(np.float64), decimals))


def _customers_table(
    start: date, days: int, population: Population, truth: GroundTruth, width: int, rows: slice
) -> pa.Table:
    pop = population
    index = np.arange(pop.size, dtype=np.int32)[rows]
    never_buys = pop.first_purchase_day[rows] >= NEVER
    return pa.table(
        {
            "customer_id": customer_ids(index, width),
            "signup_date": _dates(start, pop.signup_day[rows]),
            "first_purchase_date": _dates(start, pop.first_purchase_day[rows], null_from=days),
            "mean_gap_days": _round(pop.mean_gap[rows], 2),
            "gap_regularity_shape": _round(pop.gap_shape[rows], 2),
            "archetype": archetypes(pop.mean_gap[rows], never_buys),
            "primary_channel": _take(CHANNEL_NAMES, pop.primary_channel[rows].astype(np.int64)),
            "basket_lines_mean": _round(pop.lines_mean[rows], 2),
            "price_preference": _round(pop.price_preference[rows], 3),
            "dissatisfaction_proneness": _round(pop.frailty[rows], 3),
            "is_never_buyer": pa.array(never_buys),
            "state_at_end": _take(STATE_NAMES, truth.final_state[rows].astype(np.int64)),
        }
    )


def _episodes_table(
    start: date, days: int, truth: GroundTruth, width: int, rows: slice
) -> pa.Table:
    return pa.table(
        {
            "customer_id": customer_ids(truth.episode_customer[rows], width),
            "state": _take(STATE_NAMES, truth.episode_state[rows].astype(np.int64)),
            "valid_from": _dates(start, truth.episode_from[rows]),
            "valid_to": _dates(start, np.minimum(truth.episode_to[rows], days), null_from=days),
            "is_win_back": pa.array(truth.episode_win_back[rows]),
        }
    )


def _dissatisfaction_table(
    start: date, days: int, truth: GroundTruth, width: int, rows: slice
) -> pa.Table:
    resolved = truth.dissatisfied_resolved[rows]
    outcome = _take(("recovered", "churned"), truth.dissatisfied_outcome[rows].astype(np.int64))
    stage = truth.dissatisfied_from_state[rows].astype(np.int64)
    return pa.table(
        {
            "customer_id": customer_ids(truth.dissatisfied_customer[rows], width),
            "onset_date": _dates(start, truth.dissatisfied_onset[rows]),
            "outcome": pc.if_else(pa.array(resolved >= days), "open", outcome),
            "resolved_date": _dates(start, resolved, null_from=days),
            "stage_at_onset": _take(STATE_NAMES, stage),
        }
    )
