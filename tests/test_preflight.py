"""A run checks what it will need before it does any work, and OS errors read as what
they are."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline import preflight
from pipeline.alerts import deliver
from pipeline.cli import _duckdb_io_error
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from tests.support import WEB_HEADER, write_csv
from tests.test_cli import GOOD, run

REPO = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "pipeline.toml").write_text(
        '[paths]\nincoming = "in"\nlake = "lake"\nstate = "state"\npublished = "published"\n'
        'models = "models"\nalerts = "alerts"\n' + extra
    )
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in" / "sales_20261122.csv", [WEB_HEADER, GOOD])
    return tmp_path


def test_run_without_the_publish_secret_fails_before_ingesting(tmp_path: Path) -> None:
    project = _project(tmp_path)

    result = run(project, "run", "--date", "2026-11-22")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: publish.key_secret is empty: set it (e.g. RFM_PUBLISH__KEY_SECRET) to publish "
        "pseudonymous customer keys, or set publish.pseudonymize = false"
    )
    assert not (project / "lake").exists(), "it ingested before failing"


def test_a_webhook_without_secret_is_refused_unless_allowed(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        '[publish]\nkey_secret = "s"\n[alerts]\nwebhook_url = "http://127.0.0.1:9/hook"\n',
    )

    result = run(project, "run", "--date", "2026-11-22")

    assert result.returncode == 1
    assert "error: alerts.webhook_url is set but alerts.webhook_secret is empty" in result.stderr
    assert "posted unsigned" in result.stderr and "allow_unsigned_webhook" in result.stderr
    assert not (project / "lake").exists()
    # The delivery itself refuses too (Airflow's deliver_alerts task, `alerts`).
    settings = load_settings(project / "pipeline.toml")
    with pytest.raises(ConfigError, match="webhook_secret is empty"):
        deliver(settings, today=date(2026, 11, 22))

    allowed = project / "pipeline.toml"
    allowed.write_text(allowed.read_text() + "allow_unsigned_webhook = true\n")
    result = run(project, "alerts", "--date", "2026-11-22")
    assert result.returncode == 0, result.stderr


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path, '[alerts]\nwebhook_url = "http://127.0.0.1:9/hook"\n')
    (project / "blocker").write_text("a file where a folder should be")
    env = {"RFM_PATHS__PUBLISHED": str(project / "blocker" / "published")}

    result = _run_with(project, env, "run", "--date", "2026-11-22")

    assert result.returncode == 1
    line = result.stderr.strip()
    assert "publish.key_secret is empty" in line
    assert "webhook_secret is empty" in line
    assert (
        f"cannot create {project / 'blocker' / 'published'} (paths.published): "
        f"{project / 'blocker'} is a file, not a folder" in line
    )
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="rfm-preflight-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_an_unwritable_folder_reads_permission_denied(shared_dir: Path) -> None:
    project = _project(shared_dir, '[publish]\nkey_secret = "s"\n')
    for path in [project, *project.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    readonly = project / "readonly"  # root's: another user may read it, not write to it
    readonly.mkdir(mode=0o755)

    code, stderr = _cli_as_nobody(
        project, {"RFM_PATHS__LAKE": str(readonly)}, ["run", "--date", "2026-11-22"]
    )

    assert code == 1, stderr
    assert f"cannot write to {readonly} (paths.lake): permission denied" in stderr
    assert "unexpected" not in stderr and "IOException" not in stderr


def _cli_as_nobody(project: Path, env: dict[str, str], args: list[str]) -> tuple[int, str]:
    """The CLI's main() in a forked child that became the user nobody (a subprocess could
    not run this checkout's Python as nobody); its exit code and stderr."""
    from pipeline.cli import main

    # What the child imports lazily, imported while this checkout's files are readable.
    datetime.strptime("2026-11-22", "%Y-%m-%d")
    preflight.check(load_settings(project / "pipeline.toml"), ["alerts"])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            os.close(read)
            os.dup2(write, 2)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            os.setgid(65534)
            os.setuid(65534)
            os.chdir(project)
            for key in [key for key in os.environ if key.startswith("RFM_")]:
                del os.environ[key]
            os.environ.update(env)
            main(args)
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        stderr = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), stderr


def test_os_errors_read_as_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as missing:
        (tmp_path / "nowhere" / "x.csv").open()
    assert preflight.describe_os_error(missing.value) == (
        f"cannot find {tmp_path / 'nowhere' / 'x.csv'}: no such file or directory"
    )
    with pytest.raises(OSError) as not_a_dir:
        (tmp_path / "file" / "lake").mkdir()
    assert preflight.describe_os_error(not_a_dir.value) == (
        f"cannot use {tmp_path / 'file' / 'lake'}: not a directory: {tmp_path / 'file' / 'lake'}"
    )
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "file"))
    assert preflight.describe_os_error(denied) == (
        f"cannot write to {tmp_path / 'file'}: permission denied"
    )
    with pytest.raises(duckdb.IOException) as duck:
        duckdb.connect(str(tmp_path / "file" / "x.duckdb"))
    assert _duckdb_io_error(duck.value) == (
        f'cannot open file "{tmp_path / "file" / "x.duckdb"}": not a directory'
    )


def test_an_unforeseen_os_error_is_one_plain_line(tmp_path: Path) -> None:
    project = _project(tmp_path, '[publish]\nkey_secret = "s"\n')
    (project / "state").mkdir()
    (project / "state" / "outbox").write_text("a file where the outbox's folder goes")

    result = run(project, "alerts", "--date", "2026-11-22")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot use {project / 'state' / 'outbox'}: file exists"
    ), result.stderr
    assert "unexpected" not in result.stderr


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RFM_")} | extra


def _run_with(project: Path, extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=project, env=_env(extra), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
