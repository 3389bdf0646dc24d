"""The ingest benchmark still runs and checks its ledger (on a tiny file: figures unused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_bench_runs_and_reports_a_balanced_ledger(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest_bench",
            "--lines",
            "20000",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| 20,000 |" in result.stdout
    assert "(balanced)" in result.stdout
    assert "lines/s" in result.stdout and "peak RSS MB" in result.stdout
