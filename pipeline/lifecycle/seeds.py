"""The danger_actions seed (``sql/seeds/danger_actions.csv``) as the lists SQL binds."""

from __future__ import annotations

from pipeline import seeds


def action_lookups() -> dict[str, list[str]]:
    """``$action_keys`` ('rule|from_stage', '*' for any stage) and ``$action_texts``.

    Raises:
        ValueError: an action family of ``danger_rules.csv`` has no catch-all ('*')
            action, so an alert could lack one.
    """
    rows = seeds.rows("danger_actions")
    keys = [f"{row['rule']}|{row['from_stage']}" for row in rows]
    families = dict.fromkeys(seeds.values("danger_rules", "action_rule"))
    missing = [family for family in families if f"{family}|*" not in keys]
    if missing:
        raise ValueError(f"sql/seeds/danger_actions.csv: no '*' action for {missing}")
    return {"action_keys": keys, "action_texts": [str(row["action"]) for row in rows]}
