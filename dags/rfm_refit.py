"""rfm_refit: ask for a cluster refit now, by triggering rfm_daily with ``refit`` set.

Manual only (no schedule): the scheduled refit is part of the daily run, whose task
``refit_due`` refits on the days ``schedule.refit_cron`` names. This DAG writes nothing
itself: it triggers a run of ``rfm_daily`` for ``business_date`` (default: the newest
published date) with the param ``refit``, which refits the clusters as of that date and
rebuilds and republishes it, one date's partitions written by one DAG. The same as
``airflow dags trigger rfm_daily -c '{"business_date": "...", "refit": true}'``.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from pipeline.config import load_settings
from pipeline.schedule import tasks
from pipeline.schedule.airflow_glue import business_date_param, dag_arguments, run_business_date

SETTINGS = load_settings(None)

with DAG(
    dag_id="rfm_refit",
    description="Refit the K-means clusters now: a run of rfm_daily with refit set",
    schedule=None,
    catchup=False,
    params={
        "business_date": business_date_param(
            "Refit as of this date (default: the newest date published)"
        ),
    },
    doc_md=__doc__,
    **dag_arguments(SETTINGS),
) as dag:

    @task
    def business_date(params: dict[str, object] | None = None) -> str:
        if (params or {}).get("business_date"):
            return run_business_date().isoformat()
        published = tasks.published_dates(tasks.settings())
        if not published:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                "nothing is published yet: pass the param business_date (YYYY-MM-DD)"
            )
        return max(published).isoformat()

    day = business_date()
    day >> TriggerDagRunOperator(
        task_id="trigger_daily_refit",
        trigger_dag_id="rfm_daily",
        conf={"business_date": day, "refit": True},
        wait_for_completion=False,
    )
