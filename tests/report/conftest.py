"""One small demo lake per test session (per xdist worker), copied for tests that write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import Settings
from tests.report.support import build_history, report_settings


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake, models and published audit of a few demo weeks (read only: copy to write)."""
    root = tmp_path_factory.mktemp("report-history")
    build_history(root)
    shutil.rmtree(root / "published" / "reports", ignore_errors=True)
    return root


@pytest.fixture
def lake(history: Path, tmp_path: Path) -> Settings:
    """Settings over a private copy of the history (reports written under tmp_path)."""
    for folder in ("lake", "models", "published"):
        shutil.copytree(history / folder, tmp_path / folder)
    return report_settings(tmp_path)
