"""The backfill benchmark still runs, in both modes, and they write the same lake (on a
few days of a small demo: figures unused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import printed_table, run_module

pytestmark = pytest.mark.slow  # runs the benchmark command end to end


def test_bench_runs_both_backfills_and_they_write_the_same_lake(tmp_path: Path) -> None:
    args = ("--days", "10", "--customers", "150", "--no-cdnow", "--sequential")
    result = run_module("bench.backfill_bench", *args, "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = printed_table(result.stdout)
    assert [(row["backfill"], row["steps"], row["days"]) for row in rows] == [
        ("demo", "overlap", "10"),
        ("demo", "sequential", "10"),
    ]
    assert all(float(row["wall s"]) > 0 and row["met"] == "-" for row in rows)
    assert "wrote the same lake" in result.stdout
