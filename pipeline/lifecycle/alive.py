"""P(alive): the MBG/NBD model behind customer_lifecycle.p_alive, fitted on a schedule.

The model (``pipeline/lifecycle/btyd.py``) is fitted on every customer's purchase days in
the scoring window, condensed by (frequency, recency, T) in SQL, so the fit grows with
the number of distinct triples, not of customers. It is refitted on the cluster model's
schedule (``clusters.refit_every_days``) and versioned like it:
``paths.models/btyd/version=YYYY-MM-DD/params.json``. A date uses the newest version on
or before it, so re-running a date reads the same parameters.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql
from pipeline.config import Settings
from pipeline.lifecycle import btyd

_VERSION_PREFIX = "version="
# What the SQL binds when there is no model yet (nobody has bought twice): p_alive null.
NO_MODEL = {"has_alive_model": False, "alive_r": 1.0, "alive_alpha": 1.0, "alive_a": 1.0,
            "alive_b": 1.0}  # fmt: skip


@dataclass(frozen=True)
class AliveModel:
    version: date
    params: btyd.Params
    time_unit: str = "days"

    def sql_params(self) -> dict[str, Any]:
        p = self.params
        return {
            "has_alive_model": True,
            "alive_r": p.r,
            "alive_alpha": p.alpha,
            "alive_a": p.a,
            "alive_b": p.b,
        }


class AliveStore:
    """Fitted versions under ``paths.models/btyd``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "btyd"

    def path(self, version: date) -> Path:
        return self.root / f"{_VERSION_PREFIX}{version.isoformat()}" / "params.json"

    def newest_on_or_before(self, day: date) -> AliveModel | None:
        versions = [version for version in self._versions() if version <= day]
        return self.load(versions[-1]) if versions else None

    def load(self, version: date) -> AliveModel:
        stored = json.loads(self.path(version).read_text(encoding="utf-8"))
        return AliveModel(version, btyd.Params(**stored["params"]), stored["time_unit"])

    def save(self, model: AliveModel) -> None:
        target = self.path(model.version)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        text = {"params": asdict(model.params), "time_unit": model.time_unit}
        partial.write_text(json.dumps(text, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, target)

    def _versions(self) -> list[date]:
        if not self.root.is_dir():
            return []
        return sorted(
            date.fromisoformat(path.name.removeprefix(_VERSION_PREFIX))
            for path in self.root.iterdir()
            if path.name.startswith(_VERSION_PREFIX) and (path / "params.json").is_file()
        )


def alive_model(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date, params: dict[str, Any]
) -> AliveModel | None:
    """The model in force on ``day``: the newest on or before it, or a new fit when due.

    ``con`` has the view customer_segments of ``day``. None while nobody has bought on
    two days (MBG/NBD has no maximum then).
    """
    store = AliveStore(settings.paths.models)
    current = store.newest_on_or_before(day)
    every = settings.clusters.refit_every_days
    due = current is None or (every > 0 and (day - current.version).days >= every)
    if not due:
        return current
    rows = sql.relation(con, "lifecycle/alive_inputs", params).fetchall()
    if not any(frequency > 0 for frequency, _recency, _age, _count in rows):
        return current
    frequency, recency, age, customers = (list(column) for column in zip(*rows, strict=True))
    fitted = btyd.fit(frequency, recency, age, model="mbgnbd", weights=customers)
    model = AliveModel(day, fitted)
    store.save(model)
    return model
