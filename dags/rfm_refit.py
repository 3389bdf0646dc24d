"""rfm_refit: a new K-means model for the segments' clusters, published.

Weekly by default (``schedule.refit_cron``, after that day's daily run). It waits until
the daily DAG has published the business date, fits a new cluster model as of that date
(cluster ids matched to the previous model's), rescores and restages the date with it,
and publishes: ``cluster_profiles`` then carries the new model version, and every
published table gets an asset event. The daily DAG keeps using the newest model.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, Param, PokeReturnValue, chain, task

from pipeline.config import load_settings
from pipeline.schedule import tasks
from pipeline.schedule.airflow_glue import (
    ASSETS,
    default_args,
    publish_with_asset_events,
    run_business_date,
    start_date,
)

SETTINGS = load_settings(None)
SCHEDULE = SETTINGS.schedule

with DAG(
    dag_id="rfm_refit",
    description="Refit the K-means clusters and publish the new model version",
    schedule=CronTriggerTimetable(SCHEDULE.refit_cron, timezone=SETTINGS.source.timezone),
    start_date=start_date(SETTINGS),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(SETTINGS),
    params={
        "business_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="The date to refit as of (default: the logical date's day minus "
            "schedule.export_lag_days)",
        ),
    },
    tags=["rfm"],
    doc_md=__doc__,
) as dag:

    @task
    def business_date() -> str:
        return run_business_date().isoformat()

    @task.sensor(
        mode="reschedule",
        poke_interval=SCHEDULE.export_poke_seconds,
        timeout=timedelta(hours=24).total_seconds(),
        retries=0,
    )
    def wait_for_daily_publish(day: str) -> PokeReturnValue:
        published = tasks.published_dates(tasks.settings())
        return PokeReturnValue(is_done=date.fromisoformat(day) in published)

    @task
    def refit(day: str) -> dict[str, Any]:
        return tasks.refit(tasks.settings(), date.fromisoformat(day))

    @task
    def lifecycle(day: str) -> dict[str, Any]:
        return tasks.lifecycle(tasks.settings(), date.fromisoformat(day))

    @task(outlets=list(ASSETS.values()))
    def publish(day: str) -> dict[str, Any]:
        return publish_with_asset_events(day)

    day = business_date()
    chain(wait_for_daily_publish(day), refit(day), lifecycle(day), publish(day))
