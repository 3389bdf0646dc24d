"""Benchmark ``ingest`` on one generated day's web-shop export: wall time and peak memory."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bench.measure import Measurement, machine, run_measured

HEADER = (
    "order_id",
    "line_number",
    "customer_id",
    "order_time",
    "sku",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "status",
)
DAY = date(2025, 3, 15)  # the measured day; its previous day is ingested first, unmeasured
CHUNK_LINES = 500_000  # generated and written this many lines at a time
LINES_PER_ORDER = (1, 2, 3, 4)
LINES_PER_ORDER_P = (0.40, 0.30, 0.20, 0.10)  # 2.0 lines per order on average
GUEST_SHARE = 0.08  # of orders, so of lines too
RETURN_SHARE = 0.03  # of lines: negative quantity and amount, status 'returned'
BAD_SHARE = 0.001  # of lines: one unparseable value each, so they are quarantined
RESENT_SHARE = 0.005  # of the day's lines: copies of the previous day's (duplicates)
PREVIOUS_DAY_SHARE = 0.25  # the previous day's file has this share of the day's lines
CATALOG = 20_000  # SKUs, with Zipf-like popularity
CUSTOMERS_PER_LINE = 0.3  # customer pool size relative to the day's lines
SALE_STATUSES = ("paid", "shipped", "completed")
SALE_STATUS_P = (0.2, 0.3, 0.5)
# Orders per local hour of the day (relative): quiet nights, lunch and evening peaks.
HOUR_WEIGHTS = (3, 2, 1, 1, 1, 1, 2, 4, 6, 8, 10, 11, 12, 10, 9, 9, 9, 10, 11, 13, 15, 16, 12, 6)

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Export:
    """One generated export file and what its ingest must report."""

    path: Path
    lines: int
    bad_lines: int  # each quarantined
    resent_lines: int  # each a duplicate of an earlier partition's line

    @property
    def megabytes(self) -> float:
        return self.path.stat().st_size / 1e6


@dataclass(frozen=True)
class Ledger:
    """The day's ingest_ledger partition, summed over files."""

    rows_in: int
    accepted: int
    quarantined: int
    duplicates: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.accepted + self.quarantined + self.duplicates


def main(argv: list[str] | None = None) -> None:
    """Generate, ingest and report each size; exit non-zero if a ledger is wrong."""
    args = _parse_args(argv)
    root = (
        args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    print(
        "| lines | file | file MB | wall s | lines/s | peak RSS MB | CPU s | peak spill MB"
        " | others' CPU s |",
        flush=True,
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    ledgers: list[str] = []
    try:
        for lines in args.lines:
            export, measured, ledger = _bench_one(root / f"lines-{lines}", lines, args)
            print(
                f"| {lines:,} | {export.path.name} | {export.megabytes:,.1f}"
                f" | {measured.wall_seconds:.2f} | {lines / measured.wall_seconds:,.0f}"
                f" | {measured.peak_rss_mb:,.0f} | {measured.cpu_seconds:.2f}"
                f" | {measured.peak_spill_mb:,.0f} | {measured.others_cpu_seconds:.1f} |",
                flush=True,
            )
            problems = _check(export, ledger)
            verdict = "balanced" if not problems else "WRONG: " + "; ".join(problems)
            ledgers.append(
                f"ledger {lines:,} lines: rows_in {ledger.rows_in:,} = accepted"
                f" {ledger.accepted:,} + quarantined {ledger.quarantined:,} + duplicates"
                f" {ledger.duplicates:,} ({verdict})"
            )
            failures.extend(f"{lines:,} lines: {problem}" for problem in problems)
    finally:
        if args.keep:
            print(f"kept {root}")
        elif args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for lines in args.lines:
                shutil.rmtree(root / f"lines-{lines}", ignore_errors=True)
    print("\n".join(ledgers))
    print(_machine(args))
    if failures:
        sys.exit("ledger check failed: " + "; ".join(failures))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_bench",
        description="Time `python -m pipeline ingest` on generated one-day exports.",
    )
    parser.add_argument(
        "--lines",
        type=int,
        nargs="+",
        default=[1_000_000],
        metavar="N",
        help="data lines of the measured day's file, one run per size (default: 1000000)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to work (default: a new temporary folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and lake")
    parser.add_argument("--gzip", action="store_true", help="write gzip-compressed exports")
    parser.add_argument(
        "--memory-limit", help="duckdb.memory_limit for the ingest (default: the config's)"
    )
    parser.add_argument(
        "--threads", type=int, help="duckdb.threads for the ingest (default: the config's)"
    )
    parser.add_argument("--seed", type=int, default=20250315, help="random seed")
    args = parser.parse_args(argv)
    if any(lines < 100 for lines in args.lines):
        parser.error("--lines: each size must be at least 100")
    return args


def _bench_one(
    folder: Path, lines: int, args: argparse.Namespace
) -> tuple[Export, Measurement, Ledger]:
    if folder.exists():
        shutil.rmtree(folder)
    incoming = folder / "incoming"
    incoming.mkdir(parents=True)
    config = _write_config(folder, args)
    rng = np.random.default_rng([args.seed, lines])
    previous_day = DAY - timedelta(days=1)
    suffix = ".csv.gz" if args.gzip else ".csv"
    previous_lines = max(1, round(lines * PREVIOUS_DAY_SHARE))
    resent_count = round(lines * RESENT_SHARE)
    _previous, resent = write_export(
        incoming / f"sales_{previous_day:%Y%m%d}{suffix}",
        previous_day,
        previous_lines,
        rng,
        keep=min(1.0, resent_count / previous_lines),
    )
    _ingest(config, previous_day, folder / f"ingest-{previous_day}.out")  # unmeasured
    export, _ = write_export(
        incoming / f"sales_{DAY:%Y%m%d}{suffix}", DAY, lines, rng, resent=resent
    )
    measured = _ingest(config, DAY, folder / f"ingest-{DAY}.out")
    return export, measured, _read_ledger(folder / "lake", DAY)


def _write_config(folder: Path, args: argparse.Namespace) -> Path:
    text = (
        '[paths]\nincoming = "incoming"\nlake = "lake"\nstate = "state"\npublished = "published"\n'
    )
    duckdb_settings = []
    if args.memory_limit:
        duckdb_settings.append(f'memory_limit = "{args.memory_limit}"')
    if args.threads is not None:
        duckdb_settings.append(f"threads = {args.threads}")
    if duckdb_settings:
        text += "\n[duckdb]\n" + "\n".join(duckdb_settings) + "\n"
    config = folder / "pipeline.toml"
    config.write_text(text, encoding="utf-8")
    return config


# --- generation --------------------------------------------------------------------------


def write_export(
    path: Path,
    day: date,
    lines: int,
    rng: np.random.Generator,
    *,
    resent: pa.Table | None = None,
    keep: float = 0.0,
) -> tuple[Export, pa.Table]:
    """Write one day's export of ``lines`` data lines; ``resent`` lines are appended last.

    Returns the export and a sample (share ``keep``) of its valid lines, for re-sending.
    """
    resent_lines = 0 if resent is None else resent.num_rows
    new_lines = lines - resent_lines
    if new_lines < 1:
        raise ValueError(f"{lines} lines leave no room for {resent_lines} re-sent ones")
    order_of_line, line_number, order_seconds = _orders(new_lines, rng)
    customers = max(100, int(lines * CUSTOMERS_PER_LINE))
    order_customer = rng.integers(1, customers + 1, size=order_seconds.size)
    order_is_guest = rng.random(order_seconds.size) < GUEST_SHARE
    sku_p: npt.NDArray[np.float64] = 1.0 / np.arange(1, CATALOG + 1, dtype=np.float64) ** 0.9
    sku_p /= sku_p.sum()
    sku_price_cents = np.clip(
        np.round(np.exp(rng.normal(np.log(6_000), 0.9, CATALOG))), 100, 500_000
    ).astype(np.int64)
    skus = pc.binary_join_element_wise(
        "SKU", pc.utf8_lpad(pa.array(np.arange(1, CATALOG + 1)).cast(pa.string()), 6, "0"), ""
    )
    day_epoch = (day - date(1970, 1, 1)).days * 86_400
    order_prefix = f"SO{day:%Y%m%d}"
    bad_lines = 0
    kept: list[pa.Table] = []
    opened = pa.CompressedOutputStream(str(path), "gzip") if path.suffix == ".gz" else None
    sink = opened if opened is not None else pa.OSFile(str(path), "wb")
    try:
        sink.write((",".join(HEADER) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        for start in range(0, new_lines, CHUNK_LINES):
            stop = min(start + CHUNK_LINES, new_lines)
            orders = order_of_line[start:stop]
            chunk, bad = _chunk(
                rng,
                orders,
                line_number[start:stop],
                order_prefix,
                order_customer[orders],
                order_is_guest[orders],
                day_epoch + order_seconds[orders],
                skus,
                sku_p,
                sku_price_cents,
            )
            bad_lines += int(bad.sum())
            with pa_csv.CSVWriter(sink, chunk.schema, write_options=options) as writer:
                writer.write_table(chunk)
            if keep > 0:
                sample = (rng.random(chunk.num_rows) < keep) & ~bad
                kept.append(chunk.filter(pa.array(sample)))
        if resent is not None and resent.num_rows:
            with pa_csv.CSVWriter(sink, resent.schema, write_options=options) as writer:
                writer.write_table(resent)
    finally:
        sink.close()
    sample_table = pa.concat_tables(kept) if kept else pa.table({})
    return Export(path, lines, bad_lines, resent_lines), sample_table


def _orders(lines: int, rng: np.random.Generator) -> tuple[I64, I64, I64]:
    """Per line: its order's index and its line number; per order: seconds into the day."""
    estimate = int(lines / 2.0 * 1.1) + 10
    per_order = rng.choice(np.array(LINES_PER_ORDER), size=estimate, p=LINES_PER_ORDER_P)
    while per_order.sum() < lines:
        per_order = np.concatenate([per_order, per_order])
    ends = np.cumsum(per_order)
    orders = int(np.searchsorted(ends, lines)) + 1
    per_order = per_order[:orders].copy()
    per_order[-1] -= int(ends[orders - 1]) - lines  # the last order is cut to fit
    starts = np.concatenate([[0], np.cumsum(per_order)[:-1]])
    order_of_line = np.repeat(np.arange(orders), per_order)
    line_number = np.arange(lines) - starts[order_of_line] + 1
    hour_p = np.array(HOUR_WEIGHTS, dtype=np.float64)
    hours = rng.choice(24, size=orders, p=hour_p / hour_p.sum())
    seconds = np.sort(hours * 3600 + rng.integers(0, 3600, size=orders))  # ids follow time
    return order_of_line.astype(np.int64), line_number.astype(np.int64), seconds.astype(np.int64)


def _chunk(
    rng: np.random.Generator,
    orders: I64,
    line_number: I64,
    order_prefix: str,
    customer: I64,
    is_guest: Bool,
    epoch_seconds: I64,
    skus: pa.Array,
    sku_p: npt.NDArray[np.float64],
    sku_price_cents: I64,
) -> tuple[pa.Table, Bool]:
    """One chunk of lines as a text table, and which of its lines are bad."""
    n = orders.size
    sku = rng.choice(CATALOG, size=n, p=sku_p)
    quantity = np.minimum(rng.geometric(0.7, size=n), 20).astype(np.int64)
    returned = rng.random(n) < RETURN_SHARE
    quantity = np.where(returned, -quantity, quantity)
    price = sku_price_cents[sku]
    status_index = np.where(
        returned, len(SALE_STATUSES), rng.choice(len(SALE_STATUSES), size=n, p=SALE_STATUS_P)
    )
    bad = rng.random(n) < BAD_SHARE
    bad_kind = rng.integers(0, 4, size=n)  # 0-1: quantity '3x', 2: price '¥12.50', 3: date

    quantity_text = pa.array(quantity).cast(pa.string())
    quantity_text = pc.if_else(
        pa.array(bad & (bad_kind <= 1)),
        pc.binary_join_element_wise(quantity_text, "x", ""),
        quantity_text,
    )
    price_text = _money(price)
    price_text = pc.if_else(
        pa.array(bad & (bad_kind == 2)),
        pc.binary_join_element_wise("¥", price_text, ""),
        price_text,
    )
    time_text = pc.strftime(
        pa.array(epoch_seconds, type=pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S"
    )
    time_text = pc.if_else(
        pa.array(bad & (bad_kind == 3)),
        pc.replace_substring_regex(time_text, r"^(\d{4})-\d{2}-\d{2}", r"\1-02-30"),
        time_text,
    )
    customer_text = pc.binary_join_element_wise(
        "C", pc.utf8_lpad(pa.array(customer).cast(pa.string()), 7, "0"), ""
    )
    columns: dict[str, pa.Array] = {
        "order_id": pc.binary_join_element_wise(
            order_prefix, pc.utf8_lpad(pa.array(orders + 1).cast(pa.string()), 8, "0"), ""
        ),
        "line_number": pa.array(line_number).cast(pa.string()),
        "customer_id": pc.if_else(pa.array(is_guest), pa.scalar(None, pa.string()), customer_text),
        "order_time": time_text,
        "sku": skus.take(pa.array(sku)),
        "quantity": quantity_text,
        "unit_price": price_text,
        "amount": _money(quantity * price),
        "currency": pa.repeat(pa.scalar("CNY"), n),
        "status": pa.array([*SALE_STATUSES, "returned"]).take(pa.array(status_index)),
    }
    return pa.table(columns), bad


def _money(cents: I64) -> pa.Array:
    """Cents as text with two decimals, e.g. -1250 -> '-12.50'."""
    magnitude = np.abs(cents)
    return pc.binary_join_element_wise(
        pc.if_else(pa.array(cents < 0), "-", ""),
        pa.array(magnitude // 100).cast(pa.string()),
        ".",
        pc.utf8_lpad(pa.array(magnitude % 100).cast(pa.string()), 2, "0"),
        "",
    )


# --- measurement -------------------------------------------------------------------------


def _ingest(config: Path, day: date, output: Path) -> Measurement:
    """Run the ingest CLI in a child process: its wall time, CPU time and peak RSS."""
    command = [sys.executable, "-m", "pipeline", "--config", str(config), "ingest"]
    command += ["--date", day.isoformat()]
    return run_measured(command, output, spill_root=config.parent / "state" / "tmp")


def _read_ledger(lake: Path, day: date) -> Ledger:
    import pyarrow.parquet as pq

    path = lake / "ingest_ledger" / f"export_date={day.isoformat()}" / "data.parquet"
    table = pq.read_table(path)
    total = {
        column: int(pc.sum(table[column]).as_py() or 0)
        for column in ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")
    }
    return Ledger(
        total["rows_in"], total["rows_accepted"], total["rows_quarantined"], total["rows_duplicate"]
    )


def _check(export: Export, ledger: Ledger) -> list[str]:
    """What is wrong with the ledger: unbalanced, or not what the generated file implies."""
    problems = []
    if not ledger.balanced:
        problems.append("rows_in != accepted + quarantined + duplicates")
    expected = {
        "rows_in": (ledger.rows_in, export.lines),
        "quarantined": (ledger.quarantined, export.bad_lines),
        "duplicates": (ledger.duplicates, export.resent_lines),
    }
    problems += [
        f"{name} {got:,}, expected {want:,}"
        for name, (got, want) in expected.items()
        if got != want
    ]
    return problems


def _machine(args: argparse.Namespace) -> str:
    return machine(args.memory_limit, args.threads)


if __name__ == "__main__":
    main()
