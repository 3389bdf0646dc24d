"""A backfill (``run_days``, whose dates' steps overlap in lanes) writes exactly what a
day-by-day run writes, and stops where a day-by-day run stops."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from pipeline import steps
from pipeline.config import Settings
from pipeline.demo.generate import generate
from pipeline.errors import MissingExportError
from pipeline.lake import Lake
from pipeline.publish.catalog import load_catalog
from tests.support import with_paths

START, DAYS = date(2025, 3, 1), 16
END = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exports")
    generate(root, start=START, days=DAYS, customers=200, seed=11)
    return root / "incoming"


def _settings(exports: Path, root: Path) -> Settings:
    shutil.copytree(exports, root / "incoming")
    settings = with_paths(Settings(), root)
    publish = settings.publish.model_copy(update={"key_secret": SecretStr("steps-test")})
    return settings.model_copy(update={"publish": publish})


def _written(settings: Settings) -> dict[str, str]:
    """Every file the runs wrote, by path and content, but the run records (their step
    times), the locks and the outbox; the serving file by its rows."""
    paths = settings.paths
    found: dict[str, str] = {}
    for root in (paths.lake, paths.state, paths.models, paths.published, paths.alerts):
        for path in sorted(root.rglob("*")):
            name = path.relative_to(paths.lake.parent).as_posix()
            parts = path.relative_to(root).parts
            if not path.is_file() or "locks" in parts or "outbox" in parts or "runs" in parts:
                continue
            if path.suffix == ".duckdb":
                found[name] = _rows(path)
            else:
                found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _rows(serving: Path) -> str:
    con = duckdb.connect(str(serving), read_only=True)
    try:
        names = sorted(
            name for (name,) in con.execute("select table_name from duckdb_tables()").fetchall()
        )
        contents = [
            repr(con.sql(f'select * from "{name}" order by all').fetchall()) for name in names
        ]
    finally:
        con.close()
    return hashlib.sha256("\n".join(names + contents).encode()).hexdigest()


# Slow (16 days twice): byte identity is the top of the pyramid, run by --all (CI); the
# failing-date tests below run a backfill in the default suite.
@pytest.mark.slow
def test_a_backfill_writes_what_a_day_by_day_run_writes(exports: Path, tmp_path: Path) -> None:
    daily = _settings(exports, tmp_path / "daily")
    day = START
    while day <= END:
        steps.run_day(daily, day, move_targets=day == END)
        day += timedelta(days=1)
    backfill = _settings(exports, tmp_path / "backfill")
    seen: list[str] = []
    last = steps.run_days(backfill, START, END, on_day=seen.append)

    assert seen == [str(START + timedelta(days=n)) for n in range(DAYS)]
    assert last.publish.as_of_date == last.lifecycle.as_of_date == END
    written = _written(backfill)
    assert written == _written(daily)
    # What is compared covers every step: the last date of each, and a refitted model.
    assert any(name.startswith(f"lake/customer_lifecycle/as_of_date={END}") for name in written)
    assert any(name.startswith("models/") for name in written)
    assert load_catalog(backfill.paths.published).as_of_date == END
    for name in steps.DAILY_STEPS:  # each date's run record names every step
        record = backfill.paths.published / "reports" / "runs"
        assert name in (record / f"{END}.json").read_text()


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapping", "one-step-at-a-time"])
def test_a_failing_date_stops_the_backfill_with_every_earlier_date_published(
    exports: Path, tmp_path: Path, overlap: bool
) -> None:
    settings = _settings(exports, tmp_path)
    duck = settings.duckdb.model_copy(update={"backfill_overlap": overlap})
    settings = settings.model_copy(update={"duckdb": duck})
    failing = START + timedelta(days=3)
    for export in settings.paths.incoming.glob(f"*{failing:%Y%m%d}*"):
        export.unlink()

    with pytest.raises(MissingExportError, match=str(failing)):
        steps.run_days(settings, START, START + timedelta(days=6))

    lake = Lake(settings.paths.lake)
    assert lake.partition_dates("customer_lifecycle", "as_of_date")[-1] == failing - timedelta(
        days=1
    )
    assert lake.partition_dates("order_lines")[-1] == failing - timedelta(days=1)
    assert load_catalog(settings.paths.published).as_of_date == failing - timedelta(days=1)
