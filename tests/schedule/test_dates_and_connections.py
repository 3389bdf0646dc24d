"""The business date of a run, the export deadline and wait, and settings completed from
Airflow Connections: plain functions, no Airflow needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.alerts.mail import parse_smtp_url
from pipeline.config import ScheduleConfig, Settings
from pipeline.errors import ConfigError, ExportsLateError
from pipeline.schedule.connections import with_connections
from pipeline.schedule.dates import business_date, export_deadline
from pipeline.schedule.tasks import exports_arrived
from tests.support import with_paths

SHOP = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def _settings(tmp_path: Path, **schedule: Any) -> Settings:
    settings = with_paths(Settings(), tmp_path)
    return settings.model_copy(update={"schedule": ScheduleConfig(**schedule)})


def test_the_morning_run_processes_the_day_before_in_the_shops_timezone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # CronTriggerTimetable: logical date = the moment the 06:00 (Shanghai) run fires.
    assert business_date(settings, datetime(2026, 11, 23, 6, tzinfo=SHOP), None) == date(
        2026, 11, 22
    )
    # The same instant in UTC is still the 22nd's evening: the shop's day decides.
    assert business_date(settings, datetime(2026, 11, 22, 22, tzinfo=UTC), None) == date(
        2026, 11, 22
    )
    assert business_date(settings, datetime(2026, 11, 22, 15, 59, tzinfo=UTC), None) == date(
        2026, 11, 21
    )
    same_day = _settings(tmp_path, export_lag_days=0)
    assert business_date(same_day, datetime(2026, 11, 22, 23, tzinfo=SHOP), None) == date(
        2026, 11, 22
    )


def test_a_run_may_name_its_day_and_a_bad_one_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    fired = datetime(2026, 11, 23, 6, tzinfo=SHOP)
    assert business_date(settings, fired, "2026-10-01") == date(2026, 10, 1)
    assert business_date(settings, None, "2026-10-01") == date(2026, 10, 1)
    with pytest.raises(ConfigError, match="'22/11/2026' is not a date"):
        business_date(settings, fired, "22/11/2026")
    with pytest.raises(ConfigError, match="no logical date"):
        business_date(settings, None, None)


def test_the_wait_waits_until_the_deadline_then_fails_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, export_deadline_hours=12)
    day = date(2026, 11, 22)
    deadline = export_deadline(settings, day)
    assert deadline == datetime(2026, 11, 23, 12, tzinfo=SHOP)
    assert exports_arrived(settings, day, datetime(2026, 11, 23, 11, 59, tzinfo=SHOP)) == []
    with pytest.raises(ExportsLateError, match=r"exports of 2026-11-22 are late.*sales_20261122\*"):
        exports_arrived(settings, day, deadline)
    incoming = settings.paths.incoming
    (incoming / ".sales_20261122_web.csv").write_text("in transfer")  # hidden: not yet
    assert exports_arrived(settings, day, datetime(2026, 11, 23, 7, tzinfo=SHOP)) == []
    (incoming / "sales_20261122_web.csv").write_text("order_id\n")
    (incoming / "sales_20261121_web.csv").write_text("order_id\n")  # another day's
    assert exports_arrived(settings, day, deadline) == ["sales_20261122_web.csv"]


@dataclass
class Conn:
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def test_connections_complete_the_settings_with_their_secrets(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(
        update={"alerts": Settings().alerts.model_copy(update={"email_to": ["crm@example.com"]})}
    )
    connections = {
        "rfm_postgres": Conn(
            host="bi-postgres", login="rfm pipeline", password="p@ss:word", schema="rfm"
        ),
        "rfm_webhook": Conn(host="https://hooks.example.com/rfm?token=t", password="sign-me"),
        "rfm_smtp": Conn(
            host="mail.example.com",
            port=587,
            login="crm",
            password="mail-pw",
            extra={"disable_ssl": "true"},
        ),
    }
    done = with_connections(settings, connections.get)
    assert done.publish.postgres_url.get_secret_value() == (
        "postgresql://rfm%20pipeline:p%40ss%3Aword@bi-postgres:5432/rfm"
    )
    assert done.alerts.webhook_url == "https://hooks.example.com/rfm?token=t"
    assert done.alerts.webhook_secret.get_secret_value() == "sign-me"
    smtp = parse_smtp_url(done.alerts.smtp_url.get_secret_value())
    assert (smtp.host, smtp.port, smtp.security) == ("mail.example.com", 587, "starttls")
    # Secrets stay secret when settings are printed or logged.
    assert "p@ss" not in repr(done) and "mail-pw" not in repr(done) and "sign-me" not in repr(done)


def test_missing_or_empty_connections_leave_the_configuration_alone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert with_connections(settings, lambda conn_id: None) == settings
    empty = {"rfm_webhook": Conn(host=""), "rfm_smtp": Conn(host=None)}
    assert with_connections(settings, empty.get) == settings
    plain = with_connections(
        settings.model_copy(
            update={"alerts": Settings().alerts.model_copy(update={"email_to": ["a@b.c"]})}
        ),
        {
            "rfm_smtp": Conn(
                host="localhost", port=2525, extra={"disable_ssl": True, "disable_tls": True}
            )
        }.get,
    )
    assert plain.alerts.smtp_url.get_secret_value() == "smtp://localhost:2525"
    webhook = with_connections(
        settings,
        {
            "rfm_webhook": Conn(
                host="alerts.internal", port=8443, schema="https", extra={"endpoint": "/v1/rfm"}
            )
        }.get,
    )
    assert webhook.alerts.webhook_url == "https://alerts.internal:8443/v1/rfm"
