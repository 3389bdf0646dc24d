"""Shared fixtures: a pipeline configured inside a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from tests.support import with_paths


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Default settings, every path under tmp_path, no config file or env override."""
    for name in list(os.environ):
        if name.startswith("RFM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return with_paths(load_settings(), tmp_path)
