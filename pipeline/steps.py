"""The daily run, defined once: its steps in order, what each logs, and how its time is
recorded for the date's report.

Each step is a function of (settings, date) that replaces that date's partitions. The
command line's ``run`` and ``backfill``, the demo, the real-data harness and each task
of the ``rfm_daily`` DAG call these functions, so the copies cannot drift:

- :func:`run_day` runs the steps that build a date (ingest to publish) in one process
  and records their times once;
- :func:`run_step` runs one of them, as an Airflow task does, and adds its time to the
  date's record (the first step starts a new record).

Delivering alerts and building the report follow a date's steps; they are not in its
record (the DAG runs them side by side, and the report reads the record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipeline import steplog
from pipeline.schedule.dates import refit_due as refit_due  # the one refit schedule

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.ingest.run import IngestReport
    from pipeline.lifecycle.run import LifecycleReport
    from pipeline.publish.run import PublishReport
    from pipeline.scoring.run import ScoreReport

# The steps that build a date, in the order they run; each is a task of rfm_daily.
DAILY_STEPS = ("ingest", "customer days", "score", "lifecycle", "publish")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DayReports:
    """What each step of a date reported."""

    ingest: IngestReport
    score: ScoreReport
    lifecycle: LifecycleReport
    publish: PublishReport


def ingest(settings: Settings, day: date, progress: Progress | None = None) -> IngestReport:
    from pipeline.ingest.run import ingest_date

    report = ingest_date(settings, day, progress)
    steplog.ingested(report)
    return report


def customer_days(settings: Settings, day: date) -> int:
    from pipeline.scoring.customer_days import build_customer_days

    return build_customer_days(settings, day)


def score(
    settings: Settings, day: date, *, full: bool = False, refit: bool | None = None
) -> ScoreReport:
    """Customer state, the cluster model in force and the segments; the date's customer
    days come from the step before.

    The model is refitted as of ``day`` when ``refit`` says so, or, when it is None,
    when :func:`refit_due` (``schedule.refit_cron``) does: nowhere else, so the command
    line and rfm_daily refit on the same dates; the first model is fitted whenever there
    is none.
    """
    from pipeline.scoring.run import score_date

    if refit is None:
        refit = refit_due(settings, day)
    report = score_date(settings, day, full=full, refit=refit, customer_days=False)
    steplog.scored(report)
    return report


def lifecycle(settings: Settings, day: date) -> LifecycleReport:
    from pipeline.lifecycle.run import stage_date

    report = stage_date(settings, day)
    steplog.staged(report)
    return report


def publish(
    settings: Settings,
    day: date,
    *,
    alert_operators: bool = True,
    targets: bool = True,
    progress: Progress | None = None,
) -> PublishReport:
    """Publish the date. A blocked publish alerts the operators itself unless
    ``alert_operators`` is false: under Airflow the failure notifier does (one alert
    per failed task, after its retries), so the DAG's task passes false. With
    ``targets`` false the serving file and PostgreSQL are left to a later date's
    publish (a backfill's last: :func:`run_days`). ``progress`` is told how a long
    PostgreSQL load goes."""
    from pipeline.publish.run import publish_date

    report = publish_date(
        settings, day, alert_operators=alert_operators, targets=targets, progress=progress
    )
    steplog.published(report)
    return report


_BODIES: dict[str, Callable[..., Any]] = {
    "ingest": ingest,
    "customer days": customer_days,
    "score": score,
    "lifecycle": lifecycle,
    "publish": publish,
}


def _timed(settings: Settings, name: str, day: date, **options: Any) -> tuple[Any, float]:
    """One step of ``day``, logged with its wall time; returns its report and seconds."""
    started = time.perf_counter()
    report = _BODIES[name](settings, day, **options)
    seconds = round(time.perf_counter() - started, 3)
    steplog.step_done(name, day, seconds)
    return report, seconds


def run_step(settings: Settings, name: str, day: date, **options: Any) -> Any:
    """One step of ``day``, timed, logged and added to the date's run record."""
    from pipeline.report.runs import record_step

    report, seconds = _timed(settings, name, day, **options)
    record_step(settings, day, name, seconds, first=name == DAILY_STEPS[0])
    return report


def run_day(
    settings: Settings,
    day: date,
    *,
    on_step: Progress | None = None,
    progress: Progress | None = None,
    move_targets: bool = True,
) -> DayReports:
    """Every step that builds ``day``, in order; their times make the date's run record.

    ``on_step`` is told each step's name as it starts, ``progress`` the ingest's and
    the publish's details;
    with ``move_targets`` false the publish leaves the serving file and PostgreSQL behind.
    """
    from pipeline.report.runs import record_run

    seconds: dict[str, float] = {}
    reports: dict[str, Any] = {}
    for name in DAILY_STEPS:
        if on_step:
            on_step(name)
        options: dict[str, Any] = {}
        if name == "ingest":
            options["progress"] = progress
        elif name == "publish":
            options["targets"] = move_targets
            options["progress"] = progress
        reports[name], seconds[name] = _timed(settings, name, day, **options)
    record_run(settings, day, seconds)
    return DayReports(
        ingest=reports["ingest"],
        score=reports["score"],
        lifecycle=reports["lifecycle"],
        publish=reports["publish"],
    )


def run_days(
    settings: Settings, start: date, end: date, *, on_day: Progress | None = None
) -> DayReports:
    """Every step of each date from ``start`` to ``end`` (a backfill); ``on_day`` is told
    each date as it is done. Returns the last date's reports.

    With ``duckdb.backfill_overlap`` (the default) the dates' steps overlap, so that a
    second core has work: each step runs in a lane of its own (:data:`_LANES`), date
    after date, and starts once the lane before has done its date; while one date is
    staged, the next is ingested and scored and the one before published. Every step
    reads only its own date and the dates before it, so the lake, the models and the
    published files are those of a day-by-day run, byte for byte (tests/test_steps.py).
    Each date's run record holds its steps' wall times, as :func:`run_day` records them
    (steps running side by side take longer each). Without it, the dates run one step
    at a time.

    On the first failure the backfill stops as a day-by-day run would, except that the
    two dates after the failed one may already be ingested or scored (their partitions
    are whole; a re-run replaces them).

    Only the last date's publish moves the serving file and PostgreSQL: they go from the
    publish they served before the backfill to its last one, whole; every date's
    snapshots and manifest are published as a day-by-day run publishes them.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"the end {end} is before the start {start}")
    if settings.duckdb.backfill_overlap:
        return _overlapping(settings, start, end, on_day)
    day = start
    while True:
        reports = run_day(settings, day, move_targets=day == end)
        if on_day:
            on_day(str(day))
        if day == end:
            return reports
        day += timedelta(days=1)


# The lanes of an overlapping backfill, each a thread running its steps date after
# date: a step starts once the lane before has done the same date. (A fifth lane fitting
# the lifecycle's weekly models beside the day before's staging was slower: more CPU,
# docs/benchmarks.md.)
_LANES = (("ingest", "customer days"), ("score",), ("lifecycle",), ("publish",))
# Dates in flight at once: one per lane but the first (ingest and score share a date).
_DATES_IN_FLIGHT = 3


def _overlapping(settings: Settings, start: date, end: date, on_day: Progress | None) -> DayReports:
    """:func:`run_days` in the lanes of :data:`_LANES`, with :data:`_DATES_IN_FLIGHT`
    dates in flight at most."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from pipeline.report.runs import record_run

    Done = dict[str, tuple[Any, float]]  # step name: (its report, its seconds)

    def lane(
        steps: tuple[str, ...], day: date, before: Future[Done] | None, earlier: Future[Done] | None
    ) -> Done:
        # The lane before's result for the date, and this lane's for the date before:
        # a failure in either stops this step (the exception travels down the lanes).
        done = dict(before.result()) if before is not None else {}
        if earlier is not None:
            earlier.result()
        for name in steps:
            options = {"targets": day == end} if name == "publish" else {}
            done[name] = _timed(settings, name, day, **options)
        if steps == _LANES[-1]:
            record_run(settings, day, {name: seconds for name, (_, seconds) in done.items()})
            if on_day:
                on_day(str(day))
        return done

    pools = [ThreadPoolExecutor(1, thread_name_prefix=f"backfill-{steps[0]}") for steps in _LANES]
    try:
        previous: list[Future[Done] | None] = [None] * len(_LANES)
        finished: list[Future[Done]] = []
        day = start
        while day <= end:
            if len(finished) >= _DATES_IN_FLIGHT:
                finished[-_DATES_IN_FLIGHT].result()
            before: Future[Done] | None = None
            for number, steps in enumerate(_LANES):
                before = pools[number].submit(lane, steps, day, before, previous[number])
                previous[number] = before
            assert before is not None
            finished.append(before)
            day += timedelta(days=1)
        done = finished[-1].result()
        return DayReports(*(done[name][0] for name in ("ingest", "score", "lifecycle", "publish")))
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
