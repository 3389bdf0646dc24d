"""The Dockerfile, read and then built outside Docker.

There is no Docker engine here, so the build stage is replayed: its COPY instructions
copy the same files from the repository into a scratch build context, and its install
step, scripts/install-image.sh, runs there into a scratch virtualenv, exactly as the
Dockerfile runs it into /app/.venv. The env must then run the pipeline and Airflow
without the source tree.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet

from tests.deploy.support import REPO, Stage, dockerignore_patterns, parse_dockerfile

INSTALL_SCRIPT = "scripts/install-image.sh"
IMAGE_ENV = "/app/.venv"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile()


def _ignored(relative: str) -> bool:
    """Is a path excluded from the build context by .dockerignore (top-level rules)?"""
    matched = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(Path(relative).name, pattern):
            matched = not negated
    return matched


def test_two_stages_from_the_same_python(stages: list[Stage]) -> None:
    build, runtime = stages
    assert build.name == "build" and runtime.name is None
    assert build.base == runtime.base, "the env is copied: both stages need the same Python"
    match = re.fullmatch(r"python:(\d+\.\d+)-slim", runtime.base)
    assert match, runtime.base
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{match[1]}.0"), (match[1], requires)


def test_copy_sources_exist_in_the_context(stages: list[Stage]) -> None:
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        for copy in stage.copies:
            if copy.from_stage:
                assert copy.from_stage in names, copy
                continue
            for source in copy.sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_uv_is_the_version_bootstrap_installs(stages: list[Stage]) -> None:
    [run] = [i.arguments for i in stages[0].instructions if "uv==" in i.arguments]
    pinned = re.search(r"uv==([\d.]+)", run)
    bootstrap = re.search(r'UV_VERSION="([\d.]+)"', (REPO / "scripts/bootstrap.sh").read_text())
    assert pinned and bootstrap and pinned[1] == bootstrap[1]


def test_runtime_stage(stages: list[Stage]) -> None:
    runtime = stages[-1]
    copied = {str(copy.target(s)): copy for copy in runtime.copies for s in copy.sources}
    assert copied[IMAGE_ENV].from_stage == "build"
    assert runtime.env["AIRFLOW__CORE__DAGS_FOLDER"] in copied
    assert runtime.env["PATH"].startswith(f"{IMAGE_ENV}/bin:")
    keywords = {i.keyword: i.arguments for i in runtime.instructions}
    assert keywords["ENTRYPOINT"] == '["rfm-pipeline"]'
    assert keywords["USER"] == "50000"
    # Nothing installs at run time: the runtime stage only creates folders.
    runs = [i.arguments for i in runtime.instructions if i.keyword == "RUN"]
    assert not any(word in run for run in runs for word in ("pip ", "uv ", "apt-get"))


def _replay_copies(stage: Stage, context: Path) -> None:
    """The stage's COPY instructions, from the repository into ``context`` (its WORKDIR)."""
    for copy in stage.copies:
        assert copy.from_stage is None
        for source in copy.sources:
            target = context / copy.target(source).relative_to(stage.workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(
                    REPO / source,
                    target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    dirs_exist_ok=True,
                )
            else:
                shutil.copy2(REPO / source, target)


def _uv() -> str:
    local = REPO / ".cache" / "uv" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    assert found, "no uv: run scripts/bootstrap.sh"
    return found


def _build_environment() -> dict[str, str]:
    """This machine's environment (uv's cache, certificates) without this project's env."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UV_", "VIRTUAL_ENV", "RFM_", "AIRFLOW", "PYTHON"))
    }
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env | {"UV": _uv()}


def test_install_steps_build_a_working_env(stages: list[Stage], tmp_path: Path) -> None:
    build = stages[0]
    context, env = tmp_path / "context", tmp_path / "venv"
    context.mkdir()
    # The build stage's COPYs and RUNs in order, as Docker would run them.
    copies = iter(build.copies)
    installs = 0
    for instruction in build.instructions:
        if instruction.keyword == "COPY":
            _replay_copies(
                Stage(build.base, None, copies=[next(copies)], workdir=build.workdir), context
            )
        elif instruction.keyword == "RUN":
            words = shlex.split(instruction.arguments)
            if words[:2] == ["pip", "install"]:
                continue  # uv itself: this machine has it already
            assert words[:2] == ["bash", INSTALL_SCRIPT], instruction.arguments
            assert words[-1] == IMAGE_ENV
            result = subprocess.run(
                ["bash", INSTALL_SCRIPT, *words[2:-1], str(env)],
                cwd=context,
                env=_build_environment(),
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-4000:]
            installs += 1
            if "--deps-only" in words:
                assert not list((env / "lib").glob("python*/site-packages/pipeline"))
    assert installs == 2

    # The env runs without the sources: from elsewhere, with the context gone.
    shutil.rmtree(context)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*command: str) -> str:
        result = subprocess.run(
            command, cwd=elsewhere, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
        return result.stdout

    assert "Usage: rfm-pipeline" in run(str(env / "bin" / "rfm-pipeline"), "--help")
    assert run(str(env / "bin" / "airflow"), "version").strip().splitlines()[-1] == "3.3.2"
    located = run(
        str(env / "bin" / "python"),
        "-c",
        "import airflow, pipeline, pipeline.sql as sql; "
        "from pathlib import Path; p = Path(pipeline.__file__).parent; "
        "print(p); print(len(list((p / '_sql').rglob('*.sql'))))",
    ).split()
    assert PurePosixPath(located[0]).is_relative_to(env), "pipeline imported from outside the env"
    assert int(located[1]) > 10, "the SQL models are not in the installed package"
    # --no-dev: the test tools stay out of the image.
    assert not (env / "bin" / "pytest").exists()
