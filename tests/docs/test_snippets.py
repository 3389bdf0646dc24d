"""Every shell and Python snippet of README.md and docs/*.md runs as printed, against the
demo's data (a short demo, made once per session).

A fenced block tagged ``bash``, ``sh``, ``shell`` or ``python`` is run, in a copy of a
playground that looks like a checkout after ``scripts/demo.sh``: the repository's files
(linked), ``data/demo`` (the demo, the week ending 2025-12-31), and ``data/incoming``
(exports of 2026-11-20 to 2026-11-22, "your exports" of the README's commands). A block
that cannot run here says so in its info string, with the reason and where it is
tested instead:

    ```bash skip-docs-test: starts a server and waits for Ctrl-C (test_airflow_standalone.py)

A block of many commands that takes a minute says so (``slow-docs-test: why``): it runs
with the slow suites (``scripts/test.sh --all``, which CI runs).

Shell blocks run with ``bash -euo pipefail``: every command must succeed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
SKIP = "skip-docs-test:"
SLOW = "slow-docs-test:"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# What a checkout holds that the snippets use (data/ is made below).
LINKED = (".venv", "scripts", "pipeline", "sql", "dags", "bench", "docs", "tests",
          "pipeline.example.toml", ".env.example", "pyproject.toml", "uv.lock", "README.md",
          "docker-compose.yml", "Dockerfile")  # fmt: skip
TIMEOUT = 300


@dataclass(frozen=True)
class Snippet:
    file: Path
    line: int
    language: str
    info: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        _, marker, reason = self.info.partition(SKIP)
        return reason.strip() if marker else None

    @property
    def slow(self) -> bool:
        return SLOW in self.info


def snippets() -> list[Snippet]:
    found = []
    for file in DOCS:
        text = file.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            info = match.group(1).strip()
            language = info.split(" ", 1)[0]
            if language in RUN:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Snippet(file, line, RUN[language], info, match.group(2)))
    return found


SNIPPETS = snippets()


def test_the_snippets_are_found_and_every_skip_gives_its_reason() -> None:
    files = {snippet.file.name for snippet in SNIPPETS}
    assert {"README.md", "airflow.md", "bi.md", "deploy.md", "report.md"} <= files
    assert len(SNIPPETS) >= 20
    for snippet in SNIPPETS:
        reason = snippet.skip_reason
        assert reason is None or len(reason) > 15, f"{snippet.id}: say why it is skipped"
    runnable = [snippet for snippet in SNIPPETS if snippet.skip_reason is None]
    assert len(runnable) >= 10


@pytest.fixture(scope="session")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout after the demo, with a week of demo and three days of "your" exports."""
    from pipeline.demo.generate import generate

    root = tmp_path_factory.mktemp("playground")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--dir", str(root / "data" / "demo"),
         "--days", "7", "--start", "2025-12-25", "--customers", "300"],
        cwd=root, env=_env(root), check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    exports = tmp_path_factory.mktemp("exports")
    generate(exports, start=date(2026, 11, 20), days=3, customers=200, seed=7)
    shutil.copytree(exports / "incoming", root / "data" / "incoming")
    return root


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RFM_", "AIRFLOW"))}
    return env | {
        "AIRFLOW_HOME": str(root / ".cache" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{root / '.venv' / 'bin'}:{env.get('PATH', '')}",
    }


@pytest.mark.parametrize(
    "snippet",
    [
        pytest.param(snippet, id=snippet.id, marks=[pytest.mark.slow] if snippet.slow else [])
        for snippet in SNIPPETS
    ],
)
def test_snippet_runs_as_printed(snippet: Snippet, playground: Path, tmp_path: Path) -> None:
    if snippet.skip_reason is not None:
        pytest.skip(snippet.skip_reason)
    root = tmp_path / "checkout"
    shutil.copytree(playground, root, symlinks=True)  # each snippet on its own copy
    if snippet.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", snippet.body]
    else:
        command = [str(root / ".venv" / "bin" / "python"), "-c", snippet.body]
    result = subprocess.run(
        command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, (
        f"{snippet.id} failed ({result.returncode}):\n{snippet.body}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )
