"""What the DAG files share: the DAG arguments (start date, retries, the failure
notifier), the business-date param and the run's business date, the assets and the
publish task's body.

Imported by dags/ only (it imports Airflow). The DAG processor imports it on every
parse: it opens nothing and reads nothing but the configuration.

Operator alerts of Airflow runs come from one place, :class:`OperatorsNotifier`: every
task's ``on_failure_callback``, called once a task has failed for good. The steps do
not alert themselves under Airflow (the publish task asks the step not to).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import Asset, BaseNotifier, Param, get_current_context

from pipeline.config import Settings
from pipeline.publish.tables import PUBLISHED_TABLES
from pipeline.schedule import tasks
from pipeline.schedule.dates import business_date

log = logging.getLogger(__name__)

# One Asset per published table. The URI names the table, never a path or a host:
# downstream DAGs (a BI refresh, the users' own) schedule on it wherever it is served.
ASSETS = {
    table: Asset(name=f"rfm.{table}", uri=f"x-rfm://published/{table}", group="rfm")
    for table in PUBLISHED_TABLES
}


def dag_arguments(settings: Settings) -> dict[str, Any]:
    """The arguments every DAG of the pipeline shares: its start date, one run at a
    time, the default task arguments, the tag."""
    return {
        "start_date": start_date(settings),
        "max_active_runs": 1,
        "default_args": default_args(settings),
        "tags": ["rfm"],
    }


def business_date_param(description: str) -> Param:
    """The param ``business_date`` (a day, or null for the DAG's default)."""
    return Param(None, type=["null", "string"], format="date", description=description)


def default_args(settings: Settings) -> dict[str, Any]:
    """Retries and the failure notifier, for every task."""
    return {
        "owner": "data-engineering",
        "retries": settings.schedule.retries,
        "retry_delay": timedelta(minutes=settings.schedule.retry_delay_minutes),
        "on_failure_callback": OperatorsNotifier(),
    }


def run_business_date(context: Any = None) -> date:
    """The business date of a DAG run (``context``, default: the running task's): the
    param ``business_date`` if given, else the logical date (or, without one, the run's
    run_after) minus the lag."""
    context = context if context is not None else get_current_context()
    override = (context.get("params") or {}).get("business_date")
    if override:
        return business_date(tasks.settings(), None, override)
    logical = context.get("logical_date") or context["dag_run"].run_after
    return business_date(tasks.settings(), logical, override)


def start_date(settings: Settings) -> datetime:
    """schedule.start_date at midnight in the shop's timezone: static, as Airflow wants."""
    day = settings.schedule.start_date
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(settings.source.timezone))


def publish_with_asset_events(day: str) -> dict[str, Any]:
    """The publish task: publish the date, then an asset event per table.

    A blocked publish (a contract failed) fails the task at once, without retries: the
    checks would fail again on the same data. The failure notifier alerts the operators
    once; the step itself does not (``alert_operators=False`` in tasks.publish).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.errors import PublishBlockedError

    try:
        result = tasks.publish(tasks.settings(), date.fromisoformat(day))
    except PublishBlockedError as blocked:
        raise AirflowFailException(str(blocked)) from blocked
    _emit_published_assets(result)
    return result


def _emit_published_assets(result: dict[str, Any]) -> None:
    """An asset event per published table, with the rows it holds now."""
    outlet_events = get_current_context()["outlet_events"]
    for table, rows in result["rows"].items():
        if table in ASSETS:
            outlet_events[ASSETS[table]].extra = {
                "as_of_date": result["business_date"],
                "rows": int(rows),
                "publish_number": int(result["publish_number"]),
            }


class OperatorsNotifier(BaseNotifier):
    """Tells operators that a task failed (for good: after its retries), through the
    pipeline's operator channels (alerts.webhook_url, alerts.smtp_url; see
    pipeline/alerts/operators.py), and logs it. Never raises: the task's failure is what
    the scheduler must record."""

    def notify(self, context: Any) -> None:
        from pipeline.alerts.operators import notify_operators

        try:
            ti = context["ti"]
            dag_id, task_id = ti.dag_id, ti.task_id
            error = context.get("exception")
            message = " ".join(str(error).split()) if error else "failed"
            try:
                day: str = run_business_date(context).isoformat()
            except Exception:  # the date itself may be what failed
                day = "unknown date"
            subject = f"rfm-pipeline: {dag_id}.{task_id} failed for {day}"
            notify_operators(
                tasks.settings().alerts,
                event_id=f"{dag_id}-{task_id}-{ti.run_id}-{ti.try_number}",
                subject=subject,
                details=[message],
                payload={
                    "dag_id": dag_id,
                    "task_id": task_id,
                    "run_id": ti.run_id,
                    "business_date": day,
                    # What the pipeline raised, under the AirflowFailException that
                    # ends a task without retries (a late export, a blocked publish).
                    "error_type": type(error.__cause__ or error).__name__ if error else None,
                },
            )
        except Exception:
            log.exception("could not notify operators of a failed task")
