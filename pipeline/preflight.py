"""Checks of what a run will need later, made before it does any work: the secrets and
targets of publish and alerts, and folders it can write to. A run that would fail at
publish after an hour of ingest and scoring fails in its first second instead, with
every problem named at once.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import AlertsConfig, Settings
from pipeline.errors import ConfigError

# The steps of a run, and what each writes under paths (besides paths.state).
STEPS = ("ingest", "score", "lifecycle", "publish", "alerts", "report")
_WRITES = {
    "ingest": ("lake",),
    "score": ("lake", "models"),
    "lifecycle": ("lake", "alerts"),
    "publish": ("published",),
    "alerts": (),
    "report": ("published",),
}


def check(settings: Settings, steps: Iterable[str] = STEPS) -> None:
    """Raise one ConfigError naming every problem the ``steps`` would meet."""
    steps = set(steps)
    problems: list[str] = []
    if "publish" in steps:
        publish = settings.publish
        if publish.pseudonymize and not publish.key_secret.get_secret_value():
            problems.append(
                "publish.key_secret is empty: set it (e.g. RFM_PUBLISH__KEY_SECRET) to publish "
                "pseudonymous customer keys, or set publish.pseudonymize = false"
            )
    if "alerts" in steps:
        problems.extend(alert_problems(settings.alerts))
    keys = {"state"} | {key for step in steps for key in _WRITES.get(step, ())}
    for key in sorted(keys):
        problem = folder_problem(getattr(settings.paths, key), f"paths.{key}")
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))


def alert_problems(alerts: AlertsConfig) -> list[str]:
    """What would stop, or should stop, the alert channels."""
    problems = []
    if (
        alerts.webhook_url
        and not alerts.webhook_secret.get_secret_value()
        and not alerts.allow_unsigned_webhook
    ):
        problems.append(
            "alerts.webhook_url is set but alerts.webhook_secret is empty: the alerts, with "
            "customer ids, would be posted unsigned; set RFM_ALERTS__WEBHOOK_SECRET (or the "
            "rfm_webhook connection's password), or alerts.allow_unsigned_webhook = true"
        )
    if alerts.webhook_secret.get_secret_value():
        from pipeline.alerts.webhook import signing_key

        try:
            signing_key(alerts.webhook_secret.get_secret_value())
        except ValueError as error:
            problems.append(str(error))
    if alerts.smtp_url.get_secret_value():
        from pipeline.alerts.mail import parse_smtp_url

        try:
            parse_smtp_url(alerts.smtp_url.get_secret_value())
        except ConfigError as error:
            problems.append(str(error))
    return problems


def folder_problem(folder: Path, key: str) -> str | None:
    """Why ``folder`` (the setting ``key``) cannot be created or written to; None if it
    can. Creates nothing: a folder that does not exist yet is judged by its nearest
    existing parent."""
    existing = next((path for path in (folder, *folder.parents) if path.exists()), None)
    if existing is None:  # pragma: no cover - "/" exists
        return f"cannot create {folder} ({key})"
    if not existing.is_dir():
        return f"cannot create {folder} ({key}): {existing} is a file, not a folder"
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"cannot create {folder} ({key}): cannot write to {existing}: permission denied"
        return None
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".rfm-write-check-"):
            pass
    except OSError as error:
        return f"cannot write to {folder} ({key}): {os_error(error)}"
    return None


def os_error(error: OSError) -> str:
    """An OS error as a person says it: "permission denied", "not a directory: /a/b"."""
    reason = (error.strerror or os.strerror(error.errno or 0) or str(error)).lower()
    if error.errno == errno.ENOTDIR and error.filename:
        return f"{reason}: {error.filename}"
    return reason


def describe_os_error(error: OSError) -> str:
    """One line for an OS error the pipeline did not foresee: what, where, why."""
    if error.filename is None:
        return os_error(error)
    where = str(error.filename)
    verb = {
        errno.EACCES: "cannot write to",
        errno.EPERM: "cannot write to",
        errno.EROFS: "cannot write to",
        errno.ENOSPC: "cannot write to",
        errno.ENOENT: "cannot find",
    }.get(error.errno or 0, "cannot use")
    if error.errno in (errno.EACCES, errno.EPERM) and Path(where).exists():
        verb = "cannot write to" if os.access(where, os.R_OK) else "cannot read"
    return f"{verb} {where}: {os_error(error)}"
