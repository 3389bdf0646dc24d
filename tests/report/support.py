"""A small lake for the report's tests: the demo generator, every step run for each date."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.demo.generate import generate
from pipeline.ingest.run import ingest_date
from pipeline.lifecycle.run import stage_date
from pipeline.publish import publish_date
from pipeline.scoring.run import score_date
from tests.support import with_paths

START = date(2025, 1, 1)
DAYS = 24
LAST = START + timedelta(days=DAYS - 1)
# The trend is weekly: it starts on the earliest 7th day before the last.
TREND_START = LAST - timedelta(days=7 * ((DAYS - 1) // 7))


def report_settings(root: Path, **report: object) -> Settings:
    """Default settings under ``root``, a publish secret and report options."""
    settings = with_paths(Settings(), root)
    publish = settings.publish.model_copy(update={"key_secret": SecretStr("report-tests")})
    options = settings.report.model_copy(update=report)
    return settings.model_copy(update={"publish": publish, "report": options})


def build_history(root: Path, customers: int = 200, days: int = DAYS) -> Settings:
    """Generate the demo's exports, ingest, score and stage every date, publish the last."""
    generate(root, start=START, days=days, customers=customers, seed=11)
    settings = report_settings(root)
    for offset in range(days):
        day = START + timedelta(days=offset)
        ingest_date(settings, day)
        score_date(settings, day)
        stage_date(settings, day)
    publish_date(settings, START + timedelta(days=days - 1))
    return settings
