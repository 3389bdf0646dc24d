"""Readers of the deployment files: the Dockerfile, docker-compose.yml and .env.example."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")


# --- Dockerfile ----------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, COPY, RUN, ...
    arguments: str  # the rest of the logical line, continuations joined
    line: int


@dataclass
class Copy:
    sources: list[str]
    destination: str
    from_stage: str | None
    workdir: str

    def target(self, source: str) -> PurePosixPath:
        """Where ``source`` lands in the image."""
        dest = PurePosixPath(self.workdir) / self.destination
        if self.destination.endswith("/") or len(self.sources) > 1:
            return dest / PurePosixPath(source).name
        return dest


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


def read_instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _words(arguments: str) -> list[str]:
    """An instruction's arguments, exec (JSON) form or shell words."""
    if arguments.startswith("["):
        words = json.loads(arguments)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return shlex.split(arguments)


def _substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda match: variables.get(match[1] or match[2], match[0]),
        value,
    )


def parse_env(arguments: str, variables: dict[str, str]) -> dict[str, str]:
    """``ENV a=1 b="two words"`` (the key=value form)."""
    values = {}
    for word in shlex.split(arguments):
        key, equals, value = word.partition("=")
        assert equals, f"ENV {arguments!r}: only the key=value form is read"
        values[key] = _substitute(value, variables | values)
    return values


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages, with their COPY instructions, ENV and final WORKDIR."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in read_instructions(path.read_text(encoding="utf-8")):
        keyword, arguments = instruction.keyword, instruction.arguments
        if keyword == "ARG" and not stages:
            name, _, default = arguments.partition("=")
            args[name] = default
            continue
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=_substitute(words[0], args), name=name))
            continue
        assert stages, f"line {instruction.line}: {keyword} before FROM"
        stage = stages[-1]
        stage.instructions.append(instruction)
        if keyword == "ENV":
            stage.env.update(parse_env(arguments, stage.env))
        elif keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / arguments)
        elif keyword in ("COPY", "ADD"):
            words = _words(arguments) if arguments.startswith("[") else shlex.split(arguments)
            flags = [word for word in words if word.startswith("--")]
            paths = [word for word in words if not word.startswith("--")]
            from_stage = next(
                (flag.split("=", 1)[1] for flag in flags if flag.startswith("--from=")), None
            )
            stage.copies.append(Copy(paths[:-1], paths[-1], from_stage, stage.workdir))
    return stages


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- .env.example and Compose interpolation ------------------------------------------


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=value lines (no quoting, as .env.example is written)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        assert equals, f".env.example: {line!r} is not KEY=value"
        values[key.strip()] = value.strip()
    return values


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?P<operator>:?[-?+])?(?P<word>[^}]*)\}"
    r"|(?P<plain>[A-Za-z_]\w*))"
)


@dataclass
class Reference:
    name: str
    operator: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    word: str


def references(value: str) -> list[Reference]:
    """The variables a Compose string interpolates (``$$`` is a literal dollar)."""
    found = []
    for match in _VARIABLE.finditer(value):
        if match["escaped"]:
            continue
        name = match["braced"] or match["plain"]
        found.append(Reference(name, match["operator"], match["word"] or ""))
    return found


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of one string, as `docker compose config` does it."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        operator, word = match["operator"], match["word"] or ""
        present = name in variables
        value = variables.get(name, "")
        if operator in (":-", "-"):
            use_default = not value if operator == ":-" else not present
            return word if use_default else value
        if operator in (":?", "?"):
            missing = not value if operator == ":?" else not present
            if missing:
                raise KeyError(f"required variable {name} is not set: {word}")
            return value
        if operator in (":+", "+"):
            return word if (value if operator == ":+" else present) else ""
        return value

    return _VARIABLE.sub(replace, value)


def walk_strings(node: Any) -> list[str]:
    """Every string in a parsed YAML document, keys and values."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in walk_strings(key) + walk_strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in walk_strings(item)]
    return []


def interpolate_tree(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, variables) for item in node]
    return node


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """docker-compose.yml parsed by PyYAML: anchors and ``<<`` merge keys resolved."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}
