"""Load and run the SQL models kept in ``sql/``: one model per file, named by its table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pipeline

if TYPE_CHECKING:
    import duckdb

_MODEL_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


def sql_root() -> Path:
    """The ``sql/`` folder: packaged beside the code in a wheel, at the top of a checkout."""
    package = Path(pipeline.__file__).parent
    for candidate in (package / "_sql", package.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ folder beside {package}")


@cache
def load(model: str) -> str:
    """The text of ``sql/<model>.sql``, e.g. ``load("staging/stg_sales_export_lines")``."""
    if not _MODEL_NAME.match(model):
        raise ValueError(f"not a model name: {model!r}")
    return (sql_root() / f"{model}.sql").read_text(encoding="utf-8")


def parameters_of(text: str) -> set[str]:
    """The ``$name`` parameters a query binds (comments ignored)."""
    return set(_PARAMETER.findall(_COMMENT.sub("", text)))


def bind(model: str, params: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The model's text and just the parameters it names (DuckDB rejects extra ones)."""
    text = load(model)
    given = dict(params or {})
    wanted = parameters_of(text)
    missing = wanted - given.keys()
    if missing:
        raise KeyError(f"{model}: no value for parameter(s) {sorted(missing)}")
    return text, {name: given[name] for name in sorted(wanted)}


def relation(
    con: duckdb.DuckDBPyConnection, model: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyRelation:
    """The model as a lazy relation."""
    text, bound = bind(model, params)
    return con.sql(text, params=bound)


def materialize(
    con: duckdb.DuckDBPyConnection,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> None:
    """Run the model into a temporary table named ``name`` (a checked identifier: the
    caller's) or after its file."""
    text, bound = bind(model, params)
    name = name or model.rsplit("/", 1)[-1]
    con.execute(f'create or replace temp table "{name}" as\n{text}', bound)
