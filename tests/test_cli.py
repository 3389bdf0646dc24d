"""The command line, run as a real subprocess: output, exit codes and one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.report.runs import read_run
from pipeline.steps import DAILY_STEPS
from tests.support import WEB_HEADER, write_csv

GOOD = "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed"
BAD = "W2,1,C1,2026-11-22 10:00:00,P1,3x,10.00,20.00,CNY,completed"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.toml").write_text(
        '[paths]\nincoming = "in"\nlake = "lake"\nstate = "state"\n'
        '[publish]\nkey_secret = "test-secret"\n'
    )
    (tmp_path / "in").mkdir()
    return tmp_path


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_prints_what_landed(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD, BAD])

    result = run(project, "ingest", "--date", "2026-11-22")

    assert result.returncode == 0, result.stderr
    assert "sales_20261122.csv" in result.stdout
    assert "unparseable_quantity" in result.stdout
    assert (project / "lake" / "order_lines" / "export_date=2026-11-22" / "data.parquet").is_file()


def test_status_accounts_for_every_row(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD, BAD, GOOD])
    write_csv(project / "in" / "sales_20261123.csv", [WEB_HEADER])
    assert run(project, "backfill", "--start", "2026-11-22", "--end", "2026-11-23").returncode == 0

    result = run(project, "status")

    assert result.returncode == 0, result.stderr
    assert "2 dates, 2026-11-22 to 2026-11-23" in result.stdout
    assert "Every input row accounted for: yes" in result.stdout


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        (
            lambda p: write_csv(p / "in" / "sales_20261122.csv", ["order_id,sku", "W1,P1"]),
            ["ingest", "--date", "2026-11-22"],
            "error: sales_20261122.csv: rejected: required column missing",
        ),
        (
            lambda p: None,
            ["ingest", "--date", "2026-11-22"],
            "error: no export file for 2026-11-22",
        ),
        (
            lambda p: (p / "pipeline.toml").write_text('[source]\ntimezone = "Mars/Olympus"\n'),
            ["ingest", "--date", "2026-11-22"],
            "source.timezone: unknown timezone 'Mars/Olympus'",
        ),
    ],
    ids=["rejected-file", "missing-export", "bad-config"],
)
def test_failure_is_one_clear_line_and_non_zero(
    project: Path, setup, args: list[str], expected: str
) -> None:  # type: ignore[no-untyped-def]
    setup(project)

    result = run(project, *args)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_bad_argument_is_a_usage_error(project: Path) -> None:
    result = run(project, "ingest", "--date", "22/11/2026")
    assert result.returncode == 2
    assert "is not a date like 2026-11-22" in result.stderr


def test_console_script_is_installed() -> None:
    script = shutil.which("rfm-pipeline", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("ingest", "backfill", "status", "demo"):
        assert command in result.stdout


def test_status_shows_the_files_not_ingested(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD])
    (project / "in" / "sales_20261122_b.csv").write_bytes(b"")

    failed = run(project, "ingest", "--date", "2026-11-22")
    result = run(project, "status")

    assert failed.returncode == 1
    assert "error: sales_20261122_b.csv: rejected: empty file" in failed.stderr
    assert result.returncode == 0, result.stderr
    assert "Files not ingested" in result.stdout
    assert "sales_20261122_b.csv" in result.stdout
    assert "empty_file" in result.stdout
    assert "No ingested dates in that range." in result.stdout


def test_status_names_dates_an_interrupted_ingest_left_incomplete(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD])
    assert run(project, "ingest", "--date", "2026-11-22").returncode == 0
    # What a run killed between removing the ledger and rewriting it leaves behind.
    (project / "lake" / "ingest_ledger" / "export_date=2026-11-22" / "data.parquet").unlink()

    result = run(project, "status")

    assert "Incomplete dates (an ingest died mid-write; re-run them): 2026-11-22" in result.stdout


def test_run_ingests_then_scores_and_prints_the_segment_summary(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD, BAD])

    result = run(project, "run", "--date", "2026-11-22")

    assert result.returncode == 0, result.stderr
    assert "Ingest 2026-11-22" in result.stdout
    assert "Scored 1 customers as of 2026-11-22 (full state; cluster model 2026-11-22" in (
        result.stdout
    )
    assert "Segments as of 2026-11-22" in result.stdout
    assert "Clusters (K-means) as of 2026-11-22" in result.stdout
    assert (project / "lake" / "customer_segments" / "as_of_date=2026-11-22").is_dir()
    # The run record the report reads: every step of pipeline.steps, in order, as the
    # Airflow tasks record them.
    settings = load_settings(project / "pipeline.toml")
    settings = settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"state": project / "state"})}
    )
    assert list(read_run(settings, date(2026, 11, 22)) or {}) == list(DAILY_STEPS)


def test_score_refuses_a_date_that_is_not_ingested(project: Path) -> None:
    result = run(project, "score", "--date", "2026-11-22")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: 2026-11-22 is not ingested (no ingest_ledger partition in "
        f"{project / 'lake'}): run `rfm-pipeline ingest --date 2026-11-22` first"
    )


def test_score_full_and_refit_rescore_the_same_date(project: Path) -> None:
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD])
    assert run(project, "run", "--date", "2026-11-22").returncode == 0
    segments = project / "lake" / "customer_segments" / "as_of_date=2026-11-22" / "data.parquet"
    before = segments.read_bytes()

    full = run(project, "score", "--date", "2026-11-22", "--full")
    refit = run(project, "refit", "--date", "2026-11-22")

    assert full.returncode == 0 and refit.returncode == 0, full.stderr + refit.stderr
    assert "(full state; cluster model 2026-11-22, in force)" in full.stdout
    assert "cluster model 2026-11-22, fitted today" in refit.stdout
    assert segments.read_bytes() == before
