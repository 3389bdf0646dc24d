"""The seeds (``sql/seeds/*.csv``): the project's vocabularies, each kept in one file.

The lifecycle stages (their order, colour, and which can enter danger), the RFM segments
(their value order and colour), the RFM cells and types, the danger rules and their
actions. Python, the declarations' tests, the contracts and the report read them from
here; SQL reads them as views (``register``). Nothing else spells a stage or segment out.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pipeline import sql

if TYPE_CHECKING:
    import duckdb

# Each seed's columns and their SQL types, in file order.
COLUMNS: dict[str, dict[str, str]] = {
    "lifecycle_stages": {
        "stage": "varchar",
        "stage_order": "integer",
        "colour": "varchar",
        "buyer": "boolean",
        "can_enter_danger": "boolean",
        "is_danger": "boolean",
        "return_order": "integer",
        "description": "varchar",
    },
    "segments": {"segment": "varchar", "value_order": "integer", "colour": "varchar"},
    "rfm_segments": {
        "r_score": "integer",
        "f_score": "integer",
        "m_score": "integer",
        "fm_score": "integer",
        "segment": "varchar",
    },
    "rfm_types": {
        "r_up": "boolean",
        "f_up": "boolean",
        "m_up": "boolean",
        "rfm_pattern": "varchar",
        "rfm_type": "varchar",
    },
    "danger_rules": {"rule": "varchar", "action_rule": "varchar", "description": "varchar"},
    "danger_actions": {"rule": "varchar", "from_stage": "varchar", "action": "varchar"},
}


def path(name: str) -> str:
    if name not in COLUMNS:
        raise ValueError(f"not a seed: {name!r}")
    return str(sql.sql_root() / "seeds" / f"{name}.csv")


@cache
def rows(name: str) -> tuple[dict[str, Any], ...]:
    """A seed's rows, typed by ``COLUMNS`` (empty cells are None)."""
    types = COLUMNS[name]
    with open(path(name), encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != list(types):
            raise ValueError(f"sql/seeds/{name}.csv: columns must be {list(types)}")
        return tuple(
            {column: _typed(row[column], types[column]) for column in types} for row in reader
        )


def values(name: str, column: str, **where: Any) -> list[Any]:
    """One column of a seed, in file order, of the rows matching ``where``."""
    return [
        row[column]
        for row in rows(name)
        if all(row[key] == wanted for key, wanted in where.items())
    ]


def register(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """The seed as the view ``name``, typed."""
    con.read_csv(path(name), header=True, columns=COLUMNS[name]).create_view(name, replace=True)


def _typed(text: str, type_name: str) -> Any:
    if text == "":
        return None
    if type_name == "integer":
        return int(text)
    if type_name == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text == "true"
    return text


@dataclass(frozen=True)
class Stage:
    name: str
    order: int
    colour: str
    buyer: bool
    can_enter_danger: bool
    is_danger: bool
    return_order: int | None


@cache
def stages() -> tuple[Stage, ...]:
    """The lifecycle stages in their documented order (docs/lifecycle.md)."""
    found = tuple(
        Stage(
            name=row["stage"],
            order=row["stage_order"],
            colour=row["colour"],
            buyer=row["buyer"],
            can_enter_danger=row["can_enter_danger"],
            is_danger=row["is_danger"],
            return_order=row["return_order"],
        )
        for row in rows("lifecycle_stages")
    )
    if [stage.order for stage in found] != list(range(1, len(found) + 1)):
        raise ValueError("sql/seeds/lifecycle_stages.csv: stage_order must count 1, 2, ...")
    if sum(stage.is_danger for stage in found) != 1:
        raise ValueError("sql/seeds/lifecycle_stages.csv: exactly one stage is danger")
    return found


def stage_names() -> tuple[str, ...]:
    return tuple(stage.name for stage in stages())


def danger_stage() -> str:
    return next(stage.name for stage in stages() if stage.is_danger)


def stages_by_return() -> tuple[str, ...]:
    """Buyer stages from the likeliest to buy again to the least (the documented order)."""
    ranked = [stage for stage in stages() if stage.return_order is not None]
    return tuple(stage.name for stage in sorted(ranked, key=lambda stage: stage.return_order or 0))


def active_stages() -> tuple[str, ...]:
    """The stages a customer can enter danger from."""
    return tuple(stage.name for stage in stages() if stage.can_enter_danger)


def segment_names() -> tuple[str, ...]:
    """The RFM segments from the most to the least valuable relationship."""
    ordered = sorted(rows("segments"), key=lambda row: row["value_order"])
    return tuple(row["segment"] for row in ordered)


def segment_colours() -> dict[str, str]:
    ordered = sorted(rows("segments"), key=lambda row: row["value_order"])
    return {row["segment"]: row["colour"] for row in ordered}


def stage_colours() -> dict[str, str]:
    return {stage.name: stage.colour for stage in stages()}


def danger_rules() -> tuple[str, ...]:
    return tuple(values("danger_rules", "rule"))
