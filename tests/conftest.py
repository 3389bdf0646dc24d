"""Shared fixtures: a pipeline configured inside a temporary folder."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from xdist.scheduler import LoadScopeScheduling

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


# Packages whose modules share a session fixture that builds a history (their conftest's
# ``history``): their modules run on one worker, so the history is built once per test
# run instead of once per worker that happens to get one of them.
SHARED_HISTORY_PACKAGES = ("tests/publish/", "tests/report/")


def _unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or its package when that is one of
    :data:`SHARED_HISTORY_PACKAGES`."""
    module = nodeid.split("::", 1)[0]
    return next((p for p in SHARED_HISTORY_PACKAGES if module.startswith(p)), module)


class _SharedHistoryScheduling(LoadScopeScheduling):
    """xdist's ``--dist loadscope`` (a module's tests share a worker), with the modules of
    each package in :data:`SHARED_HISTORY_PACKAGES` as one unit."""

    def _split_scope(self, nodeid: str) -> str:
        return _unit(nodeid)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest -p no:xdist runs too
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getoption("dist") == "loadscope":
        return _SharedHistoryScheduling(config, log)  # type: ignore[arg-type]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units of work first, so that no worker is left alone at the end with a
    long one: the slow suites in collection order (the demo's year and CDNOW start in
    the first few minutes under ``--all``), then the packages building a shared
    history, then the modules with the most tests (xdist's own order). scripts/test.sh
    passes ``--no-loadscope-reorder``, so xdist keeps this order."""
    sizes = Counter(_unit(item.nodeid) for item in items)

    def longest_first(item: pytest.Item) -> tuple[bool, bool, int]:
        if item.get_closest_marker("slow") is not None:
            return (False, False, 0)
        unit = _unit(item.nodeid)
        return (True, unit not in SHARED_HISTORY_PACKAGES, -sizes[unit])

    items.sort(key=longest_first)
