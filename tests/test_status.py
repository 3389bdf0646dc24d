"""`rfm-pipeline status`: every step of every date, the lake it looked in, leftovers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.alerts.outbox import open_outbox
from pipeline.config import load_settings
from pipeline.status import EMPTY, INGESTED, pipeline_status
from tests.support import WEB_HEADER, write_csv
from tests.test_cli import GOOD, run


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.toml").write_text(
        '[paths]\nincoming = "in"\nlake = "lake"\nstate = "state"\npublished = "published"\n'
        'models = "models"\nalerts = "alerts"\n'
        '[ingest]\nmissing_export = "empty"\n'
        '[publish]\nkey_secret = "test-secret"\n'
    )
    (tmp_path / "in").mkdir()
    return tmp_path


def test_status_shows_every_step_of_every_date_and_leftovers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    write_csv(project / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD])
    # 2026-11-23 has no export: recorded as an empty day.
    backfill = run(project, "backfill", "--start", "2026-11-22", "--end", "2026-11-23")
    assert backfill.returncode == 0, backfill.stderr
    write_csv(project / "in" / "sales_20261124.csv", [WEB_HEADER, GOOD.replace("W1", "W9")])
    assert run(project, "ingest", "--date", "2026-11-24").returncode == 0
    settings = load_settings(project / "pipeline.toml")
    with open_outbox(settings) as box:  # alerts of 11-22: one still queued, one given up
        box.add(["webhook"], [("a1", date(2026, 11, 22), "{}"), ("a2", date(2026, 11, 22), "{}")])
        box.give_up("webhook", ["a2"], "undelivered more than 14 days after its date")
    (project / "state" / "tmp" / "publish-2026-11-24").mkdir(parents=True)
    (project / "published" / ".serving.duckdb.4242.tmp").write_bytes(b"half")

    status = pipeline_status(settings, date.min, date.max)
    by_day = {day.day: day for day in status.dates}
    assert sorted(by_day) == [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]
    first, empty, only_ingested = by_day.values()
    assert (first.ingest, first.scored, first.staged, first.published) == (
        INGESTED,
        True,
        True,
        True,
    )
    assert first.alerts == {"queued": 1, "given_up": 1}
    assert (empty.ingest, empty.files, empty.scored, empty.published) == (EMPTY, 0, True, True)
    assert (only_ingested.ingest, only_ingested.scored, only_ingested.published) == (
        INGESTED,
        False,
        False,
    )
    assert status.current_published == date(2026, 11, 23)

    result = run(project, "status")

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"Lake: {project / 'lake'} (configuration: {project / 'pipeline.toml'})" in text
    assert "publish #2, BI tools see 2026-11-23 as current" in text
    assert "│ 2026-11-22 │ 1 │ ingested │ 1 │ 1 │ yes │ yes │ yes │" in text
    assert "│ 2026-11-23 │ 1 │ empty day │ 0 │ 0 │ yes │ yes │ yes │" in text
    assert "│ 2026-11-24 │ 1 │ ingested │ 1 │ 1 │ - │ - │ - │" in text
    assert "0 delivered, 1 queued, 1 given up" in text
    assert "│ 2026-11-22 │ 1 │ 1 │" in text  # the alerts not delivered, by date
    assert "Lake: 3 dates, 2026-11-22 to 2026-11-24" in text
    assert "empty days" in text and "No ingested dates" not in text
    assert "Leftovers of interrupted runs (2;" in text
    assert str(project / "state" / "tmp" / "publish-2026-11-24") in text
    assert str(project / "published" / ".serving.duckdb.4242.tmp") in text


def test_status_of_a_new_lake_says_where_it_looked(tmp_path: Path) -> None:
    project = _project(tmp_path)

    result = run(project, "status")

    assert result.returncode == 0, result.stderr
    assert f"Lake: {project / 'lake'}" in result.stdout
    assert "nothing published yet" in result.stdout
    assert "No date has been run in that range." in result.stdout
    assert "Leftovers of interrupted runs: none" in result.stdout


def test_consecutive_alike_dates_share_a_line(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for day in ("20261122", "20261123", "20261124"):
        write_csv(project / "in" / f"sales_{day}.csv", [WEB_HEADER, GOOD.replace("W1", f"W{day}")])
    assert run(project, "backfill", "--start", "2026-11-22", "--end", "2026-11-24").returncode == 0

    result = run(project, "status")

    text = " ".join(result.stdout.split())
    assert "│ 2026-11-22 to 2026-11-24 │ 3 │ ingested │ 3 │ 3 │ yes │ yes │ yes │" in text


def test_rejected_files_are_counted_from_the_file_ledger(tmp_path: Path) -> None:
    """A real ingest with on_bad_file = "quarantine": the zero-byte file is rejected and
    recorded in the file ledger (ingest_files); status counts it on its date."""
    project = _project(tmp_path)
    config = project / "pipeline.toml"
    config.write_text(
        config.read_text().replace("[ingest]\n", '[source]\non_bad_file = "quarantine"\n[ingest]\n')
    )
    write_csv(project / "in" / "sales_20261122_web.csv", [WEB_HEADER, GOOD])
    (project / "in" / "sales_20261122_bad.csv").write_bytes(b"")
    ingested = run(project, "ingest", "--date", "2026-11-22")
    assert ingested.returncode == 0, ingested.stderr
    settings = load_settings(config)

    [day] = pipeline_status(settings, date.min, date.max).dates

    assert (day.day, day.ingest, day.rejected_files) == (date(2026, 11, 22), INGESTED, 1)
    text = " ".join(run(project, "status").stdout.split())
    assert "│ 2026-11-22 │ 1 │ ingested, 1 files rejected │" in text
