"""The DAG files are configuration: they import without errors, and parsing them makes
no database query and opens no connection (as Airflow's tests of its example DAGs count)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.publish.tables import PUBLISHED_TABLES
from pipeline.steps import DAILY_STEPS
from tests.airflow.conftest import REPO


def _dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_the_dags_import_and_parsing_queries_nothing_and_connects_nowhere(
    airflow_db: Path, rfm_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings
    from sqlalchemy import event

    queries: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        queries.append(statement)

    connections: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        connections.append(address)
        return real_connect(self, address)

    assert settings.engine is not None
    event.listen(settings.engine, "before_cursor_execute", count)
    monkeypatch.setattr(socket.socket, "connect", connect)
    try:
        bag = _dagbag()
    finally:
        event.remove(settings.engine, "before_cursor_execute", count)
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["rfm_daily", "rfm_refit"]
    assert queries == []
    assert connections == []


# What the DAG processor must not pay for at every parse (the tasks import them).
HEAVY_MODULES = ("duckdb", "pandas", "pyarrow", "sklearn", "scipy", "matplotlib", "numpy")


def test_parsing_the_dags_imports_no_data_library(rfm_config: Path) -> None:
    """In a fresh interpreter, as the DAG processor parses: no DuckDB, pandas, ... loaded."""
    script = (
        "import importlib.util, json, sys\n"
        f"for path in {sorted(str(p) for p in (REPO / 'dags').glob('*.py'))!r}:\n"
        "    spec = importlib.util.spec_from_file_location(path.rsplit('/', 1)[1][:-3], path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "RFM_CONFIG": str(rfm_config)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_daily_dag_runs_the_steps_of_pipeline_steps_in_order(rfm_config: Path) -> None:
    dag = _dagbag().dags["rfm_daily"]
    ids = [name.replace(" ", "_") for name in DAILY_STEPS]
    for before, after in itertools.pairwise(ids):
        assert after in dag.get_task(before).downstream_task_ids, (before, after)


def test_the_daily_dag_is_shaped_as_documented(rfm_config: Path) -> None:
    dag = _dagbag().dags["rfm_daily"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date == datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    order = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert order == {
        "business_date": sorted(
            [
                "wait_for_exports",
                "refit_due",
                "ingest",
                "customer_days",
                "score",
                "lifecycle",
                "publish",
                "report",
                "deliver_alerts",
            ]
        ),
        "wait_for_exports": ["ingest"],
        "ingest": ["customer_days"],
        "customer_days": ["score"],
        "refit_due": ["score"],
        "score": ["lifecycle"],
        "lifecycle": ["deliver_alerts", "publish"],
        "publish": ["report"],
        "report": [],
        "deliver_alerts": [],
    }
    for t in dag.tasks:
        assert t.retries == 0, t.task_id  # schedule.retries in the test configuration
        assert t.on_failure_callback, t.task_id
    sensor = dag.get_task("wait_for_exports")
    assert sensor.mode == "reschedule" and sensor.retries == 0
    assert dag.get_task("lifecycle").depends_on_past
    assert set(dag.params) == {"business_date", "full_recompute", "refit"}


def test_every_published_table_is_an_asset_without_secrets_in_its_uri(rfm_config: Path) -> None:
    bag = _dagbag()
    outlets = bag.dags["rfm_daily"].get_task("publish").outlets
    assert sorted(a.name for a in outlets) == sorted(f"rfm.{t}" for t in PUBLISHED_TABLES)
    for asset in outlets:
        assert asset.uri.startswith("x-rfm://published/"), asset.uri
        assert "@" not in asset.uri and "secret" not in asset.uri
    # Only rfm_daily writes a date's partitions: rfm_refit triggers it, publishes nothing.
    refit = bag.dags["rfm_refit"]
    assert [t.task_type for t in refit.tasks if t.outlets] == []
    assert {t.task_type for t in refit.tasks} == {
        "_PythonDecoratedOperator",
        "TriggerDagRunOperator",
    }


def test_the_schedule_comes_from_the_configuration(rfm_config: Path) -> None:
    text = rfm_config.read_text()
    assert "[schedule]\nretries = 0\n" in text
    rfm_config.write_text(
        text.replace(
            "retries = 0\n",
            'retries = 3\nretry_delay_minutes = 2.5\ndaily_cron = "30 5 * * *"\n'
            'refit_cron = "0 9 * * 1"\n',
        )
    )
    bag = _dagbag()
    assert bag.dags["rfm_daily"].timetable.expression == "30 5 * * *"
    # The refit is part of the daily run (its task refit_due reads refit_cron when it
    # runs); rfm_refit is manual only.
    assert type(bag.dags["rfm_refit"].timetable).__name__ == "NullTimetable"
    task = bag.dags["rfm_daily"].get_task("ingest")
    assert (task.retries, task.retry_delay) == (3, timedelta(minutes=2.5))
    assert bag.dags["rfm_daily"].get_task("wait_for_exports").retries == 0


def test_a_backfill_creates_one_run_per_morning_for_the_days_before(
    airflow_db: Path, rfm_config: Path
) -> None:
    """`airflow backfill create` (the real command) over four mornings queues four runs,
    one at a time, whose business dates are the four days before."""
    import os
    import subprocess
    import sys

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from pipeline.config import load_settings
    from pipeline.schedule.dates import business_date

    airflow = [sys.executable, "-m", "airflow"]
    env = dict(os.environ)
    for command in (
        ["dags", "reserialize"],
        [
            "backfill",
            "create",
            "--dag-id",
            "rfm_daily",
            "--from-date",
            "2026-11-20T00:00:00+08:00",
            "--to-date",
            "2026-11-23T12:00:00+08:00",
            "--max-active-runs",
            "1",
            # Required with depends_on_past: missing and failed dates are (re)run.
            "--reprocess-behavior",
            "failed",
        ],
    ):
        result = subprocess.run(
            airflow + command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    with create_session() as session:
        runs = (
            session.query(DagRun)
            .filter(DagRun.dag_id == "rfm_daily", DagRun.run_type == "backfill")
            .all()
        )
        logical = sorted(run.logical_date for run in runs)
    settings = load_settings(rfm_config)
    assert [business_date(settings, when, None).isoformat() for when in logical] == [
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
    ]


def test_one_function_of_the_settings_and_the_date_says_when_the_clusters_refit(
    rfm_config: Path,
) -> None:
    from pipeline import steps
    from pipeline.config import load_settings
    from pipeline.model_store import refit_due as age_rule
    from pipeline.schedule.dates import refit_due

    assert steps.refit_due is refit_due  # the command line's steps ask the DAG's function
    settings = load_settings(rfm_config)  # refit_cron "0 8 * * 4", lag 1 day
    assert [
        day for day in (date(2026, 11, d) for d in range(1, 31)) if refit_due(settings, day)
    ] == [date(2026, 11, d) for d in (4, 11, 18, 25)]  # Wednesdays: their runs on Thursdays
    # The demo starts on Wednesday 2025-01-01: the dates the 7-day model-age rule it
    # replaced refitted on, so the demo's outputs did not change.
    start = date(2025, 1, 1)
    days = [start + timedelta(days=n) for n in range(365)]
    newest = start
    by_age = []
    for day in days[1:]:
        if age_rule(newest, day, 7):
            by_age.append(day)
            newest = day
    assert by_age == [day for day in days[1:] if refit_due(settings, day)]
    # Another cron, another day; the lag moves it back to the business date.
    text = rfm_config.read_text().replace(
        "retries = 0\n", 'retries = 0\nrefit_cron = "0 8 1 * *"\n'
    )
    rfm_config.write_text(text)
    monthly = load_settings(rfm_config)
    assert [day for day in days if refit_due(monthly, day)][:3] == [
        date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
    ]  # fmt: skip
