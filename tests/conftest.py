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
