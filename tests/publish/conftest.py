"""A demo history with every step run, built once per test process and copied per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.publish.support import build_history


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_history(tmp_path_factory.mktemp("history"))
