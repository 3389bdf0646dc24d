"""The danger_actions seed (``sql/seeds/danger_actions.csv``) as the lists SQL binds."""

from __future__ import annotations

import duckdb

from pipeline import sql

_COLUMNS = {"rule": "varchar", "from_stage": "varchar", "action": "varchar"}
RULES = ("gap", "returns")


def action_lookups(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """``$action_keys`` ('rule|from_stage', '*' for any stage) and ``$action_texts``.

    Raises:
        ValueError: a rule has no catch-all ('*') action, so an alert could lack one.
    """
    path = sql.sql_root() / "seeds" / "danger_actions.csv"
    rows = con.read_csv(str(path), header=True, columns=_COLUMNS).fetchall()
    keys = [f"{rule}|{stage}" for rule, stage, _action in rows]
    missing = [rule for rule in RULES if f"{rule}|*" not in keys]
    if missing:
        raise ValueError(f"sql/seeds/danger_actions.csv: no '*' action for {missing}")
    return {"action_keys": keys, "action_texts": [action for _rule, _stage, action in rows]}
