"""The publish benchmark still runs end to end (on a tiny history: figures unused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import printed_table, run_module

pytestmark = pytest.mark.slow  # runs the benchmark command end to end


def test_bench_runs_the_first_and_daily_publish_and_its_rerun(tmp_path: Path) -> None:
    result = run_module(
        "bench.publish_bench",
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
    table = printed_table(result.stdout)
    assert [(row["step"], row["as of"]) for row in table] == [
        ("first publish", "2025-01-19"),
        ("daily publish", "2025-01-20"),
        ("re-run", "2025-01-20"),
    ], table
    _, daily, again = table
    assert 0 < int(daily["customers"].replace(",", "")) <= 500
    assert (
        daily["customers"] == again["customers"]
        and daily["rows published"] == again["rows published"]
    )
    for row in table:
        assert 0 < float(row["in-step s"]) < float(row["wall s"])
        assert row["PostgreSQL"] == "no"
        assert "write" in row["phases (s)"] and "serving" in row["phases (s)"]
    assert again["same bytes"] == "yes"
    assert "machine:" in result.stdout
