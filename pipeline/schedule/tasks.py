"""The bodies of the DAGs' tasks: each loads the settings at run time, calls one step of
the pipeline for one business date, and returns a few counts (its XCom: never a secret,
never per-customer data). Every step is idempotent: a retried or re-run task replaces
its date's partitions with the same bytes.

The steps themselves, their logging and the run record are ``pipeline.steps``, which
``rfm-pipeline run --date D`` runs in order without Airflow.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline import preflight, steplog, steps
from pipeline.config import Settings, load_settings
from pipeline.errors import ExportsLateError
from pipeline.ingest.files import FoundFiles, find_export_files
from pipeline.schedule.connections import CONNECTION_IDS, ConnectionLike, with_connections
from pipeline.schedule.dates import export_deadline

log = logging.getLogger(__name__)


def settings() -> Settings:
    """The configuration ($RFM_CONFIG, RFM_* variables), completed from the Airflow
    Connections ``rfm_postgres``, ``rfm_webhook`` and ``rfm_smtp`` where defined."""
    return with_connections(load_settings(None), _airflow_connection)


def _airflow_connection(conn_id: str) -> ConnectionLike | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    assert conn_id in CONNECTION_IDS
    try:
        connection: ConnectionLike = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return connection


def export_files(settings: Settings, day: date) -> list[str]:
    """Names of the day's matched paths, but those still in transfer (hidden names, by
    convention; see exports_arrived). A path the ingest will reject (a symlink out of
    the folder, not a regular file) counts: the ingest records why in its file ledger."""
    return _arrived(_found(settings, day))


def _found(settings: Settings, day: date) -> FoundFiles:
    """Found as the ingest finds them: nothing is opened but regular files inside."""
    source = settings.source
    return find_export_files(
        settings.paths.incoming,
        source.file_pattern,
        day,
        symlinks=source.symlinks,
        hidden_files=source.hidden_files,
        fingerprint=False,
    )


def _arrived(found: FoundFiles) -> list[str]:
    return sorted(
        [export.name for export in found.exports]
        + [outcome.name for outcome in found.not_read if outcome.outcome == "rejected"]
    )


def exports_arrived(settings: Settings, day: date, now: datetime) -> list[str]:
    """The day's export files, or [] while there are none, or while a matched file is
    still in transfer (a hidden name), and the deadline is ahead.

    Raises:
        ExportsLateError: none has arrived, or one is still in transfer, and ``now`` is
            past the deadline.
    """
    found = _found(settings, day)
    files = _arrived(found)
    in_transfer = found.in_transfer
    if files and not in_transfer:
        return files
    deadline = export_deadline(settings, day)
    if now >= deadline:
        if in_transfer:
            raise ExportsLateError(
                f"the exports of {day} are late: {', '.join(in_transfer)} still in transfer"
                f" (a hidden name) in {settings.paths.incoming} by the deadline"
                f" {deadline.isoformat()} (schedule.export_deadline_hours)"
            )
        raise ExportsLateError(
            f"the exports of {day} are late: no file matching "
            f"{settings.source.file_pattern.format(date=day)!r} in {settings.paths.incoming} "
            f"by the deadline {deadline.isoformat()} (schedule.export_deadline_hours)"
        )
    if in_transfer:
        log.info(
            "%s of %s still in transfer; waiting until %s",
            ", ".join(in_transfer), day, deadline.isoformat(),
        )  # fmt: skip
    else:
        log.info("no export of %s yet; waiting until %s", day, deadline.isoformat())
    return []


def ingest(settings: Settings, day: date) -> dict[str, Any]:
    # The run's first step checks what the later ones need (secrets, targets, folders).
    preflight.check(settings)
    report = steps.run_step(settings, "ingest", day)
    return {
        "business_date": day.isoformat(),
        "files": len(report.files),
        **{
            column: report.total(column)
            for column in ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")
        },
    }


def customer_days(settings: Settings, day: date) -> dict[str, Any]:
    steps.run_step(settings, "customer days", day)
    return {"business_date": day.isoformat()}


def refit_due(settings: Settings, day: date, *, asked: bool) -> bool:
    """Whether the run of ``day`` refits the cluster model: asked for (the param
    ``refit``), or due by the one refit schedule (``pipeline.steps.refit_due``,
    ``schedule.refit_cron``), as the command line decides it."""
    due = steps.refit_due(settings, day)
    reason = "asked for (param refit)" if asked else "due" if due else "not due"
    log.info(
        "cluster refit for %s: %s (schedule.refit_cron %r)",
        day, reason, settings.schedule.refit_cron,
    )  # fmt: skip
    return asked or due


def score(settings: Settings, day: date, *, full: bool, refit: bool) -> dict[str, Any]:
    """Customer state, the cluster model in force (refitted when ``refit``: the task
    ``refit_due`` decides) and the segments with each customer's cluster: one step, as
    one table holds both."""
    report = steps.run_step(settings, "score", day, full=full, refit=refit)
    return {
        "business_date": day.isoformat(),
        "customers": report.customers,
        "mode": report.mode,
        "model_version": report.model_version.isoformat() if report.model_version else None,
        "refitted": report.refitted,
    }


def lifecycle(settings: Settings, day: date) -> dict[str, Any]:
    report = steps.run_step(settings, "lifecycle", day)
    return {
        "business_date": day.isoformat(),
        "transitions": report.transitions,
        "danger_entries": report.alerts,
        "queued": report.queued,
    }


def publish(settings: Settings, day: date) -> dict[str, Any]:
    """Publish the date; the rows per published table, for the asset events."""
    # The failure notifier alerts the operators of a blocked publish, as of any failure.
    report = steps.run_step(settings, "publish", day, alert_operators=False)
    return {
        "business_date": day.isoformat(),
        "current_as_of_date": report.current_as_of_date.isoformat(),
        "publish_number": report.publish_number,
        "rows": dict(report.rows),
        "postgres": report.postgres,
    }


def deliver_alerts(settings: Settings, day: date) -> dict[str, Any]:
    from pipeline.alerts import deliver

    # Not in the run record: it runs beside the report, which reads the record.
    started = time.perf_counter()
    report = deliver(settings, today=day)
    steplog.delivered(report, day)
    steplog.step_done("alerts", day, time.perf_counter() - started)
    return {
        "business_date": day.isoformat(),
        **{what: report.total(what) for what in ("delivered", "pending", "given_up")},
    }


def report(settings: Settings, day: date) -> dict[str, Any]:
    from pipeline.report import build_report

    result = build_report(settings, day)
    steplog.reported(result)
    return {"business_date": day.isoformat(), "file": str(Path(result.path))}


def published_dates(settings: Settings) -> set[date]:
    """The dates published so far (the manifest's customer_segments)."""
    from pipeline.publish.catalog import load_catalog

    return set(load_catalog(settings.paths.published).entries("customer_segments"))
