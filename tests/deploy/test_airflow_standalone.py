"""scripts/airflow-standalone.sh as docs/deploy.md tells a newcomer to use it: it starts,
unpauses the DAGs, runs a triggered rfm_daily to success with the pipeline's own log
lines in the task logs, and stops on Ctrl-C (SIGINT) leaving no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.support import REPO

START_TIMEOUT = 300  # about 30 s on a 2-core machine, a minute with the first migration
RUN_TIMEOUT = 400
STOP_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str, token: str | None = None) -> object:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _health(port: int) -> dict[str, dict[str, str | None]] | None:
    try:
        return _get(port, "/api/v2/monitor/health")  # type: ignore[return-value]
    except OSError:
        return None


def _token(port: int, password_file: Path) -> str:
    password = json.loads(password_file.read_text())["admin"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def _sigint_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _session_processes(session: int) -> list[str]:
    """The processes of a session: the script's, and whatever it started (Airflow sets
    its processes' titles, so neither their command line nor environment is reliable)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) == session:
                found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()!r}")
        except OSError:
            continue
    return found


def _trigger_command() -> str:
    """The trigger command of docs/deploy.md's standalone section, as printed."""
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("## Without Docker: airflow standalone", 1)[1]
    [line] = [
        line
        for line in section.splitlines()
        if line.startswith("bash scripts/airflow.sh dags trigger")
    ]
    return line


def _wait_for(output: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if text in output.read_text(errors="replace"):
            return
        time.sleep(1)
    tail = output.read_text(errors="replace")[-4000:]
    raise AssertionError(f"{text!r} not in the output (exit {process.poll()}):\n{tail}")


@pytest.mark.slow
def test_standalone_runs_a_triggered_day_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # The demo's data, a week ending on the day the docs trigger.
    demo = tmp_path / "demo"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--dir", str(demo), "--days", "7",
         "--start", "2025-12-25", "--customers", "300"],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    airflow_home = tmp_path / "airflow"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "RFM_"))
    }
    env |= {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__API__PORT": str(port),
        # The scheduler's log server; its default 8793 may be taken by another Airflow.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "RFM_SKIP_BOOTSTRAP": "1",  # the test run's .venv is already set up
        "RFM_CONFIG": str(demo / "pipeline.toml"),
        # Unpausing rfm_daily creates a run for the latest 06:00, whose exports the demo
        # does not have: with no grace it fails at once instead of waiting until noon
        # (and holding the triggered run behind max_active_runs=1) whatever the clock.
        "RFM_SCHEDULE__EXPORT_DEADLINE_HOURS": "0",
        # A failing task fails the test at once instead of retrying for minutes.
        "RFM_SCHEDULE__RETRIES": "0",
    }
    output = tmp_path / "standalone.log"
    log = output.open("w")
    process = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "airflow-standalone.sh")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, as a terminal's job
        # and, as in a terminal, Ctrl-C not ignored: a job started in the background by a
        # non-interactive shell (a CI runner's) inherits SIGINT ignored, and bash cannot
        # trap a signal ignored when it started.
        preexec_fn=_sigint_by_default,
    )
    try:
        _wait_for(output, "unpaused rfm_daily", process, START_TIMEOUT)
        text = output.read_text()
        assert f"http://localhost:{port}" in text
        slots = max(2, os.cpu_count() or 2)  # not Airflow's 32 idle workers
        assert f"Task slots:     {slots} (AIRFLOW__CORE__PARALLELISM)" in text
        deadline = time.monotonic() + START_TIMEOUT
        while (health := _health(port)) is None and time.monotonic() < deadline:
            time.sleep(1)
        assert health and health["metadatabase"]["status"] == "healthy", health
        # From another shell, as the docs say (the same AIRFLOW_HOME: here the test's).
        triggered = subprocess.run(
            ["bash", "-c", _trigger_command() + " -o json"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        run_id = json.loads(triggered.stdout[triggered.stdout.index("[{") :])[0]["dag_run_id"]
        token = _token(port, airflow_home / "simple_auth_manager_passwords.json.generated")
        deadline = time.monotonic() + RUN_TIMEOUT
        state = None
        while time.monotonic() < deadline:
            run = _get(port, f"/api/v2/dags/rfm_daily/dagRuns/{run_id}", token)
            state = run["state"]  # type: ignore[index]
            if state in ("success", "failed"):
                break
            time.sleep(3)
        logs = airflow_home / "logs" / "dag_id=rfm_daily" / f"run_id={run_id}"
        task_log = {
            task.name.removeprefix("task_id="): "\n".join(
                path.read_text(errors="replace") for path in task.glob("*.log")
            )
            for task in logs.glob("task_id=*")
        }
        assert state == "success", (state, {k: v[-2000:] for k, v in task_log.items()})
        # The pipeline's own lines: file outcomes, quarantine, contracts, step timings.
        assert re.search(
            r"ingest 2025-12-31: file sales_20251231\S* \(\S+\): \d+ in", task_log["ingest"]
        )
        assert "ingest 2025-12-31: 3 files" in task_log["ingest"]
        assert "every row accounted for: yes" in task_log["ingest"]
        assert re.search(r"score 2025-12-31: \d+ customers", task_log["score"])
        assert "lifecycle 2025-12-31: " in task_log["lifecycle"]
        assert re.search(
            r"publish 2025-12-31: publish #\d+, \d+ contract checks passed", task_log["publish"]
        )
        assert re.search(r"publish 2025-12-31: done in [\d.]+ s", task_log["publish"])
        assert "alerts 2025-12-31: " in task_log["deliver_alerts"]
        # The run record the report's timings block reads: this run's steps.
        record = json.loads((demo / "published/reports/runs/2025-12-31.json").read_text())
        assert [step for step, _ in record["seconds"]] == [
            "ingest", "customer days", "score", "lifecycle", "publish"
        ]  # fmt: skip
        assert len(_session_processes(process.pid)) > 5, "the test does not see Airflow"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the job
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            left = _session_processes(process.pid)
            raise AssertionError(
                f"still running {STOP_TIMEOUT} s after Ctrl-C: {left}\n"
                + output.read_text(errors="replace")[-4000:]
            ) from None
        finally:
            left = _session_processes(process.pid)
            for line in left:  # never leave them to the next test
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            log.close()
    stopped = output.read_text(errors="replace")
    assert process.returncode == 130, stopped[-3000:]
    assert left == [], left
    assert "killing what did not stop in time" not in stopped, stopped[-3000:]
