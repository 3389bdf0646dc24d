"""Settings completed from Airflow Connections: the secrets live in Airflow (or its
secrets backend), never in the DAG files, logs, XCom or asset URIs.

- ``rfm_postgres`` sets publish.postgres_url: login, password, host, port, and the
  database in "schema".
- ``rfm_webhook`` sets alerts.webhook_url (the host, with its scheme, or
  schema://host:port; the path in extra "endpoint") and alerts.webhook_secret (the
  password).
- ``rfm_smtp`` sets alerts.smtp_url: login, password, host, port, and the extras of
  Airflow's SMTP connection: TLS from the start (smtps) unless "disable_ssl" is true,
  else STARTTLS unless "disable_tls" is true, else plain.

A connection that is not defined, or has no host, leaves the configuration as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from pipeline.config import Settings

POSTGRES = "rfm_postgres"
WEBHOOK = "rfm_webhook"
SMTP = "rfm_smtp"
CONNECTION_IDS = (POSTGRES, WEBHOOK, SMTP)


class ConnectionLike(Protocol):
    """What is read of an Airflow Connection."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


Lookup = Callable[[str], ConnectionLike | None]


def with_connections(settings: Settings, lookup: Lookup) -> Settings:
    """``settings`` with what the defined connections say."""
    publish: dict[str, Any] = {}
    alerts: dict[str, Any] = {}
    if postgres := _defined(lookup, POSTGRES):
        publish["postgres_url"] = SecretStr(_postgres_url(postgres))
    if webhook := _defined(lookup, WEBHOOK):
        alerts["webhook_url"] = _webhook_url(webhook)
        if webhook.password:
            alerts["webhook_secret"] = SecretStr(webhook.password)
    if smtp := _defined(lookup, SMTP):
        alerts["smtp_url"] = SecretStr(_smtp_url(smtp))
    update: dict[str, Any] = {}
    if publish:
        update["publish"] = settings.publish.model_validate(settings.publish.model_dump() | publish)
    if alerts:
        update["alerts"] = settings.alerts.model_validate(settings.alerts.model_dump() | alerts)
    return settings.model_copy(update=update) if update else settings


def _defined(lookup: Lookup, conn_id: str) -> ConnectionLike | None:
    connection = lookup(conn_id)
    return connection if connection is not None and connection.host else None


def _userinfo(connection: ConnectionLike) -> str:
    if not connection.login:
        return ""
    password = f":{quote(connection.password, safe='')}" if connection.password else ""
    return f"{quote(connection.login, safe='')}{password}@"


def _hostport(connection: ConnectionLike, default_port: int | None = None) -> str:
    host = connection.host or "localhost"
    port = connection.port or default_port
    return f"{host}:{port}" if port else host


def _postgres_url(connection: ConnectionLike) -> str:
    database = quote(connection.schema or "postgres", safe="")
    return f"postgresql://{_userinfo(connection)}{_hostport(connection, 5432)}/{database}"


def _webhook_url(connection: ConnectionLike) -> str:
    host = connection.host or ""
    if "://" in host:
        base = host.rstrip("/")
        if connection.port:
            base = f"{base}:{connection.port}"
    else:
        base = f"{connection.schema or 'https'}://{_hostport(connection)}"
    endpoint = str(connection.extra_dejson.get("endpoint", "")).lstrip("/")
    return f"{base}/{endpoint}" if endpoint else base


def _smtp_url(connection: ConnectionLike) -> str:
    extra = connection.extra_dejson
    ssl = not _true(extra.get("disable_ssl", False))
    starttls = not ssl and not _true(extra.get("disable_tls", False))
    scheme = "smtps" if ssl else "smtp"
    query = f"?{urlencode({'starttls': 'true'})}" if starttls else ""
    return f"{scheme}://{_userinfo(connection)}{_hostport(connection)}{query}"


def _true(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
