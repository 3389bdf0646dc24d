"""Crash safety of ingest: SIGKILL a real ``python -m pipeline ingest`` at many moments.

The lake starts in a clean state A (one date ingested from export version A, with a
customer master A). The export and the master are then replaced by version B (more lines,
other amounts, other bad rows) and an ingest of B is started as a subprocess and killed with SIGKILL after a seeded random delay spread
over the measured length of a whole run (plus kills at the very start, at the very end,
and in the window where partitions are being written). After every kill:

* each ``*.parquet`` file a reader's glob matches reads completely with DuckDB and is,
  byte for byte, either A's partition or B's (from a clean, uninterrupted run of B in a
  separate folder); the hidden temporaries a killed writer leaves never match the glob;
* on some runs a concurrent reader thread loops over ``count(*)`` of the order_lines glob
  during the killed run and the re-run: it never errors and only ever sees A's or B's
  count;
* re-running the ingest of B converges: the lake is byte-identical to B's reference,
  with no temporary left behind.

``CRASH_SAFETY_SEED`` changes the kill moments (the seed is in every failure message).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from hashlib import sha256
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

import pipeline

DAY = date(2025, 3, 15)
EXPORT_NAME = f"sales_{DAY:%Y%m%d}.csv"
MASTER_NAME = f"customers_{DAY:%Y%m%d}.csv"
LEDGER = "ingest_ledger"
TABLES = (
    "quarantined_order_lines",
    "order_lines",
    "quarantined_customer_master",
    "customer_master",
    "ingest_files",
    LEDGER,
)
HEADER = (
    "order_id,line_number,customer_id,order_time,sku,quantity,unit_price,amount,currency,status"
)
# Orders per version (1 to 3 lines each): ~160k and ~180k lines, an ingest of 1-2 s.
ORDERS_A = 80_000
ORDERS_B = 90_000
SEED = int(os.environ.get("CRASH_SAFETY_SEED", "20250315"))
RUN_TIMEOUT_S = 300.0
PARTITION_FILE = "data.parquet"

Digest = dict[str, str]  # lake-relative path -> sha256 of the file


# --- the input -------------------------------------------------------------------------


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _money(cents: np.ndarray) -> pa.Array:
    fraction = pc.utf8_lpad(_text(cents % 100), width=2, padding="0")
    return pc.binary_join_element_wise(_text(cents // 100), fraction, ".")


def write_export(path: Path, *, orders: int, seed: int, bad_rows: list[str]) -> int:
    """A day's export: ``orders`` orders of 1-3 lines in local time, then ``bad_rows``.

    Returns the number of data lines written.
    """
    rng = np.random.default_rng(seed)
    lines_per_order = rng.integers(1, 4, orders)
    order_of_line = np.repeat(np.arange(orders), lines_per_order)
    first_line = np.cumsum(lines_per_order) - lines_per_order
    line_number = np.arange(order_of_line.size) - first_line[order_of_line] + 1
    lines = order_of_line.size
    local_midnight = np.datetime64(DAY.isoformat(), "s")
    seconds = rng.integers(0, 24 * 3600, orders)[order_of_line].astype("timedelta64[s]")
    customers = rng.integers(0, 50_000, orders)[order_of_line]
    quantity = rng.integers(1, 6, lines)
    unit_cents = rng.integers(100, 50_000, lines)
    table = pa.table(
        {
            "order_id": pc.binary_join_element_wise(
                "SO", pc.utf8_lpad(_text(order_of_line), width=8, padding="0"), ""
            ),
            "line_number": _text(line_number),
            "customer_id": pc.binary_join_element_wise(
                "C", pc.utf8_lpad(_text(customers), width=6, padding="0"), ""
            ),
            "order_time": pc.strftime(
                pa.array(local_midnight + seconds), format="%Y-%m-%d %H:%M:%S"
            ),
            "sku": pc.binary_join_element_wise("SKU-", _text(rng.integers(0, 2_000, lines)), ""),
            "quantity": _text(quantity),
            "unit_price": _money(unit_cents),
            "amount": _money(quantity * unit_cents),
            "currency": pa.array(np.full(lines, "CNY")),
            "status": pa.array(np.where(rng.random(lines) < 0.03, "returned", "completed")),
        }
    )
    with path.open("wb") as handle:
        handle.write((HEADER + "\n").encode())
        pacsv.write_csv(
            table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
        handle.write("".join(row + "\n" for row in bad_rows).encode())
    return lines + len(bad_rows)


def write_master(path: Path, *, customers: int, bad_rows: list[str]) -> None:
    """A day's customer master: ``customers`` sign-ups, then ``bad_rows``."""
    rows = (
        f"C{n:06d},{DAY - timedelta(days=n % 400)},c{n}@example.com,138{n:08d},上海\n"
        for n in range(customers)
    )
    with path.open("w", encoding="utf-8") as handle:
        handle.write("customer_id,signup_date,email,phone,city\n")
        handle.writelines(rows)
        handle.write("".join(row + "\n" for row in bad_rows))


BAD_MASTER_ROWS_A = [
    ",2025-03-15,,,",  # no customer id
    "C000001,2025-03-15,,,",  # a later copy of a customer
]
BAD_MASTER_ROWS_B = [*BAD_MASTER_ROWS_A, "C999999,2025-13-01,,,"]  # bad signup date


BAD_ROWS_A = [
    ",1,C000001,2025-03-15 10:00:00,SKU-1,1,10.00,10.00,CNY,completed",  # no order id
    "BAD00001,1,C000002,15/03/2025 10:00,SKU-2,1,10.00,10.00,CNY,completed",  # odd time
    "BAD00002,1,C000003,2025-03-15 11:00:00,SKU-3,0,10.00,0.00,CNY,completed",  # zero qty
    "BAD00003,1,C000004,2025-03-15 12:00:00,SKU-4,1,10.00,10.00,USD,completed",  # currency
    "BAD00004,1,C000005,2025-03-25 12:00:00,SKU-5,1,10.00,10.00,CNY,completed",  # too late
    "SO00000000,1,C000006,2025-03-15 13:00:00,SKU-6,9,1.00,9.00,CNY,completed",  # conflict
]
BAD_ROWS_B = [
    *BAD_ROWS_A,
    "BAD00005,1,C000007,2025-03-15 14:00:00,SKU-7,2,5.00,-10.00,CNY,completed",  # sign
    "BAD00006,1,C000008,2025-03-15 15:00:00,SKU-8,two,5.00,10.00,CNY,completed",  # qty
]


# --- running the CLI -------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One pipeline folder: a TOML config, its incoming exports and its lake."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "pipeline.toml"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @classmethod
    def create(cls, root: Path) -> Site:
        site = cls(root)
        site.incoming.mkdir(parents=True)
        site.config.write_text(
            '[paths]\nincoming = "incoming"\nlake = "lake"\nstate = "state"\n'
            'published = "published"\n',
            encoding="utf-8",
        )
        return site

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pipeline",
            "--config",
            str(self.config),
            "ingest",
            "--date",
            DAY.isoformat(),
        ]

    @property
    def log(self) -> Path:
        return self.root / "ingest.log"

    def start_ingest(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            return subprocess.Popen(
                self.command(), cwd=self.root, env=_subprocess_env(), stdout=log, stderr=log
            )

    def log_tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

    def ingest(self) -> None:
        """Ingest to completion; fail the test with the CLI's output if it fails."""
        returncode = wait_or_kill(self.start_ingest())
        assert returncode == 0, f"ingest failed ({returncode}): {self.log_tail()}"


def wait_or_kill(process: subprocess.Popen[bytes]) -> int:
    """The exit code; a run hung past the timeout is killed and fails the test."""
    try:
        return process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def _subprocess_env() -> dict[str, str]:
    """This environment without RFM_* overrides, running the pipeline this test imports."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RFM_")}
    code_root = str(Path(pipeline.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_root, env.get("PYTHONPATH")]))
    return env


# --- looking at the lake ---------------------------------------------------------------


def _file_sha256(path: Path) -> str:
    return sha256(path.read_bytes()).hexdigest()


def lake_digest(lake: Path) -> Digest:
    """Every file under the lake, hidden ones included."""
    return {
        path.relative_to(lake).as_posix(): _file_sha256(path)
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


def reader_glob(lake: Path, table: str) -> str:
    return str(lake / table / "*" / "*.parquet")


def partition_path(table: str) -> str:
    return f"{table}/export_date={DAY.isoformat()}/{PARTITION_FILE}"


def read_fully(path: Path) -> int:
    """Read every column of every row group; the number of rows."""
    with duckdb.connect() as con:
        relation = con.sql("select * from read_parquet($path)", params={"path": str(path)})
        return int(relation.to_arrow_table().num_rows)


def glob_matches(lake: Path, table: str) -> list[Path]:
    """What a DuckDB reader's glob of the table matches right now."""
    with duckdb.connect() as con:
        rows = con.execute("select file from glob($pattern)", {"pattern": reader_glob(lake, table)})
        return sorted(Path(file) for (file,) in rows.fetchall())


@dataclass(frozen=True)
class Reference:
    """A clean lake: its files' hashes and each partition's row count."""

    digest: Digest
    rows: dict[str, int]

    @classmethod
    def of(cls, lake: Path) -> Reference:
        digest = lake_digest(lake)
        assert sorted(digest) == sorted(partition_path(table) for table in TABLES)
        return cls(digest, {table: read_fully(lake / partition_path(table)) for table in TABLES})


class GlobReader(threading.Thread):
    """Loops ``count(*)`` over a table's glob, as a dashboard would, recording every answer."""

    def __init__(self, pattern: str) -> None:
        super().__init__(name="glob-reader", daemon=True)
        self.pattern = pattern
        self.counts: Counter[int] = Counter()
        self.errors: list[str] = []
        self.reading = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        with duckdb.connect() as con:
            while not self._done.is_set():
                try:
                    (count,) = con.execute(
                        "select count(*) from read_parquet($pattern)", {"pattern": self.pattern}
                    ).fetchall()[0]
                    self.counts[int(count)] += 1
                except Exception as error:  # recorded: the test fails on any
                    self.errors.append(f"{type(error).__name__}: {error}")
                self.reading.set()
                time.sleep(0.0005)  # leave the (possibly 2-core) machine to the ingest

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the reader thread did not stop"


# --- the scenario ----------------------------------------------------------------------


@dataclass
class Timing:
    """How long a whole ingest of B takes now, and when it starts writing partitions.

    Measured on the first run and again on every re-run, so that kill moments follow the
    machine's current speed (other tests may be running beside this one).
    """

    duration_s: float  # from process start to exit
    writing_from_s: float  # when the partition folders first changed

    @property
    def writing_s(self) -> float:
        return max(self.duration_s - self.writing_from_s, 0.01)


@dataclass(frozen=True)
class Scenario:
    """A lake in state A, export B in its incoming folder, and what to expect."""

    site: Site
    snapshot_a: Path  # a copy of the lake in state A
    a: Reference
    b: Reference
    timing: Timing

    def restore_a(self) -> None:
        shutil.rmtree(self.site.lake)
        shutil.copytree(self.snapshot_a, self.site.lake)


def partition_dirs(lake: Path) -> list[Path]:
    return [(lake / partition_path(table)).parent for table in TABLES]


PartitionState = frozenset[tuple[str, int, int, int]]


def partition_state(lake: Path) -> PartitionState:
    """Every entry of the partition folders: (path, inode, size, mtime)."""
    entries = set()
    for folder in partition_dirs(lake):
        with os.scandir(folder) as listing:
            for entry in listing:
                info = entry.stat(follow_symlinks=False)
                entries.add((entry.path, info.st_ino, info.st_size, info.st_mtime_ns))
    return frozenset(entries)


def writing_started(lake: Path, before: PartitionState) -> bool:
    """Whether the partition folders changed: a temporary appeared, or a file was touched."""
    try:
        return partition_state(lake) != before
    except FileNotFoundError:  # an entry vanished while being listed: a rename
        return True


def timed_ingest(site: Site) -> Timing:
    """Ingest to completion, watching for its first write to a partition folder."""
    before = partition_state(site.lake)
    started = time.monotonic()
    process = site.start_ingest()
    writing_from: float | None = None
    while process.poll() is None and time.monotonic() - started < RUN_TIMEOUT_S:
        if writing_from is None and writing_started(site.lake, before):
            writing_from = time.monotonic() - started
        time.sleep(0.001)
    returncode = wait_or_kill(process)
    duration = time.monotonic() - started
    assert returncode == 0, f"ingest failed ({returncode}): {site.log_tail()}"
    return Timing(duration, writing_from if writing_from is not None else duration * 0.75)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("crash_safety")
    export_a = root / "export_a.csv"
    export_b = root / "export_b.csv"
    write_export(export_a, orders=ORDERS_A, seed=1, bad_rows=BAD_ROWS_A)
    write_export(export_b, orders=ORDERS_B, seed=2, bad_rows=BAD_ROWS_B)
    master_a = root / "master_a.csv"
    master_b = root / "master_b.csv"
    write_master(master_a, customers=5_000, bad_rows=BAD_MASTER_ROWS_A)
    write_master(master_b, customers=6_000, bad_rows=BAD_MASTER_ROWS_B)

    reference_b = Site.create(root / "reference_b")
    shutil.copyfile(export_b, reference_b.incoming / EXPORT_NAME)
    shutil.copyfile(master_b, reference_b.incoming / MASTER_NAME)
    reference_b.ingest()
    b = Reference.of(reference_b.lake)

    site = Site.create(root / "site")
    shutil.copyfile(export_a, site.incoming / EXPORT_NAME)
    shutil.copyfile(master_a, site.incoming / MASTER_NAME)
    site.ingest()
    a = Reference.of(site.lake)
    snapshot_a = root / "lake_a"
    shutil.copytree(site.lake, snapshot_a)
    for table in TABLES:
        path = partition_path(table)
        assert a.digest[path] != b.digest[path], f"{table}: A and B must be distinguishable"
    assert a.rows["order_lines"] != b.rows["order_lines"]
    assert a.rows["quarantined_order_lines"] > 0
    assert a.rows["quarantined_customer_master"] > 0

    # The corrected export B replaces A under the same name, as a re-sent file would.
    shutil.copyfile(export_b, site.incoming / EXPORT_NAME)
    shutil.copyfile(master_b, site.incoming / MASTER_NAME)
    timing = timed_ingest(site)
    assert lake_digest(site.lake) == b.digest, "re-ingesting over A must give B's bytes"
    return Scenario(site, snapshot_a, a, b, timing)


@dataclass(frozen=True)
class KillMoment:
    """When to kill: ``fraction`` of the whole run after the start, or of the write phase
    after the partition folders first change (``in_writes``)."""

    fraction: float
    in_writes: bool = False

    def describe(self) -> str:
        anchor = "into the write phase" if self.in_writes else "into the run"
        return f"{self.fraction:.0%} {anchor}"


def kill_moments(kills: int, rng: random.Random) -> list[KillMoment]:
    """Seeded: the very start and end, a third of the rest in the write phase, the rest
    anywhere in the run."""
    fixed = [
        KillMoment(0.0),
        KillMoment(0.02),
        KillMoment(0.98, in_writes=True),
        KillMoment(1.05, in_writes=True),  # mostly after the last rename, or after exit
    ]
    in_writes = [
        KillMoment(rng.uniform(0.0, 1.1), in_writes=True) for _ in range((kills - len(fixed)) // 3)
    ]
    anywhere = [
        KillMoment(rng.uniform(0.0, 1.0)) for _ in range(kills - len(fixed) - len(in_writes))
    ]
    moments = fixed + in_writes + anywhere
    rng.shuffle(moments)
    return moments


@dataclass
class KillOutcome:
    """What one kill left behind."""

    moment: KillMoment
    returncode: int
    tables_at_b: list[str]
    leftovers: list[str]


@dataclass
class Tally:
    outcomes: list[KillOutcome] = field(default_factory=list)
    reader_counts: Counter[int] = field(default_factory=Counter)
    run_durations: list[float] = field(default_factory=list)

    def interrupted(self) -> int:
        return sum(outcome.returncode == -signal.SIGKILL for outcome in self.outcomes)

    def summary(self) -> str:
        states = Counter("+".join(outcome.tables_at_b) or "none" for outcome in self.outcomes)
        leftovers = sum(bool(outcome.leftovers) for outcome in self.outcomes)
        return (
            f"{len(self.outcomes)} kills ({self.interrupted()} mid-run); tables at B after"
            f" the kill: {dict(states)}; kills leaving a temporary: {leftovers};"
            f" reader counts seen: {dict(self.reader_counts)};"
            f" re-run durations {min(self.run_durations, default=0):.2f}"
            f"-{max(self.run_durations, default=0):.2f}s"
        )


def check_after_kill(scenario: Scenario, returncode: int, pid: int, context: str) -> KillOutcome:
    """Every partition a reader can see is whole, and is A's or B's; temporaries are hidden.

    The ingest removes the date's ledger partition before rewriting the others and writes
    it last, so a ledger may be missing after a kill (the date reads as not ingested), but
    a ledger that is there always describes the version every other table holds.
    """
    lake = scenario.site.lake
    versions: dict[str, str | None] = {}
    for table in TABLES:
        path = partition_path(table)
        expected = {scenario.a.digest[path]: "A", scenario.b.digest[path]: "B"}
        matches = glob_matches(lake, table)
        if table == LEDGER and not matches:
            versions[table] = None
            continue
        assert matches == [lake / path], f"{context}: {table}: the glob matched {matches}"
        version = expected.get(_file_sha256(matches[0]))
        assert version is not None, f"{context}: {table}: partition is neither A's nor B's"
        reference = scenario.a if version == "A" else scenario.b
        assert read_fully(matches[0]) == reference.rows[table], f"{context}: {table}"
        versions[table] = version
    if versions[LEDGER] is not None:
        assert set(versions.values()) == {versions[LEDGER]}, (
            f"{context}: the ledger is {versions[LEDGER]}'s but the tables are {versions}"
        )
    tables_at_b = [table for table, version in versions.items() if version == "B"]
    partitions = {partition_path(table) for table in TABLES}
    leftovers = sorted(set(lake_digest(lake)) - partitions)
    temporary = f".{PARTITION_FILE}.{pid}.tmp"
    for leftover in leftovers:
        assert Path(leftover).name == temporary, f"{context}: unexpected file {leftover}"
    if returncode == 0:
        assert tables_at_b == list(TABLES), f"{context}: exited 0 with only {tables_at_b} at B"
    return KillOutcome(KillMoment(0.0), returncode, tables_at_b, leftovers)


def kill_at(site: Site, moment: KillMoment, timing: Timing) -> tuple[int, int]:
    """Start an ingest of B and SIGKILL it at ``moment``: (pid, exit code)."""
    before = partition_state(site.lake)
    started = time.monotonic()
    process = site.start_ingest()
    if moment.in_writes:
        while process.poll() is None and not writing_started(site.lake, before):
            if time.monotonic() - started > RUN_TIMEOUT_S:
                break
            time.sleep(0.0005)
        time.sleep(moment.fraction * timing.writing_s)
    else:
        time.sleep(max(0.0, moment.fraction * timing.duration_s - (time.monotonic() - started)))
    with contextlib.suppress(ProcessLookupError):  # already reaped: it finished first
        os.kill(process.pid, signal.SIGKILL)
    return process.pid, wait_or_kill(process)


def kill_and_rerun(
    scenario: Scenario, moment: KillMoment, with_reader: bool, context: str, tally: Tally
) -> None:
    scenario.restore_a()
    site = scenario.site
    reader = GlobReader(reader_glob(site.lake, "order_lines")) if with_reader else None
    if reader is not None:
        reader.start()
        assert reader.reading.wait(timeout=30), f"{context}: the reader never read"
    try:
        pid, returncode = kill_at(site, moment, scenario.timing)
        outcome = check_after_kill(scenario, returncode, pid, context)
        outcome.moment = moment
        tally.outcomes.append(outcome)
        print(f"{context}: exit {returncode}, at B: {outcome.tables_at_b}, {outcome.leftovers}")

        rerun = timed_ingest(site)
        tally.run_durations.append(rerun.duration_s)
        scenario.timing.duration_s = rerun.duration_s
        scenario.timing.writing_from_s = rerun.writing_from_s
    finally:
        if reader is not None:
            reader.stop()
    if reader is not None:
        assert not reader.errors, f"{context}: the reader failed: {reader.errors[:3]}"
        allowed = {scenario.a.rows["order_lines"], scenario.b.rows["order_lines"]}
        assert set(reader.counts) <= allowed, f"{context}: reader saw {dict(reader.counts)}"
        tally.reader_counts.update(reader.counts)
    assert lake_digest(site.lake) == scenario.b.digest, f"{context}: the re-run did not converge"
    scratch = site.root / "state" / "tmp"
    assert not any(scratch.iterdir()), f"{context}: scratch left behind: {list(scratch.iterdir())}"


@pytest.mark.slow  # the crash loop is the top of the pyramid: scripts/test.sh --all (CI)
@pytest.mark.parametrize(
    # The four fixed moments and twelve seeded ones (CRASH_SAFETY_SEED varies them).
    "kills",
    [pytest.param(16, id="16-kills")],
)
def test_sigkilled_ingest_never_exposes_a_partial_partition(scenario: Scenario, kills: int) -> None:
    rng = random.Random(SEED + kills)
    tally = Tally()
    for number, moment in enumerate(kill_moments(kills, rng)):
        timing = scenario.timing
        context = (
            f"kill {number + 1}/{kills} at {moment.describe()} (run {timing.duration_s:.2f}s,"
            f" writes from {timing.writing_from_s:.2f}s; CRASH_SAFETY_SEED={SEED})"
        )
        kill_and_rerun(scenario, moment, with_reader=number % 2 == 0, context=context, tally=tally)
    print(tally.summary())
    assert tally.interrupted() >= kills // 2, tally.summary()
    assert any(outcome.leftovers or outcome.tables_at_b for outcome in tally.outcomes), (
        f"no kill landed in the write phase: {tally.summary()}"
    )
