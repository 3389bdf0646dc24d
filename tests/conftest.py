"""Shared fixtures: a pipeline configured inside a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from pipeline.config import Settings, load_settings
from tests.support import with_paths

pytest_plugins = ["tests.postgres"]

# Property tests run each example through real DuckDB steps: a few examples by default,
# many under `scripts/test.sh --all` (--hypothesis-profile=thorough), which CI runs.
_PROFILE = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
hypothesis_settings.register_profile("default", max_examples=8, **_PROFILE)
hypothesis_settings.register_profile("thorough", max_examples=30, **_PROFILE)
hypothesis_settings.load_profile("default")


@pytest.fixture
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RFM_* variable and no pipeline.toml of the caller's can leak into a test."""
    for name in list(os.environ):
        if name.startswith("RFM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(clean_environment: None, tmp_path: Path) -> Settings:
    """Default settings with every path under tmp_path."""
    return with_paths(load_settings(), tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow suites first (stable otherwise): under ``--all`` (with
    ``--no-loadscope-reorder``, scripts/test.sh) the workers start on the long modules,
    the demo's year and CDNOW among them, and the many quick ones fill in behind, instead
    of a long module starting last and leaving one worker alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
