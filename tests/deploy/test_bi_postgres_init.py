"""scripts/bi-postgres-init.sh, bi-postgres's first-start script, on a real server."""

from __future__ import annotations

import glob
import os
import subprocess
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.deploy.support import REPO
from tests.postgres import make_role_name


def _psql_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    assert found, "no psql: scripts/postgres.sh installs PostgreSQL"
    return os.path.dirname(found[-1])


def _login_url(admin_url: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    return parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}").geturl()


def test_init_creates_the_publisher_the_reader_role_and_a_bi_login(
    postgres_url: str, postgres_roles: list[str]
) -> None:
    admin = urlsplit(postgres_url)
    database = admin.path.lstrip("/")
    publisher, reader, bi_user = (make_role_name(p) for p in ("pub", "reader", "bi"))
    postgres_roles.extend([bi_user, publisher, reader])
    env = os.environ | {
        "PATH": f"{_psql_bindir()}:{os.environ['PATH']}",
        # What the postgres image's entrypoint gives its init scripts, over TCP here.
        "POSTGRES_USER": str(admin.username),
        "POSTGRES_DB": database,
        "PGHOST": str(admin.hostname),
        "PGPORT": str(admin.port),
        "PGPASSWORD": str(admin.password),
        "BI_PUBLISHER_USER": publisher,
        "BI_PUBLISHER_PASSWORD": "publisher-pw",
        "BI_READER_ROLE": reader,
        "BI_READER_USER": bi_user,
        "BI_READER_PASSWORD": "bi-pw",
    }
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "bi-postgres-init.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    # The publisher does what the pipeline's publish does: schemas, a view, the grants.
    with psycopg.connect(_login_url(postgres_url, publisher, "publisher-pw")) as conn:
        conn.execute("create schema rfm")
        conn.execute("create schema rfm_data")
        conn.execute("create table rfm_data.t as select 1 as x")
        conn.execute("create view rfm.v as select x from rfm_data.t")
        conn.execute(f'grant usage on schema rfm to "{reader}"')
        conn.execute(f'grant select on rfm.v to "{reader}"')
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [reader]).fetchone()
        assert exists  # so the pipeline does not try to create it
    # The BI login reads the view, unqualified, and nothing behind it.
    with psycopg.connect(_login_url(postgres_url, bi_user, "bi-pw"), autocommit=True) as conn:
        assert conn.execute("select x from v").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select x from rfm_data.t")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create schema mine")
