"""rfm_daily: one business day's exports, from files to published tables and alerts.

Each task calls one step of the pipeline (pipeline/schedule/tasks.py); the same steps
run without Airflow as ``rfm-pipeline run --date D``. The run processes the exports of
its business date: the logical date's day (source.timezone) minus
``schedule.export_lag_days``, or the ``business_date`` param of a manual run. Every step
replaces that date's partitions, so a retry or a re-run changes nothing.

    wait_for_exports >> ingest >> customer_days >> score >> lifecycle
    refit_due >> score
    lifecycle >> publish >> report;  lifecycle >> deliver_alerts

``refit_due`` decides whether ``score`` refits the cluster model: the run's day is one
``schedule.refit_cron`` names (``pipeline.steps.refit_due``, which the command line's
run asks too), or the param ``refit`` asks for it. Nothing else refits; rfm_refit only
triggers this DAG with ``refit`` set.

Lifecycle stages build on the day before's: ``lifecycle`` waits for its own previous run
(depends_on_past), and at most one run is active. Backfill with
``airflow backfill create --dag-id rfm_daily --from-date ... --to-date ...``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import DAG, CronTriggerTimetable, Param, PokeReturnValue, chain, task

from pipeline.config import load_settings
from pipeline.schedule import tasks
from pipeline.schedule.airflow_glue import (
    ASSETS,
    business_date_param,
    dag_arguments,
    publish_with_asset_events,
    run_business_date,
)

# Parsing reads the configuration file for the schedule only: no database, no connection.
SETTINGS = load_settings(None)
SCHEDULE = SETTINGS.schedule
ZONE = ZoneInfo(SETTINGS.source.timezone)

with DAG(
    dag_id="rfm_daily",
    description="Daily exports to customer segments, lifecycle stages, danger alerts, BI tables",
    schedule=CronTriggerTimetable(SCHEDULE.daily_cron, timezone=SETTINGS.source.timezone),
    catchup=SCHEDULE.catchup,
    params={
        "business_date": business_date_param(
            "The day whose exports to process (default: the logical date's "
            "day minus schedule.export_lag_days)"
        ),
        "full_recompute": Param(
            False, type="boolean", description="Recompute customer state from every line"
        ),
        "refit": Param(
            False,
            type="boolean",
            description="Fit a new cluster model as of the date, whatever schedule.refit_cron says",
        ),
    },
    doc_md=__doc__,
    **dag_arguments(SETTINGS),
) as dag:

    @task
    def business_date() -> str:
        return run_business_date().isoformat()

    @task.sensor(
        mode="reschedule",
        poke_interval=SCHEDULE.export_poke_seconds,
        # A backstop only: the deadline (schedule.export_deadline_hours) ends the wait.
        timeout=timedelta(days=SCHEDULE.export_lag_days + 14).total_seconds(),
        retries=0,
    )
    def wait_for_exports(day: str) -> PokeReturnValue:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.errors import ExportsLateError

        try:
            files = tasks.exports_arrived(
                tasks.settings(), date.fromisoformat(day), datetime.now(tz=ZONE)
            )
        except ExportsLateError as late:
            raise AirflowFailException(str(late)) from late
        return PokeReturnValue(is_done=bool(files), xcom_value=files)

    @task
    def ingest(day: str) -> dict[str, Any]:
        return tasks.ingest(tasks.settings(), date.fromisoformat(day))

    @task
    def customer_days(day: str) -> dict[str, Any]:
        return tasks.customer_days(tasks.settings(), date.fromisoformat(day))

    @task
    def refit_due(day: str, params: dict[str, Any] | None = None) -> bool:
        asked = bool((params or {}).get("refit"))
        return tasks.refit_due(tasks.settings(), date.fromisoformat(day), asked=asked)

    @task
    def score(day: str, refit: bool, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return tasks.score(
            tasks.settings(),
            date.fromisoformat(day),
            full=bool((params or {}).get("full_recompute")),
            refit=refit,
        )

    @task(depends_on_past=True)
    def lifecycle(day: str) -> dict[str, Any]:
        return tasks.lifecycle(tasks.settings(), date.fromisoformat(day))

    @task(outlets=list(ASSETS.values()))
    def publish(day: str) -> dict[str, Any]:
        return publish_with_asset_events(day)

    @task
    def deliver_alerts(day: str) -> dict[str, Any]:
        return tasks.deliver_alerts(tasks.settings(), date.fromisoformat(day))

    @task
    def report(day: str) -> dict[str, Any]:
        return tasks.report(tasks.settings(), date.fromisoformat(day))

    day = business_date()
    staged = lifecycle(day)
    scored = score(day, refit_due(day))
    chain(wait_for_exports(day), ingest(day), customer_days(day), scored, staged)
    chain(staged, publish(day), report(day))
    chain(staged, deliver_alerts(day))
