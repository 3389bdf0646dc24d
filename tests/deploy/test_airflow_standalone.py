"""scripts/airflow-standalone.sh: Airflow without Docker starts and answers on its port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.support import REPO

START_TIMEOUT = 240  # about 20 s on a 2-core machine, a minute with the first migration
STOP_TIMEOUT = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(port: int) -> dict[str, dict[str, str | None]] | None:
    try:
        url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_standalone_starts_and_serves_the_api(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "RFM_"))
    }
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__API__PORT": str(port),
        # The scheduler's log server; its default 8793 may be taken by another Airflow.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "RFM_SKIP_BOOTSTRAP": "1",  # the test run's .venv is already set up
    }
    log = (tmp_path / "standalone.log").open("w")
    process = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "airflow-standalone.sh")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole below
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            health = _health(port)
            if health and health["metadatabase"]["status"] == "healthy":
                break
            time.sleep(1)
        output = (tmp_path / "standalone.log").read_text(errors="replace")
        assert health, f"no answer on port {port} (exit {process.poll()}):\n{output[-4000:]}"
        assert health["metadatabase"]["status"] == "healthy", health
        assert f"http://localhost:{port}" in output
        password_file = tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated"
        assert str(password_file) in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=5) as r:
            assert json.loads(r.read())["version"] == "3.3.2"
    finally:
        pgid = process.pid
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(pgid) and time.monotonic() < deadline:
            process.poll()  # reap the leader, or the group stays alive as a zombie
            time.sleep(0.5)
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        log.close()
    assert password_file.is_file()
