"""The daily DAG run end to end with ``dag.test()`` on demo data: consecutive business
dates, the same tables as the command line, a re-run that changes nothing, a refit
asked for, and failures (a late export, a blocked publish) that tell the operators
exactly once."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipeline.config import load_settings
from pipeline.demo.generate import generate
from pipeline.publish.catalog import AUDIT_TABLE, load_catalog
from pipeline.scoring.clusters import ClusterStore
from pipeline.steps import run_days
from tests.airflow.conftest import REPO
from tests.alerts.support import WebhookReceiver

START = date(2025, 1, 1)
DAYS = 5
SHOP = ZoneInfo("Asia/Shanghai")


def _dag(dag_id: str = "rfm_daily") -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).dags[dag_id]


def _morning_after(day: date) -> datetime:
    """The daily schedule's logical date whose business date is ``day``."""
    return datetime.combine(day + timedelta(days=1), time(6), tzinfo=SHOP)


def _files(root: Path) -> dict[str, str]:
    """sha256 of every lake partition and published snapshot under ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("lake", "published/snapshots")
        for path in sorted((root / folder).rglob("*.parquet"))
    }


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.slow  # three whole days through Airflow and through the CLI
def test_daily_runs_equal_the_command_line_and_a_rerun_changes_nothing(
    airflow_db: Path, rfm_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = rfm_config.parent
    generate(root, start=START, days=DAYS, customers=200, seed=11)
    dag = _dag()
    days = [START + timedelta(days=n) for n in range(DAYS)]
    for day in days:
        run = dag.test(logical_date=_morning_after(day))
        assert str(run.state) == "success", _states(run)

    # The command line, on the same exports in a folder of its own.
    cli_root = tmp_path_factory.mktemp("cli")
    generate(cli_root, start=START, days=DAYS, customers=200, seed=11)
    cli_settings = load_settings(rfm_config).model_copy(
        update={
            "paths": load_settings(rfm_config).paths.model_copy(
                update={
                    key: cli_root / key
                    for key in ("incoming", "lake", "state", "published", "models", "alerts")
                }
            )
        }
    )
    run_days(cli_settings, days[0], days[-1])
    assert _files(root) == _files(cli_root)
    catalog = load_catalog(root / "published")
    assert catalog.as_of_date == days[-1]
    assert sorted(catalog.entries("customer_segments")) == days

    # A re-run of the last date (by its param this time) changes no byte.
    before = _files(root)
    run = dag.test(
        logical_date=_morning_after(days[-1]) + timedelta(minutes=1),
        run_conf={"business_date": days[-1].isoformat()},
    )
    assert str(run.state) == "success", _states(run)
    assert _files(root) == before

    # Each published table got an asset event with its rows; XCom holds no secret.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetModel.name, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_run_id == run.run_id)
            .all()
        )
        xcoms = [
            json.dumps(row.value, default=str)
            for row in session.query(XComModel).filter(XComModel.dag_id == "rfm_daily")
        ]
    rows = {name.removeprefix("rfm."): extra["rows"] for name, extra in events}
    assert rows == {
        t: catalog.entries(t)[days[-1]].rows
        for t in catalog.tables
        if t != AUDIT_TABLE and days[-1] in catalog.entries(t)
    }
    assert all(extra["as_of_date"] == days[-1].isoformat() for _, extra in events)
    assert xcoms and not any("airflow-test-secret" in value for value in xcoms)

    # The refit asked for: rfm_refit triggers rfm_daily for the newest published date
    # with the param refit, and writes nothing itself ...
    settings = load_settings(rfm_config)
    models = ClusterStore(settings.paths.models)
    assert models.newest_on_or_before(days[-1]).version == days[0]  # due on Wednesdays
    before = _files(root)
    trigger = _dag("rfm_refit").test()
    assert str(trigger.state) == "success", _states(trigger)
    assert _files(root) == before
    from airflow.models.dagrun import DagRun

    with create_session() as session:
        triggered = [
            run.conf
            for run in session.query(DagRun).filter(DagRun.dag_id == "rfm_daily")
            if run.run_type == "operator_triggered"
        ]
    assert triggered == [{"business_date": days[-1].isoformat(), "refit": True}]
    # ... and that run (run here with its conf) fits a new model as of the date, and
    # publishes the date with it.
    refit = dag.test(
        logical_date=_morning_after(days[-1]) + timedelta(hours=2), run_conf=triggered[0]
    )
    assert str(refit.state) == "success", _states(refit)
    assert models.newest_on_or_before(days[-1]).version == days[-1]
    profiles = load_catalog(root / "published").entries("cluster_profiles")[days[-1]]
    versions = duckdb.sql(
        "select distinct model_version from read_parquet($file)",
        params={"file": str(root / "published" / profiles.file)},
    ).fetchall()
    assert versions == [(days[-1],)]


def _webhook_connection(tmp_path: Path, receiver: WebhookReceiver) -> str:
    """A connections file defining ``rfm_webhook`` as ``receiver``."""
    connections = tmp_path / "connections.json"
    connections.write_text(
        json.dumps(
            {"rfm_webhook": {"conn_type": "http", "host": receiver.url, "password": "hook-secret"}}
        )
    )
    return str(connections)


def test_a_blocked_publish_fails_at_once_and_alerts_the_operators_once(
    airflow_db: Path, rfm_config: Path, tmp_path: Path
) -> None:
    """A contract fails on the second date (its row count moved more than allowed): the
    publish task fails without a retry, and the operators get exactly one alert, from
    the failure notifier (the step does not alert under Airflow)."""
    text = rfm_config.read_text()
    rfm_config.write_text(
        text.replace(
            "[publish]\n", "[publish]\nmax_row_change = 0.0001\nrow_change_slack_rows = 0\n"
        ).replace("retries = 0\n", "retries = 2\nretry_delay_minutes = 0\n")
    )
    root = rfm_config.parent
    generate(root, start=START, days=2, customers=200, seed=11)
    receiver = WebhookReceiver(secret="hook-secret").start()
    try:
        connections = _webhook_connection(tmp_path, receiver)
        first = _dag().test(logical_date=_morning_after(START), conn_file_path=connections)
        assert str(first.state) == "success", _states(first)
        assert [json.loads(r.body) for r in receiver.requests] == []
        second_day = START + timedelta(days=1)
        run = _dag().test(logical_date=_morning_after(second_day), conn_file_path=connections)
    finally:
        receiver.stop()
    states = _states(run)
    assert str(run.state) == "failed"
    assert states["publish"] == "failed" and states["report"] == "upstream_failed"
    publish = next(ti for ti in run.get_task_instances() if ti.task_id == "publish")
    assert publish.try_number == 1  # not retried: the checks would fail again
    assert load_catalog(root / "published").as_of_date == START  # the day before serves
    messages = [json.loads(r.body) for r in receiver.requests]
    assert len(messages) == 1, messages
    (alert,) = messages
    assert alert["type"] == "operational"
    assert alert["subject"] == f"rfm-pipeline: rfm_daily.publish failed for {second_day}"
    assert "not published, the previous version keeps serving" in alert["details"][0]
    assert "row_count_change" in alert["details"][0]
    assert alert["error_type"] == "PublishBlockedError"
    assert alert["business_date"] == second_day.isoformat()


def test_a_late_export_fails_the_run_and_notifies_operators(
    airflow_db: Path, rfm_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file for the date, and its deadline has passed: the wait fails at once with a
    clear message, nothing downstream runs, and the webhook of the Connection
    ``rfm_webhook`` gets the operators' alert."""
    receiver = WebhookReceiver(secret="hook-secret").start()
    try:
        connections = _webhook_connection(tmp_path, receiver)
        day = date(2025, 3, 10)
        run = _dag().test(logical_date=_morning_after(day), conn_file_path=connections)
    finally:
        receiver.stop()
    states = _states(run)
    assert str(run.state) == "failed"
    assert states["wait_for_exports"] == "failed"
    assert states["ingest"] == "upstream_failed" and states["publish"] == "upstream_failed"
    messages = [json.loads(r.body) for r in receiver.requests]
    late = [m for m in messages if m.get("type") == "operational"]
    assert len(late) == 1, messages
    assert late[0]["subject"] == "rfm-pipeline: rfm_daily.wait_for_exports failed for 2025-03-10"
    assert "the exports of 2025-03-10 are late" in late[0]["details"][0]
    assert "sales_20250310*" in late[0]["details"][0]
    assert late[0]["business_date"] == "2025-03-10"
