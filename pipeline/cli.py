"""The command line: every step takes a logical date and runs without Airflow."""

from __future__ import annotations

import logging
import shutil
import sys
import traceback
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import duckdb

from pipeline import console, preflight, steplog, steps
from pipeline.alerts import deliver
from pipeline.config import Settings, config_source, load_settings
from pipeline.errors import PipelineError
from pipeline.lake import Lake
from pipeline.lifecycle.quality import QualityOptions, detection_quality

# The step modules import scikit-learn, numpy and pandas: each command imports what it
# runs, so that --help, status and a refused configuration answer without them.
if TYPE_CHECKING:
    from pipeline.lifecycle.run import LifecycleReport
    from pipeline.publish import PublishReport
    from pipeline.scoring.run import ScoreReport

DEMO_START = date(2025, 1, 1)
DEMO_CONFIG = """\
# The demo's configuration: the built-in defaults, with every path inside this folder.
[paths]
incoming = "incoming"
lake = "lake"
state = "state"
published = "published"
models = "models"
alerts = "alerts"

[publish]
# The demo's own pseudonym secret. A real deployment sets RFM_PUBLISH__KEY_SECRET instead.
key_secret = "demo-only-secret-not-for-production"
"""


@dataclass
class _Context:
    config_file: Path | None

    def settings(self, *steps: str) -> Settings:
        """The configuration, checked for what ``steps`` will need (pipeline/preflight.py)
        before any of them starts."""
        settings = load_settings(self.config_file)
        if steps:
            preflight.check(settings, steps)
        return settings


class _IsoDate(click.ParamType[date]):
    name = "YYYY-MM-DD"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date:
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value), "%Y-%m-%d").date()
        except ValueError:
            self.fail(f"{value!r} is not a date like 2026-11-22", param, ctx)


ISO_DATE = _IsoDate()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML configuration (default: $RFM_CONFIG, else ./pipeline.toml, else built-in defaults).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, debug: bool) -> None:
    """Daily sales exports to customer segments, lifecycle stages and danger alerts."""
    _log_to_stderr()
    ctx.obj = _Context(config_file)


class _StderrHandler(logging.Handler):
    """Log records to whatever sys.stderr is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _log_to_stderr() -> None:
    """The pipeline's log lines on stderr: every step's figures and progress lines when
    stderr is not a terminal (a scheduler, a pipe, a log file); only warnings on a
    terminal, where the progress bars and tables say the same."""
    logger = logging.getLogger("pipeline")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if console.err.is_terminal else logging.INFO)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The logical (export) date.")
@click.pass_obj
def ingest(context: _Context, day: date) -> None:
    """Ingest one date's export files into the lake (replacing that date's partitions)."""
    settings = context.settings("ingest")
    with console.progress_bar(f"ingest {day}", total=1) as bar:
        report = steps.ingest(settings, day, bar.detail)
        bar.advance()
    console.ingest_report(report)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.option("--full", is_flag=True, help="Recompute the customer state from every order line.")
@click.option(
    "--refit",
    is_flag=True,
    help="Fit a new cluster model as of the date (default: when schedule.refit_cron says).",
)
@click.pass_obj
def score(context: _Context, day: date, full: bool, refit: bool) -> None:
    """Score every customer as of a date: RFM, segments, clusters, summary."""
    settings = context.settings("score")
    with console.progress_bar(f"score {day}", total=1) as bar:
        steps.customer_days(settings, day)
        # Without --refit, the one refit schedule decides (schedule.refit_cron).
        report = steps.score(settings, day, full=full, refit=refit or None)
        bar.advance()
    console.score_report(report)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.pass_context
def refit(ctx: click.Context, day: date) -> None:
    """Fit a new cluster model as of a date (ids matched to the previous model) and
    rescore the date with it: `score --refit`."""
    ctx.invoke(score, day=day, full=False, refit=True)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.pass_obj
def lifecycle(context: _Context, day: date) -> None:
    """Stage every customer as of a scored date; record transitions and danger alerts
    (table, daily file, and the outbox of the configured channels)."""
    settings = context.settings("lifecycle")
    with console.progress_bar(f"lifecycle {day}", total=1) as bar:
        report = steps.lifecycle(settings, day)
        bar.advance()
    console.lifecycle_report(report)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.pass_obj
def publish(context: _Context, day: date) -> None:
    """Check the date's BI tables against their contracts and publish them: Parquet
    snapshots, the serving DuckDB file, PostgreSQL. A failed check publishes nothing."""
    settings = context.settings("publish")
    with console.progress_bar(f"publish {day}", total=1) as bar:
        report = steps.publish(settings, day, progress=bar.detail)
        bar.advance()
    console.publish_report(report)


@cli.command()
@click.option(
    "--date", "day", type=ISO_DATE, required=True, help="The run's date (ages queued alerts)."
)
@click.pass_obj
def alerts(context: _Context, day: date) -> None:
    """Deliver queued danger alerts to the webhook and email channels; what fails stays
    queued for the next run (given up after alerts.give_up_after_days)."""
    settings = context.settings("alerts")
    with console.progress_bar(f"alerts {day}", total=1) as bar:
        report = deliver(settings, today=day)
        bar.advance()
    steplog.delivered(report, day)
    if not report.channels:
        console.out.print("No alert channel configured (alerts.webhook_url, alerts.smtp_url).")
    console.delivery_report(report)


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The logical date.")
@click.pass_obj
def run(context: _Context, day: date) -> None:
    """Every step for one date: ingest, score, lifecycle, publish, deliver alerts."""
    from pipeline.report import build_report

    settings = context.settings(*preflight.STEPS)
    with console.progress_bar(f"run {day}", total=len(steps.DAILY_STEPS) + 2) as bar:

        def on_step(name: str) -> None:
            if name != steps.DAILY_STEPS[0]:
                bar.advance()
            bar.detail(name)

        built_day = steps.run_day(settings, day, on_step=on_step, progress=bar.detail)
        ingested, scored, staged = built_day.ingest, built_day.score, built_day.lifecycle
        published = built_day.publish
        bar.advance()
        bar.detail("alerts")
        delivered = deliver(settings, today=day)
        steplog.delivered(delivered, day)
        bar.advance()
        bar.detail("report")
        built = build_report(settings, day)
        steplog.reported(built)
        bar.advance()
    console.ingest_report(ingested)
    console.score_report(scored)
    console.lifecycle_report(staged)
    console.publish_report(published)
    console.delivery_report(delivered)
    console.report_summary(built)


@cli.command()
@click.option(
    "--truth",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("data/demo/ground_truth"),
    show_default=True,
    help="The demo generator's ground_truth folder.",
)
@click.option(
    "--warmup-days",
    type=click.IntRange(min=0),
    default=QualityOptions.warmup_days,
    show_default=True,
    help="Alerts in the first days are not judged.",
)
@click.option(
    "--grace-days",
    type=click.IntRange(min=0),
    default=QualityOptions.grace_days,
    show_default=True,
    help="An alert this long after a churn still counts (0: strict).",
)
@click.pass_obj
def quality(context: _Context, truth: Path, warmup_days: int, grace_days: int) -> None:
    """Score danger detection against the demo's ground truth, next to a 90-day baseline."""
    options = QualityOptions(warmup_days=warmup_days, grace_days=grace_days)
    console.quality_report(detection_quality(context.settings(), truth, options))


@cli.command(name="backtest")
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.option(
    "--entry-window-days",
    type=click.IntRange(min=1, max=366),
    default=90,
    show_default=True,
    help="Danger entries of this many days up to the cut-off are judged.",
)
@click.pass_obj
def backtest_command(context: _Context, day: date, entry_window_days: int) -> None:
    """Judge the risks and stages of a past date (the date minus the risk horizon) by
    what customers did next, next to recency, BG/NBD and a 90-day rule."""
    from pipeline.lifecycle.backtest import backtest

    console.backtest_report(backtest(context.settings(), day, entry_window_days))


@cli.command()
@click.option("--start", type=ISO_DATE, required=True, help="First logical date.")
@click.option("--end", type=ISO_DATE, required=True, help="Last logical date (inclusive).")
@click.pass_obj
def backfill(context: _Context, start: date, end: date) -> None:
    """Run every step for each date from START to END, in order."""
    from pipeline.ingest.status import lake_status
    from pipeline.report import build_report

    settings = context.settings(*preflight.STEPS)
    scored, staged, published = _backfill(settings, start, end)
    console.lake_status(lake_status(Lake(settings.paths.lake), start, end))
    console.score_report(scored)
    console.lifecycle_report(staged)
    console.publish_report(published)
    console.delivery_report(deliver(settings, today=end))
    console.report_summary(build_report(settings, end))


@cli.command()
@click.option("--date", "day", type=ISO_DATE, required=True, help="The as-of (logical) date.")
@click.pass_obj
def report(context: _Context, day: date) -> None:
    """Build the date's HTML report (paths.published/reports/DATE.html) from the lake up to
    the date, rewrite the index of past reports beside it, and print its headline."""
    from pipeline.report import build_report

    settings = context.settings("report")
    with console.progress_bar(f"report {day}", total=1) as bar:
        built = build_report(settings, day)
        bar.advance()
    steplog.reported(built)
    console.report_summary(built)


@cli.command()
@click.option("--start", type=ISO_DATE, help="First date (default: the first ingested).")
@click.option("--end", type=ISO_DATE, help="Last date (default: the last ingested).")
@click.pass_obj
def status(context: _Context, start: date | None, end: date | None) -> None:
    """Show where every date stands, step by step (ingested, empty, rejected, scored,
    staged, published, alerts queued and given up), what was quarantined and why, and
    what interrupted runs left behind."""
    from pipeline.status import pipeline_status

    settings = context.settings()
    status = pipeline_status(settings, start or date.min, end or date.max)
    console.pipeline_status(status, config_source(context.config_file))


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("data/demo"),
    show_default=True,
    help="Where the demo lives.",
)
@click.option("--customers", type=click.IntRange(min=1), default=3000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.option("--start", type=ISO_DATE, default=DEMO_START.isoformat(), show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
def demo(directory: Path, customers: int, days: int, start: date, seed: int) -> None:
    """Generate a simulated retailer's exports, then run the pipeline over every day.

    The demo keeps its own configuration, DIR/pipeline.toml (defaults, paths inside
    DIR), so that every command can be pointed at it afterwards with --config.
    """
    from pipeline.demo.generate import generate
    from pipeline.ingest.status import lake_status
    from pipeline.report import build_report

    directory = directory.resolve()
    _clear_previous_demo(directory)
    with console.progress_bar("generate exports", total=days) as bar:
        summary = generate(
            directory,
            start=start,
            days=days,
            customers=customers,
            seed=seed,
            progress=lambda _day: bar.advance(),
        )
    console.generated(summary, directory)
    config_file = directory / "pipeline.toml"
    config_file.write_text(DEMO_CONFIG, encoding="utf-8")
    settings = load_settings(config_file)
    preflight.check(settings)
    end = start + timedelta(days=days - 1)
    scored, staged, published = _backfill(settings, start, end)
    console.lake_status(lake_status(Lake(settings.paths.lake), start, end))
    console.score_report(scored)
    console.lifecycle_report(staged)
    console.publish_report(published)
    console.quality_report(detection_quality(settings, directory / "ground_truth"))
    built = build_report(settings, end)
    console.report_summary(built)
    shown = console.shown(config_file)
    console.out.print(
        f"Explore: rfm-pipeline --config {shown} status\n"
        f"         rfm-pipeline --config {shown} quality --truth {shown.rsplit('/', 1)[0]}"
        "/ground_truth\n"
        f"         rfm-pipeline --config {shown} run --date {end + timedelta(days=1)}"
        " (after adding that day's exports)"
    )
    console.out.print(f"Open the report: {built.path.as_uri()}")


def _clear_previous_demo(directory: Path) -> None:
    """Start from an empty folder; never delete one that a demo did not make."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not (directory / "manifest.json").is_file():
        raise click.UsageError(f"--dir {directory} is not empty and holds no earlier demo")
    shutil.rmtree(directory)


def _backfill(
    settings: Settings, start: date, end: date
) -> tuple[ScoreReport, LifecycleReport, PublishReport]:
    """Every step of each date in order (pipeline.steps), with a progress bar; the last
    date's reports."""
    if end < start:
        raise click.BadParameter(f"--end {end} is before --start {start}")
    days = (end - start).days + 1
    with console.progress_bar("ingest, score, lifecycle, publish", total=days) as bar:

        def on_day(day: str) -> None:
            bar.detail(day)
            bar.advance()

        last = steps.run_days(settings, start, end, on_day=on_day)
    return last.score, last.lifecycle, last.publish


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: expected failures print one line and exit 1."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="rfm-pipeline", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        console.err.print("aborted")
        sys.exit(130)
    except PipelineError as error:
        _fail(f"error: {error}")
    except OSError as error:
        _fail(f"error: {preflight.describe_os_error(error)}")
    except duckdb.IOException as error:
        _fail(f"error: {_duckdb_io_error(error)}")
    except Exception as error:  # the last line of defence: still one clear line
        if "--debug" in args:
            traceback.print_exc()
        _fail(f"error: unexpected {type(error).__name__}: {error} (--debug shows the traceback)")


def _duckdb_io_error(error: duckdb.IOException) -> str:
    """DuckDB's "IO Error: Cannot open file "x": Permission denied" as one plain line."""
    text = " ".join(str(error).split()).removeprefix("IO Error:").strip()
    head, _, reason = text.rpartition(": ")
    if head and reason:
        return f"{head[:1].lower()}{head[1:]}: {reason.lower()}"
    return text


def _fail(message: str) -> None:
    click.echo(" ".join(message.split()), err=True)
    sys.exit(1)
