"""The PostgreSQL fixtures of tests/postgres.py give a real, empty database per test."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from psycopg import sql

from tests.postgres import make_role_name, url_for_database


def test_copy_round_trip(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.info.server_version >= 150000
        conn.execute(
            "CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, amount numeric(10, 2))"
        )
        with conn.cursor() as cur:
            with cur.copy("COPY t FROM STDIN (FORMAT csv)") as copy:
                copy.write('1,alice,9.50\n2,"bob, jr.",0\n3,张三,12.25\n'.encode())
            rows = cur.execute("SELECT id, name, amount FROM t ORDER BY id").fetchall()
    assert rows == [
        (1, "alice", Decimal("9.50")),
        (2, "bob, jr.", Decimal("0.00")),
        (3, "张三", Decimal("12.25")),
    ]


def test_role_owning_objects_is_dropped_after_the_test(
    postgres_url: str, postgres_roles: list[str]
) -> None:
    role = make_role_name("rfm_writer")
    postgres_roles.append(role)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'secret'").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        dbname = conn.info.dbname
    # Also a privilege outside the test database, which outlives it.
    with psycopg.connect(url_for_database(postgres_url, "postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE postgres TO {}").format(sql.Identifier(role))
        )
    writer_url = postgres_url.replace("rfm_admin:rfm_admin@", f"{role}:secret@")
    with psycopg.connect(writer_url) as conn:
        assert conn.info.dbname == dbname
        conn.execute("CREATE TABLE owned (x integer)")
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'"
        ).fetchone()
    assert owner == (role,)
