"""A publish killed with SIGKILL, at every named step and at random moments, leaves every
target serving the old version or the new one, whole, and the re-run completes.

Each kill is a real ``rfm-pipeline publish`` process: at a named point it kills itself
(``RFM_CRASH_AT``, pipeline/publish/faults.py); at a random moment the test kills it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.publish import publish_date
from pipeline.publish.catalog import load_catalog
from pipeline.publish.faults import CRASH_ENV
from tests.postgres import make_role_name
from tests.publish.support import (
    SECRET,
    Served,
    assert_whole,
    day,
    expected_rows,
    served_by_duckdb,
    served_by_postgres,
    settings_from,
)

CRASH_POINTS = [
    "audited",
    "snapshots_placed",
    "serving_swapped",
    "postgres_version_loaded",
    "postgres_before_commit",
    "postgres_committed",
    "manifest_saved",
]
FIRST = 30  # day(FIRST) is published normally first: the "old" version of the first kill


@pytest.fixture
def settings(
    history: Path, tmp_path: Path, postgres_url: str, postgres_roles: list[str]
) -> Settings:
    role = make_role_name("rfm_reader")
    postgres_roles.append(role)
    settings = settings_from(
        history, tmp_path, postgres_url=postgres_url, postgres_reader_role=role
    )
    (tmp_path / "pipeline.toml").write_text(_toml(settings))
    publish_date(settings, day(FIRST))
    return settings


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


def _publish_process(root: Path, when: date, crash_at: str = "") -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RFM_")}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("rfm-pipeline")),
            "--config",
            str(root / "pipeline.toml"),
            "publish",
            "--date",
            when.isoformat(),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass(frozen=True)
class AfterKill:
    """What each target served right after a kill."""

    manifest: date | None
    serving_file: Served
    postgres: Served


def _after_kill(settings: Settings) -> AfterKill:
    published = settings.paths.published
    catalog = load_catalog(published)
    # The manifest refers only to files that exist.
    for table in catalog.tables:
        for entry in catalog.entries(table).values():
            assert (published / entry.file).is_file(), entry.file
    return AfterKill(
        manifest=catalog.as_of_date,
        serving_file=served_by_duckdb(published / settings.publish.serving_file),
        postgres=served_by_postgres(settings.publish.postgres_url.get_secret_value()),
    )


def _rerun_and_check(settings: Settings, seen: AfterKill, old: date, new: date) -> None:
    """Re-run the killed publish, then hold what was served after the kill to the truth."""
    rerun = _publish_process(settings.paths.published.parent, new)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output

    rows = expected_rows(settings)
    published_days = sorted(rows)
    assert seen.manifest in (old, new)
    for served in (seen.serving_file, seen.postgres):
        assert served.as_of_date in (old, new), served
        assert_whole(served, rows, published_days)

    # After the re-run every target serves the new version, and no temporary is left.
    assert load_catalog(settings.paths.published).as_of_date == new
    serving = settings.paths.published / settings.publish.serving_file
    assert_whole(served_by_duckdb(serving), rows, published_days)
    assert served_by_duckdb(serving).as_of_date == new
    postgres = served_by_postgres(settings.publish.postgres_url.get_secret_value())
    assert postgres.as_of_date == new
    assert_whole(postgres, rows, published_days)
    leftovers = [p for p in settings.paths.published.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_kill_at_every_step_leaves_old_or_new_and_the_rerun_completes(
    settings: Settings,
) -> None:
    for n, point in enumerate(CRASH_POINTS, start=1):
        old, new = day(FIRST + n - 1), day(FIRST + n)
        killed = _publish_process(settings.paths.published.parent, new, crash_at=point)
        output, _ = killed.communicate(timeout=300)
        assert killed.returncode == -signal.SIGKILL, f"{point} never reached:\n{output}"
        seen = _after_kill(settings)
        if point in ("audited", "snapshots_placed"):
            # Nothing was swapped yet: every target still serves the old version.
            assert {seen.manifest, seen.serving_file.as_of_date, seen.postgres.as_of_date} == {
                old
            }, point
        if point in ("postgres_committed", "manifest_saved"):
            assert seen.postgres.as_of_date == new, point
        _rerun_and_check(settings, seen, old, new)


@pytest.mark.slow
def test_kills_at_random_moments_leave_old_or_new_and_the_rerun_completes(
    settings: Settings,
) -> None:
    # Time a whole publish, then kill at moments spread over it (seeded: reproducible
    # choices, though the moment a process reaches depends on the machine).
    started = time.monotonic()
    timed = _publish_process(settings.paths.published.parent, day(FIRST + 1))
    output, _ = timed.communicate(timeout=300)
    assert timed.returncode == 0, output
    duration = time.monotonic() - started
    chooser = random.Random(20261123)
    for n in range(2, 10):
        old, new = day(FIRST + n - 1), day(FIRST + n)
        process = _publish_process(settings.paths.published.parent, new)
        time.sleep(chooser.uniform(0.3, 1.0) * duration)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        seen = _after_kill(settings)
        _rerun_and_check(settings, seen, old, new)
