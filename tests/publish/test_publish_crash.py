"""``rfm-pipeline run --date D`` killed with SIGKILL, at named points of the publish and at
random moments, leaves every target (manifest, serving file with its audit, PostgreSQL)
on one committed publish, whole; the next run clears what the kill left and converges
to a clean run: the same manifest, byte for byte, and every target serving it.

Each kill is a real process: at a named point it kills itself (``RFM_CRASH_AT``,
pipeline/publish/faults.py); at a random moment the test kills it. The truth is a clean
chain of publishes of the same dates from the same lake (in-process, no kills).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import psycopg
import pytest

from pipeline.config import Settings
from pipeline.publish import publish_date
from pipeline.publish.catalog import AUDIT_TABLE, MANIFEST, Catalog, load_catalog
from pipeline.publish.faults import CRASH_ENV
from pipeline.publish.leftovers import find_leftovers
from pipeline.publish.postgres import postgres_identity
from pipeline.publish.serving import serving_identity
from tests.postgres import make_role_name
from tests.publish.support import (
    SECRET,
    Served,
    assert_whole,
    day,
    served_by_duckdb,
    served_by_postgres,
)
from tests.support import with_paths

CRASH_POINTS = [
    "audited",
    "snapshots_placed",
    "serving_prepared",
    "postgres_version_loaded",
    "postgres_before_commit",
    "postgres_prepared",
    "manifest_saved",
    "serving_switched",
    "postgres_switched",
]
FIRST = 30  # day(FIRST) is published normally first: the "old" version of the first kill
DATES = 9  # day(FIRST + 1) .. day(FIRST + DATES) are killed and re-run


@dataclass
class Trial:
    settings: Settings
    clean: dict[date, bytes]  # the clean chain's manifest after publishing each date
    run_seconds: float


def _trial(history: Path, tmp_path: Path, postgres_url: str, reader_role: str) -> Trial:
    """A copy of the prepared lake publishing to ``postgres_url`` (if any), with day(FIRST)
    published; and the clean chain's manifests (a second copy, no PostgreSQL)."""
    from pipeline.config import PublishConfig

    def prepared(root: Path, url: str) -> Settings:
        shutil.copytree(history, root, ignore=shutil.ignore_patterns("published", "state"))
        config = PublishConfig(
            key_secret=SECRET, postgres_url=url, postgres_reader_role=reader_role
        )
        settings = with_paths(Settings(), root).model_copy(update={"publish": config})
        publish_date(settings, day(FIRST))
        return settings

    clean_settings = prepared(tmp_path / "clean", "")
    clean = {day(FIRST): _manifest(clean_settings)}
    for n in range(1, DATES + 1):
        publish_date(clean_settings, day(FIRST + n))
        clean[day(FIRST + n)] = _manifest(clean_settings)
    settings = prepared(tmp_path / "root", postgres_url)
    (settings.paths.published.parent / "pipeline.toml").write_text(_toml(settings))
    # A whole run of a published date: the same publish, and how long a run takes.
    started = time.monotonic()
    _finish(_run(settings, day(FIRST)))
    seconds = time.monotonic() - started
    assert _manifest(settings) == clean[day(FIRST)]
    print(f"a run takes {seconds:.1f}s")
    return Trial(settings, clean, seconds)


def _manifest(settings: Settings) -> bytes:
    return (settings.paths.published / MANIFEST).read_bytes()


def _toml(settings: Settings) -> str:
    paths = settings.paths
    publish = settings.publish
    return "\n".join(
        [
            "[paths]",
            *(
                f'{key} = "{getattr(paths, key)}"'
                for key in ("incoming", "lake", "state", "published", "models", "alerts")
            ),
            "[publish]",
            f'key_secret = "{SECRET}"',
            f'postgres_url = "{publish.postgres_url.get_secret_value()}"',
            f'postgres_reader_role = "{publish.postgres_reader_role}"',
            "",
        ]
    )


def _run(
    settings: Settings, when: date, crash_at: str = "", command: str = "run"
) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RFM_")}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("rfm-pipeline")),
            "--config",
            str(settings.paths.published.parent / "pipeline.toml"),
            command,
            "--date",
            when.isoformat(),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output


def _catalog_of(raw: bytes, tmp: Path) -> Catalog:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / MANIFEST).write_bytes(raw)
    return load_catalog(tmp)


def _check_after_kill(trial: Trial, old: date, new: date, scratch: Path) -> str:
    """Every target serves a committed publish, whole, with its own audit; none is ahead
    of the manifest. Returns which version the manifest holds ("old"/"new")."""
    settings = trial.settings
    published = settings.paths.published
    manifest = _manifest(settings)
    versions = {
        "old": _catalog_of(trial.clean[old], scratch / "old"),
        "new": _catalog_of(trial.clean[new], scratch / "new"),
    }
    # The manifest is the clean run's, before or after the date, byte for byte.
    assert manifest in (trial.clean[old], trial.clean[new])
    committed = "new" if manifest == trial.clean[new] else "old"
    catalog = load_catalog(published)
    for dates in catalog.tables.values():
        for entry in dates.values():
            assert (published / entry.file).is_file(), entry.file
    # A target serves the committed publish or, killed between the commit and its
    # switch, the one before it: never one the manifest has not committed.
    allowed = {"old"} if committed == "old" else {"old", "new"}
    by_identity = {c.identity: name for name, c in versions.items() if name in allowed}

    serving = published / settings.publish.serving_file
    serving_version = by_identity[serving_identity(published, settings.publish)]  # type: ignore[index]
    served = versions[serving_version]
    _assert_served(served_by_duckdb(serving), served)
    _assert_duckdb_audit(serving, served)

    url = settings.publish.postgres_url.get_secret_value()
    if url:
        pg_version = by_identity[postgres_identity(settings.publish)]  # type: ignore[index]
        _assert_served(served_by_postgres(url), versions[pg_version])
        _assert_postgres_audit(url, versions[pg_version])
    return committed


def _assert_served(served: Served, catalog: Catalog) -> None:
    rows = {d: e.rows for d, e in catalog.entries("customer_segments").items()}
    assert served.as_of_date == catalog.as_of_date, served
    assert_whole(served, rows, sorted(rows))


def _assert_duckdb_audit(serving: Path, catalog: Catalog) -> None:
    """The serving file shows the checks of exactly the dates its publish serves."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        shown = dict(
            con.execute(
                "select as_of_date, count(*) from publish_audit "
                "where publish_status = 'published' group by all"
            ).fetchall()
        )
    finally:
        con.close()
    assert shown == {d: e.rows for d, e in catalog.entries(AUDIT_TABLE).items()}


def _assert_postgres_audit(url: str, catalog: Catalog) -> None:
    """PostgreSQL shows the checks of the publishes up to the one it serves, none after."""
    with psycopg.connect(url, autocommit=True) as conn:
        numbers = dict(
            conn.execute(
                "select publish_number, count(*) from rfm.publish_audit "
                "where publish_number is not null group by 1"
            ).fetchall()
        )
    assert max(numbers) == catalog.publish_number, numbers
    assert catalog.published_date is not None
    assert numbers[catalog.publish_number] == (
        catalog.entries(AUDIT_TABLE)[catalog.published_date].rows
    )


def _check_converged(trial: Trial, new: date) -> None:
    """After the re-run: the clean run's manifest, every target on it, nothing left over."""
    settings = trial.settings
    published = settings.paths.published
    assert _manifest(settings) == trial.clean[new]
    catalog = load_catalog(published)
    assert serving_identity(published, settings.publish) == catalog.identity
    _assert_served(served_by_duckdb(published / settings.publish.serving_file), catalog)
    _assert_duckdb_audit(published / settings.publish.serving_file, catalog)
    url = settings.publish.postgres_url.get_secret_value()
    if url:
        assert postgres_identity(settings.publish) == catalog.identity
        _assert_served(served_by_postgres(url), catalog)
        _assert_postgres_audit(url, catalog)
    leftovers = find_leftovers(settings)
    assert not leftovers, leftovers


def _kill_at_random(trial: Trial, when: date, chooser: random.Random) -> None:
    process = _run(trial.settings, when)
    # Half the kills anywhere in the run, half in its last part, where it publishes.
    share = chooser.uniform(0.05, 1.0) if chooser.random() < 0.5 else chooser.uniform(0.6, 1.1)
    time.sleep(share * trial.run_seconds)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)


def _random_kills(trial: Trial, tmp_path: Path, dates: int, kills_per_date: int) -> int:
    chooser = random.Random(20261123)
    kills = 0
    for n in range(1, dates + 1):
        old, new = day(FIRST + n - 1), day(FIRST + n)
        for k in range(kills_per_date):
            _kill_at_random(trial, new, chooser)
            kills += 1
            _check_after_kill(trial, old, new, tmp_path / f"check-{n}-{k}")
        started = time.monotonic()
        _finish(_run(trial.settings, new))
        trial.run_seconds = max(trial.run_seconds, time.monotonic() - started)
        _check_converged(trial, new)
    return kills


@pytest.fixture
def reader_role(postgres_roles: list[str]) -> str:
    role = make_role_name("rfm_reader")
    postgres_roles.append(role)
    return role


# Slow (about two and a half minutes): the default run kills a few whole runs below.
@pytest.mark.slow
def test_a_kill_at_every_publish_step_leaves_committed_versions_and_the_rerun_converges(
    history: Path, tmp_path: Path, postgres_url: str, reader_role: str
) -> None:
    trial = _trial(history, tmp_path, postgres_url, reader_role)
    for n, point in enumerate(CRASH_POINTS, start=1):
        old, new = day(FIRST + n - 1), day(FIRST + n)
        # The named points are all in the publish step: the publish command reaches them
        # sooner than a whole run (the random kills below kill whole runs).
        killed = _run(trial.settings, new, crash_at=point, command="publish")
        output, _ = killed.communicate(timeout=600)
        assert killed.returncode == -signal.SIGKILL, f"{point} never reached:\n{output}"
        committed = _check_after_kill(trial, old, new, tmp_path / f"check-{n}")
        before_commit = CRASH_POINTS.index(point) < CRASH_POINTS.index("manifest_saved")
        assert committed == ("old" if before_commit else "new"), point
        if point == "serving_switched":
            # Killed between two switches: the serving file serves the new publish,
            # PostgreSQL still the old one; the leftovers report says so.
            assert find_leftovers(trial.settings).targets_behind == ["postgresql"]
        _finish(_run(trial.settings, new, command="publish"))
        _check_converged(trial, new)


# Without PostgreSQL the same code runs with one target fewer: a few kills check that
# configuration; the 27 kills below run with every target.
@pytest.mark.slow
def test_a_few_random_kills_of_a_run_without_postgres(history: Path, tmp_path: Path) -> None:
    trial = _trial(history, tmp_path, "", "rfm_reader")
    assert _random_kills(trial, tmp_path, dates=1, kills_per_date=2) == 2


@pytest.mark.slow
def test_random_kills_of_a_run_with_postgres(
    history: Path, tmp_path: Path, postgres_url: str, reader_role: str
) -> None:
    trial = _trial(history, tmp_path, postgres_url, reader_role)
    assert _random_kills(trial, tmp_path, dates=DATES, kills_per_date=3) == 27
