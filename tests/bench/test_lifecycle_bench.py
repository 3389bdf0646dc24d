"""The lifecycle benchmark still runs end to end (on a tiny history: figures unused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import printed_table, run_module

pytestmark = pytest.mark.slow  # runs the benchmark command end to end


def test_bench_runs_the_daily_lifecycle_step_and_its_rerun(tmp_path: Path) -> None:
    result = run_module(
        "bench.lifecycle_bench",
        "--lines",
        "20000",
        "--customers",
        "500",
        "--days",
        "20",
        "--workdir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prepared 2025-01-20: score 2025-01-19 --full" in result.stdout, result.stdout
    table = printed_table(result.stdout)
    assert [(row["step"], row["as of"], row["history days"]) for row in table] == [
        ("daily step", "2025-01-20", "20"),
        ("re-run", "2025-01-20", "20"),
        ("risk model fit", "2025-01-19", "19"),  # as of D-1, whose cut-offs are scored
    ], table
    first, again, refit = table
    # 20 days are too short to backtest the bench's 28-day horizon: the fallback.
    assert "source rhythm_fallback" in refit["phases (s)"]
    # The recent activity of D-1 and the days entering its window: the date and the late
    # span before it (the days leaving it are before the history).
    assert first["customer_days read"] == "3"
    assert 0 < int(first["customers staged"].replace(",", "")) <= 500
    assert first["customers staged"] == again["customers staged"]
    assert first["transitions"] == again["transitions"] and first["alerts"] == again["alerts"]
    for row in (first, again):
        assert 0 < float(row["in-step s"]) < float(row["wall s"])
        assert float(row["peak RSS MB"].replace(",", "")) > 0 and float(row["CPU s"]) > 0
        assert "customer_lifecycle" in row["phases (s)"] and "derived" in row["phases (s)"]
        assert "recent_activity" in row["phases (s)"]
    assert (first["same bytes"], again["same bytes"]) == ("", "yes")
    assert "machine:" in result.stdout
