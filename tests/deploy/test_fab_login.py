"""The compose deployment's login, for real: airflow-init's own script (from
docker-compose.yml) run twice against a scratch metadata database, then Airflow's
api-server with the compose services' auth settings, logged into through its REST API.

Only what needs a Docker engine differs: the metadata database is SQLite in a temporary
AIRFLOW_HOME instead of the airflow-postgres service.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    REPO,
    environment,
    interpolate_tree,
    load_compose,
    read_env_file,
)

pytestmark = pytest.mark.slow

# The compose settings the login depends on; the rest (PostgreSQL URLs, connections,
# executor) needs the compose network.
AUTH_SETTINGS = ("AIRFLOW__CORE__AUTH_MANAGER", "AIRFLOW__API__SECRET_KEY")
JWT_SECRET = "AIRFLOW__API_AUTH__JWT_SECRET"


def _filled_env(**overrides: str) -> dict[str, str]:
    """.env.example with every change-me replaced, as an operator's .env would be."""
    example = read_env_file(REPO / ".env.example")
    filled = {k: (f"s3cret-{k.lower()}" if v == "change-me" else v) for k, v in example.items()}
    return {**filled, **overrides}


def _service(name: str, dotenv: dict[str, str]) -> dict[str, Any]:
    service: dict[str, Any] = interpolate_tree(load_compose(), dotenv)["services"][name]
    return service


def _airflow_env(home: Path, service: dict[str, Any]) -> dict[str, str]:
    env = environment(service)
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **{key: env[key] for key in (*AUTH_SETTINGS, JWT_SECRET)},
        **{key: value for key, value in env.items() if key.startswith("_AIRFLOW_WWW_USER_")},
    }


def _run_init(home: Path, dotenv: dict[str, str]) -> None:
    service = _service("airflow-init", dotenv)
    assert service["entrypoint"] == ["/bin/bash", "-c"]
    script = service["command"][0].replace("$$", "$")
    done = subprocess.run(
        ["bash", "-c", script],
        env=_airflow_env(home, service),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _request(url: str, body: dict[str, str] | None = None, token: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except urllib.error.URLError:
        return 0, None  # not listening (yet)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The api-server of a home initialised twice: the second `up` changed the password."""
    home = tmp_path_factory.mktemp("airflow-fab")
    (home / "dags").mkdir()
    _run_init(home, _filled_env(_AIRFLOW_WWW_USER_PASSWORD="first-password"))
    dotenv = _filled_env(_AIRFLOW_WWW_USER_PASSWORD="second-password")
    _run_init(home, dotenv)
    port = _free_port()
    server = subprocess.Popen(
        ["airflow", "api-server", "--port", str(port)],
        env=_airflow_env(home, _service("airflow-apiserver", dotenv)),
        stdout=(home / "api-server.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _request(f"{base}/api/v2/version")[0] != 200:
            assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the api-server did not start in 120 s"
            time.sleep(1)
        yield base, dotenv
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_api_refuses_anonymous_callers(api_server: tuple[str, dict[str, str]]) -> None:
    base, _ = api_server
    assert _request(f"{base}/api/v2/dags")[0] == 401


def test_the_admin_logs_in_with_the_password_of_the_latest_up(
    api_server: tuple[str, dict[str, str]],
) -> None:
    base, dotenv = api_server
    user = dotenv["_AIRFLOW_WWW_USER_USERNAME"]
    refused, _ = _request(f"{base}/auth/token", {"username": user, "password": "first-password"})
    assert refused == 401, "the password of an earlier `up` still works"
    status, body = _request(
        f"{base}/auth/token", {"username": user, "password": dotenv["_AIRFLOW_WWW_USER_PASSWORD"]}
    )
    assert status in (200, 201), status
    token = body["access_token"]
    status, dags = _request(f"{base}/api/v2/dags", token=token)
    assert status == 200 and "dags" in dags
    # An admin: it may read the users and roles the FAB auth manager keeps.
    status, roles = _request(f"{base}/auth/fab/v1/roles", token=token)
    assert status == 200
    assert "Admin" in {role["name"] for role in roles["roles"]}
