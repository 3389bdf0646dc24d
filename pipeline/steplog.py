"""What each step did, as log lines: the task logs under Airflow, stderr of the command
line when it has no terminal. One function per step's report; each line names the step
and the date, so a log can be grepped by either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.alerts import DeliveryReport
    from pipeline.ingest.run import IngestReport
    from pipeline.lifecycle.run import LifecycleReport
    from pipeline.publish.run import PublishReport
    from pipeline.report import ReportResult
    from pipeline.scoring.run import ScoreReport

log = logging.getLogger("pipeline")

_COUNTS = ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def ingested(report: IngestReport) -> None:
    day = report.export_date
    if not report.files:
        log.info("ingest %s: no export file: recorded as an empty day", day)
    for row in report.files:
        log.info(
            "ingest %s: file %s (%s): %s in, %s accepted, %s quarantined, %s duplicates",
            day,
            row["source_file"],
            row["encoding"],
            *(row[column] for column in _COUNTS),
        )
    if report.quarantine_reasons:
        reasons = _pairs(report.quarantine_reasons)
        log.info("ingest %s: quarantined rows by reason: %s", day, reasons)
    for row in report.customer_master_files:
        log.info(
            "ingest %s: customer master %s: %s in, %s loaded, %s quarantined",
            day,
            row["source_file"],
            row["rows_in"],
            row["rows_loaded"],
            row["rows_quarantined"],
        )
    if report.customer_master_reasons:
        log.info(
            "ingest %s: quarantined master rows by reason: %s",
            day,
            _pairs(report.customer_master_reasons),
        )
    rows_in = report.total("rows_in")
    rest = sum(report.total(column) for column in _COUNTS[1:])
    log.info(
        "ingest %s: %d files, %d rows in, every row accounted for: %s",
        day,
        len(report.files),
        rows_in,
        "yes" if rows_in == rest else "NO",
    )


def scored(report: ScoreReport) -> None:
    model = (
        f"cluster model {report.model_version}{' (fitted now)' if report.refitted else ''}"
        if report.model_version
        else "no cluster model yet"
    )
    log.info(
        "score %s: %d customers (%s state; %s)",
        report.as_of_date,
        report.customers,
        report.mode,
        model,
    )
    _phases("score", report.as_of_date, report.timings)


def staged(report: LifecycleReport) -> None:
    stages = _pairs({str(row["stage"]): row["customers"] for row in report.stage_counts})
    log.info(
        "lifecycle %s: %d stage changes, %d entered danger, %d queued for delivery%s; %s",
        report.as_of_date,
        report.transitions,
        report.alerts,
        report.queued,
        " (first run: nothing alerted)" if report.first_run else "",
        stages,
    )
    _phases("lifecycle", report.as_of_date, report.timings)


def published(report: PublishReport) -> None:
    targets = ["Parquet snapshots", f"serving file {report.serving_file}"]
    if report.postgres:
        targets.append("PostgreSQL")
    log.info(
        "publish %s: publish #%d, %d contract checks passed; %s; BI tools see %s as current",
        report.as_of_date,
        report.publish_number,
        report.checks,
        ", ".join(targets),
        report.current_as_of_date,
    )
    log.info("publish %s: rows: %s", report.as_of_date, _pairs(report.rows))
    _phases("publish", report.as_of_date, report.timings)


def delivered(report: DeliveryReport, day: date) -> None:
    if not report.channels:
        log.info("alerts %s: no alert channel configured", day)
    for name, channel in sorted(report.channels.items()):
        log.info(
            "alerts %s: %s: %d delivered, %d queued for the next run, %d given up",
            day,
            name,
            channel.delivered,
            channel.pending,
            channel.given_up,
        )
        for error in channel.errors:
            log.warning("alerts %s: %s: %s", day, name, error)
    for item in report.given_up:
        log.warning(
            "alerts %s: gave up %s alert %s of %s: %s",
            day,
            item.channel,
            item.alert_id,
            item.as_of_date,
            item.reason,
        )


def reported(result: ReportResult) -> None:
    log.info(
        "report %s: %s (%d KB, %.1f s)",
        result.as_of_date,
        result.path,
        result.size_bytes // 1024,
        result.seconds,
    )


def step_done(step: str, day: date, seconds: float) -> None:
    log.info("%s %s: done in %.1f s", step, day, seconds)


def _phases(step: str, day: date, timings: Mapping[str, float]) -> None:
    if timings:
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        log.info("%s %s: timings: %s", step, day, phases)
