"""Airflow for the tests: a metadata database of this test process's own (SQLite in a
temporary AIRFLOW_HOME), created once per process, and the project's dags/ folder.

Airflow reads its configuration when first imported, so the environment is set when
this module is imported, before any test imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="rfm-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """The migrated metadata database (``airflow db migrate``, in process)."""
    from airflow.utils.db import initdb

    initdb()
    yield AIRFLOW_HOME


@pytest.fixture
def rfm_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline.toml with every path under ``tmp_path``, named by RFM_CONFIG (which
    the DAG files read when parsed and the tasks when they run)."""
    config = tmp_path / "pipeline.toml"
    config.write_text(
        "[paths]\n"
        + "".join(
            f'{key} = "{tmp_path / key}"\n'
            for key in ("incoming", "lake", "state", "published", "models", "alerts")
        )
        + '[publish]\nkey_secret = "airflow-test-secret"\n'
        # A failing task fails the test at once instead of retrying for minutes.
        + "[schedule]\nretries = 0\n"
    )
    (tmp_path / "incoming").mkdir()
    for key in list(os.environ):
        if key.startswith("RFM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RFM_CONFIG", str(config))
    return config


@pytest.fixture(autouse=True)
def _fresh_secrets_backends() -> Iterator[None]:
    """Airflow memoises its secrets backends per process, so the connections file that
    one test's ``dag.test(conn_file_path=...)`` named would answer the next test's
    lookups in the same worker (with ``--dist loadscope``, every test of a module)."""
    from airflow.sdk.configuration import clear_secrets_backends_cache

    clear_secrets_backends_cache()
    yield
    clear_secrets_backends_cache()
