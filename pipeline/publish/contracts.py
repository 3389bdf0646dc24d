"""Contracts of the published tables, kept beside their SQL (``sql/publish/<table>.toml``).

A contract states what BI tools may rely on: the columns and their types in order, the
grain (a unique key), and per column not-null, accepted values and a range; for the
table, bounds on its row count and on its change against the previous publish. Each
statement becomes one check query, run by DuckDB over the staged Parquet file: names
come only from the contract (checked identifiers) and every value is bound.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipeline import sql
from pipeline.declarations import Column, column_tests, identifier, parse_column
from pipeline.errors import ConfigError

Kind = Literal["snapshot", "daily"]


@dataclass(frozen=True)
class Contract:
    """What one published table promises."""

    table: str
    description: str
    kind: Kind
    grain: tuple[str, ...]
    columns: tuple[Column, ...]
    min_rows: int = 0
    # Largest relative change of the row count against the previous publish; None: the
    # configured default for snapshot tables, no bound for daily ones.
    max_row_change: float | None = None

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


@dataclass(frozen=True)
class CheckResult:
    """One statement of a contract, as checked on one staged table."""

    table: str
    check: str
    column: str | None
    passed: bool
    failing_rows: int
    detail: str = field(default="")


AUDIT_COLUMNS = (
    "table_name",
    "check_name",
    "column_name",
    "passed",
    "failing_rows",
    "detail",
    "publish_status",
)


def audit_rows(results: list[CheckResult]) -> list[tuple[object, ...]]:
    """One row per check, in ``AUDIT_COLUMNS`` order: the audit table of both targets.

    ``publish_status`` is ``blocked`` for every check of a run with any failure, else
    ``published``.
    """
    status = "published" if all(r.passed for r in results) else "blocked"
    return [
        (r.table, r.check, r.column, r.passed, r.failing_rows, r.detail, status) for r in results
    ]


def contract_path(table: str) -> Path:
    return sql.sql_root() / "publish" / f"{identifier(table)}.toml"


@cache
def load_contract(table: str) -> Contract:
    """Read and validate ``sql/publish/<table>.toml``.

    Raises:
        ConfigError: the contract is malformed (named key and file).
    """
    path = contract_path(table)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return _parse(table, raw)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"contract {path}: {error}") from None


def _parse(table: str, raw: dict[str, Any]) -> Contract:
    columns = tuple(parse_column(item, typed=True) for item in raw["columns"])
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        raise ValueError("a column is listed twice")
    grain = tuple(identifier(name) for name in raw["grain"])
    if not grain or not set(grain) <= set(names):
        raise ValueError(f"grain {list(grain)} must name listed columns")
    kind = raw["kind"]
    if kind not in ("snapshot", "daily"):
        raise ValueError(f"kind must be snapshot or daily, not {kind!r}")
    max_change = raw.get("max_row_change")
    return Contract(
        table=identifier(table),
        description=str(raw["description"]),
        kind=kind,
        grain=grain,
        columns=columns,
        min_rows=int(raw.get("min_rows", 0)),
        max_row_change=None if max_change is None else float(max_change),
    )


def check_table(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    staged: Path,
    previous_rows: int | None,
    default_max_row_change: float,
    row_change_slack: int = 0,
) -> list[CheckResult]:
    """Run every statement of ``contract`` over the staged file; one result each."""
    table = contract.table
    con.read_parquet(str(staged)).create_view("staged", replace=True)
    results = [_schema_check(con, contract)]
    if not results[0].passed:
        return results  # the other checks would only repeat what is missing
    # Every column check is one filtered count of a single scan, and the grain's
    # duplicates a subquery of the same statement; values are bound.
    checks, params = column_tests(contract.columns)
    key = ", ".join(f'"{name}"' for name in contract.grain)
    duplicated = (
        f"(select coalesce(sum(n), 0) from "
        f"(select count(*) as n from staged group by {key} having count(*) > 1))"
    )
    counts = ", ".join(["count(*)", duplicated] + [check.failing for check in checks])
    rows, duplicates, *failing = con.execute(f"select {counts} from staged", params).fetchall()[0]
    rows, duplicates = int(rows), int(duplicates)
    results.append(_result(table, "unique_grain", None, duplicates, f"grain ({key})"))
    results += [
        _result(table, check.name, check.column, int(count), check.detail)
        for check, count in zip(checks, failing, strict=True)
    ]
    results.append(
        CheckResult(
            table,
            "min_rows",
            None,
            rows >= contract.min_rows,
            0 if rows >= contract.min_rows else rows,
            f"{rows} rows, at least {contract.min_rows}",
        )
    )
    bound = contract.max_row_change
    if bound is None and contract.kind == "snapshot":
        bound = default_max_row_change
    if bound is not None and previous_rows is not None:
        moved = abs(rows - previous_rows)
        allowed = max(bound * previous_rows, row_change_slack)
        results.append(
            CheckResult(
                table,
                "row_count_change",
                None,
                moved <= allowed,
                0 if moved <= allowed else moved,
                f"{previous_rows} -> {rows} rows; allowed ±{bound:.0%} or ±{row_change_slack} rows",
            )
        )
    return results


def _schema_check(con: duckdb.DuckDBPyConnection, contract: Contract) -> CheckResult:
    actual = [
        (str(name), str(type_)) for name, type_, *_ in con.execute("describe staged").fetchall()
    ]
    expected = [(column.name, column.type) for column in contract.columns]
    passed = actual == expected
    detail = "" if passed else _describe_schema_drift(expected, actual)
    return CheckResult(contract.table, "columns_and_types", None, passed, 0, detail)


def _describe_schema_drift(
    expected: Sequence[tuple[str, str]], actual: Sequence[tuple[str, str]]
) -> str:
    want, have = dict(expected), dict(actual)
    problems = [f"missing {name}" for name in want if name not in have]
    problems += [f"unexpected {name}" for name in have if name not in want]
    problems += [
        f"{name} is {have[name]}, not {type_}"
        for name, type_ in want.items()
        if name in have and have[name] != type_
    ]
    if not problems:
        problems.append("columns out of order")
    return "; ".join(problems)


def _result(
    table: str, check: str, column: str | None, failing: int, detail: str = ""
) -> CheckResult:
    return CheckResult(table, check, column, failing == 0, failing, detail)
