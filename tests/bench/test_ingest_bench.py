"""The ingest benchmark still runs and checks its ledger (on a tiny file: figures unused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_module

pytestmark = pytest.mark.slow  # runs the benchmark command end to end


def test_bench_runs_and_reports_a_balanced_ledger(tmp_path: Path) -> None:
    result = run_module("bench.ingest_bench", "--lines", "20000", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| 20,000 |" in result.stdout
    assert "(balanced)" in result.stdout
    assert "lines/s" in result.stdout and "peak RSS MB" in result.stdout
