"""rfm_refit: a new K-means model for the segments' clusters, published.

Scheduled on the daily DAG's publish (the asset ``rfm.daily_published``): after each
daily publish it checks whether a refit is due for that business date
(``schedule.refit_cron``, by default the Sunday run's date) and otherwise skips. So it
never waits for a date: it starts only once the date is published. When due, it fits a
new cluster model as of that date (cluster ids matched to the previous model's),
rescores and restages the date with it, and publishes: ``cluster_profiles`` then carries
the new model version, and every published table gets an asset event. A manual run
with the param ``business_date`` refits that date at once. The daily DAG keeps using the
newest model.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.sdk import DAG, Param, chain, task

from pipeline.config import load_settings
from pipeline.schedule import tasks
from pipeline.schedule.airflow_glue import (
    ASSETS,
    DAILY_PUBLISHED,
    default_args,
    publish_with_asset_events,
    refit_request,
    start_date,
)
from pipeline.schedule.dates import refit_due

SETTINGS = load_settings(None)

with DAG(
    dag_id="rfm_refit",
    description="Refit the K-means clusters and publish the new model version",
    schedule=DAILY_PUBLISHED,
    start_date=start_date(SETTINGS),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(SETTINGS),
    params={
        "business_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Refit as of this date now (default: the date the daily DAG "
            "published, when schedule.refit_cron says a refit is due)",
        ),
    },
    tags=["rfm"],
    doc_md=__doc__,
) as dag:

    @task
    def business_date() -> str:
        day, _ = refit_request()
        return day.isoformat()

    @task.short_circuit
    def refit_is_due(day: str) -> bool:
        _, asked = refit_request()
        due = asked or refit_due(tasks.settings(), date.fromisoformat(day))
        reason = "asked for" if asked else "due" if due else "not due (schedule.refit_cron)"
        tasks.log.info("refit %s: %s", day, reason)
        return due

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
    chain(refit_is_due(day), refit(day), lifecycle(day), publish(day))
