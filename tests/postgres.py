"""PostgreSQL fixtures: a real server from scripts/postgres.sh, a fresh database per test.

Enabled by ``pytest_plugins = ["tests.postgres"]`` in tests/conftest.py (or
``pytest -p tests.postgres``). The server outlives the session so later runs start fast;
``bash scripts/postgres.sh stop`` stops it.
"""

from __future__ import annotations

import fcntl
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "postgres.sh"
# Not the lock the script takes itself: flock locks on two opens of one file would deadlock.
LOCK = REPO / ".cache" / "postgres-pytest.lock"
# A first run on a fresh machine installs PostgreSQL with apt-get.
START_TIMEOUT = 900


def make_role_name(prefix: str = "rfm_role") -> str:
    """A role name no other test uses (roles are cluster-wide); add it to ``postgres_roles``."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def url_for_database(url: str, dbname: str) -> str:
    """``url`` with its database replaced by ``dbname``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin (superuser) URL of the running test server, started if need be.

    Fails, never skips, when the server cannot be started: CI must run these tests.
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers each run this fixture: one start at a time.
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            result = subprocess.run(
                ["bash", str(SCRIPT), "start"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"scripts/postgres.sh start timed out:\n{exc.stderr!r}", pytrace=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("postgresql://"):
        pytest.fail(
            f"scripts/postgres.sh start failed (exit {result.returncode}):\n"
            f"{result.stderr}{result.stdout}",
            pytrace=False,
        )
    return lines[-1]


@pytest.fixture
def postgres_roles(postgres_server: str) -> Iterator[list[str]]:
    """Names of roles the test creates (see ``make_role_name``), dropped afterwards.

    ``postgres_url`` depends on this fixture, so the test database, and with it everything
    the roles own there, is dropped first. ``DROP OWNED`` then clears what they own or were
    granted in the admin database. A role that still cannot be dropped (say it owns
    another database) is left behind with a warning: its name is unique, so it harms no
    other test.
    """
    roles: list[str] = []
    yield roles
    if not roles:
        return
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for role in roles:
            name = sql.Identifier(role)
            try:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))
            except psycopg.Error as exc:
                warnings.warn(f"could not drop test role {role}: {exc}", stacklevel=1)


@pytest.fixture
def postgres_url(postgres_server: str, postgres_roles: list[str]) -> Iterator[str]:
    """The URL (as the superuser) of a new, empty database, dropped after the test."""
    dbname = f"rfm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    yield url_for_database(postgres_server, dbname)
    # FORCE: connections the test left open are terminated, not waited for.
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
