"""Progress without a terminal: periodic log lines while a step runs, even one with no
progress of its own, and the step's figures as log lines."""

from __future__ import annotations

import logging
import time

import pytest

from pipeline import console


@pytest.fixture(autouse=True)
def _propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI keeps the pipeline's lines to its own handler; caplog listens at the root."""
    monkeypatch.setattr(logging.getLogger("pipeline"), "propagate", True)


def test_a_long_step_logs_progress_lines_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert not console.err.is_terminal  # pytest captures stderr
    monkeypatch.setattr(console, "PROGRESS_LOG_SECONDS", 0.1)
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    with console.progress_bar("publish 2026-11-22", total=2) as bar:
        bar.detail("PostgreSQL")
        time.sleep(0.55)  # one long silent step: the timer still reports
        bar.advance(2)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) >= 4, lines
    assert lines[0].startswith("publish 2026-11-22: 0/2 PostgreSQL, 0:00:00 elapsed")
    assert lines[-1].startswith("publish 2026-11-22: 2/2, ")
    assert lines[-1].endswith(" elapsed (done)")


def test_a_quick_step_logs_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    with console.progress_bar("report 2026-11-22", total=1) as bar:
        bar.advance()
    assert caplog.records == []


def test_a_failed_step_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(console, "PROGRESS_LOG_SECONDS", 0.05)
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    with pytest.raises(RuntimeError), console.progress_bar("run 2026-11-22", total=6) as bar:
        bar.advance(3)
        time.sleep(0.2)
        raise RuntimeError("publish failed")
    assert caplog.records[-1].getMessage().startswith("run 2026-11-22: 3/6, ")
    assert caplog.records[-1].getMessage().endswith("(failed)")
