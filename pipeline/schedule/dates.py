"""The business date a run processes, and when its exports are late.

Airflow 3's cron schedules (``CronTriggerTimetable``) give a run a logical date equal to
the moment it fires, with ``data_interval_start == data_interval_end``: nothing in the
run says which day's exports it is for. The pipeline derives it explicitly: the logical
date's day in the shop's timezone, minus ``schedule.export_lag_days``. A run may also
name its day (the DAG param ``business_date``), which wins.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.errors import ConfigError


def business_date(settings: Settings, logical: datetime | None, override: str | None) -> date:
    """The day whose exports a run processes.

    Raises:
        ConfigError: ``override`` is not an ISO date, or neither is given.
    """
    if override:
        try:
            return date.fromisoformat(override)
        except ValueError:
            raise ConfigError(f"business_date {override!r} is not a date (YYYY-MM-DD)") from None
    if logical is None:
        raise ConfigError("the run has no logical date: pass business_date (YYYY-MM-DD)")
    if logical.tzinfo is None:
        raise ConfigError("the logical date must carry a timezone")
    local = logical.astimezone(ZoneInfo(settings.source.timezone))
    return local.date() - timedelta(days=settings.schedule.export_lag_days)


def export_deadline(settings: Settings, day: date) -> datetime:
    """When the exports of ``day`` are late: the start of the run's day (``day`` plus the
    lag, in the shop's timezone) plus ``schedule.export_deadline_hours``."""
    run_day = day + timedelta(days=settings.schedule.export_lag_days)
    start = datetime(
        run_day.year, run_day.month, run_day.day, tzinfo=ZoneInfo(settings.source.timezone)
    )
    return start + timedelta(hours=settings.schedule.export_deadline_hours)


def refit_due(settings: Settings, day: date) -> bool:
    """Whether the run of ``day`` refits the cluster model: ``schedule.refit_cron``
    fires on the run's day (``day`` plus the lag, in the shop's timezone).

    The one refit schedule: ``pipeline.steps.score`` asks it for the command line's
    run, backfill and score, and rfm_daily's task ``refit_due`` for the DAG, so both
    refit on the same dates. A pure function of the settings and the date.
    """
    from croniter import croniter

    zone = ZoneInfo(settings.source.timezone)
    run_day = day + timedelta(days=settings.schedule.export_lag_days)
    start = datetime(run_day.year, run_day.month, run_day.day, tzinfo=zone)
    fires = croniter(settings.schedule.refit_cron, start - timedelta(microseconds=1))
    return bool(fires.get_next(datetime) < start + timedelta(days=1))
