"""The scoring benchmark still runs end to end (on a tiny history: figures unused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_module

pytestmark = pytest.mark.slow  # runs the benchmark command end to end


def test_bench_runs_the_daily_step_the_full_recompute_and_the_floor(tmp_path: Path) -> None:
    result = run_module(
        "bench.scoring_bench",
        "--lines",
        "20000",
        "--customers",
        "500",
        "--days",
        "30",
        "--depths",
        "30",
        "--workdir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert any(row.startswith("| full recompute | 2025-01-29 | 29 |") for row in rows), rows
    assert any(row.startswith("| daily step (incremental) | 2025-01-30 | 30 |") for row in rows)
    assert any(row.startswith("| bare scan (floor) |") for row in rows)
    assert "customer_state" in result.stdout and "peak RSS MB" in result.stdout
