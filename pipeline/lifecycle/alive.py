"""P(alive): the MBG/NBD model behind customer_lifecycle.p_alive, fitted on a schedule.

The model (``pipeline/lifecycle/btyd.py``) is fitted on every customer's purchase days in
the scoring window, condensed by (frequency, recency, T) in SQL, so the fit grows with
the number of distinct triples, not of customers. Recency and T come in days and are
fitted in weeks (``FIT_TIME_UNIT``; ``alpha`` is then per week): :meth:`AliveModel.sql_params`
gives the SQL, which counts days, ``alpha`` per day. It is refitted on its own schedule
(``lifecycle.alive_refit_every_days``; neither the risk model's nor the clusters') and
versioned in the model store (:mod:`pipeline.model_store`):
``paths.models/btyd/version=YYYY-MM-DD/params.json``. A date uses the newest usable
version on or before it, so re-running a date reads the same parameters.

A degenerate fit (``btyd.degeneracy``: not converged, too few repeat buyers, or a
collapsed model) is never the model in force: it is recorded with its reason under
``paths.models/btyd/rejected/version=YYYY-MM-DD/params.json``, a warning is logged, and
the previous usable version (or none: p_alive null) stays in force. The fit is retried
on the schedule, counted from the newest attempt, until one is usable (with a schedule
of 0, on each following date).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from pipeline.config import Settings
from pipeline.declarations import build_intermediate
from pipeline.lifecycle import btyd
from pipeline.model_store import VersionedStore, refit_due

log = logging.getLogger(__name__)
Array = npt.NDArray[np.float64]

PARAMS_FILE = "params.json"
# Days in each time unit a model may be fitted in; the SQL counts days.
DAYS_PER_UNIT: dict[str, int] = {"days": 1, "weeks": 7}
# The unit fits are made in: recency and T in days are divided by 7.
FIT_TIME_UNIT = "weeks"
# What the SQL binds when there is no model yet (nobody has bought twice): p_alive null.
NO_MODEL = {"has_alive_model": False, "alive_r": 1.0, "alive_alpha": 1.0, "alive_a": 1.0,
            "alive_b": 1.0}  # fmt: skip


@dataclass(frozen=True)
class AliveModel:
    """A fitted version: its date, parameters and the time unit they were fitted in.

    ``params.alpha`` is per ``time_unit``; every function here takes day counts and
    converts them.
    """

    version: date
    params: btyd.Params
    time_unit: str = "days"

    def __post_init__(self) -> None:
        if self.time_unit not in DAYS_PER_UNIT:
            raise ValueError(
                f"time_unit must be one of {', '.join(DAYS_PER_UNIT)}; got {self.time_unit!r}"
            )

    @property
    def days_per_unit(self) -> int:
        return DAYS_PER_UNIT[self.time_unit]

    def sql_params(self) -> dict[str, Any]:
        """The ``$alive_*`` values of customer_lifecycle.sql, which counts days.

        Only ``alpha`` depends on the time unit (weeks to days: times 7; r, a and b
        are pure numbers), so the SQL on day counts gives :func:`btyd.p_alive` on the
        same counts in the model's unit.
        """
        p = self.params
        return {
            "has_alive_model": True,
            "alive_r": p.r,
            "alive_alpha": p.alpha * self.days_per_unit,
            "alive_a": p.a,
            "alive_b": p.b,
        }


def p_alive(
    model: AliveModel,
    frequency: npt.ArrayLike,
    recency_days: npt.ArrayLike,
    T_days: npt.ArrayLike,
) -> Array:
    """:func:`btyd.p_alive` of customers measured in days (frequency: repeat purchase days)."""
    per = float(model.days_per_unit)
    recency = np.asarray(recency_days, dtype=np.float64) / per
    age = np.asarray(T_days, dtype=np.float64) / per
    return btyd.p_alive(model.params, frequency, recency, age)


def expected_purchases(
    model: AliveModel,
    frequency: npt.ArrayLike,
    recency_days: npt.ArrayLike,
    T_days: npt.ArrayLike,
    horizon_days: npt.ArrayLike,
) -> Array:
    """Each customer's expected number of purchase days in the next ``horizon_days`` days.

    The conditional expectation of :func:`btyd.expected_purchases` given the customer's
    frequency (repeat purchase days), recency and T in days, as alive_inputs.sql
    measures them; converted to the model's time unit here. Vectorized (arguments
    broadcast): about 0.5 s per million customers (docs/btyd.md).
    """
    per = float(model.days_per_unit)
    recency = np.asarray(recency_days, dtype=np.float64) / per
    age = np.asarray(T_days, dtype=np.float64) / per
    horizon = np.asarray(horizon_days, dtype=np.float64) / per
    return btyd.expected_purchases(model.params, horizon, frequency, recency, age)


class AliveStore(VersionedStore[AliveModel]):
    """Fitted versions under ``paths.models/btyd``, rejected fits under ``btyd/rejected``;
    each one ``params.json`` (the parameters, with why a fit is degenerate, and the time
    unit). An unusable version is never in force and never saved as one."""

    kind = "btyd"
    marker = PARAMS_FILE
    title = "P(alive)"

    def write(self, model: AliveModel, folder: Path) -> None:
        text = {"params": asdict(model.params), "time_unit": model.time_unit}
        (folder / PARAMS_FILE).write_text(
            json.dumps(text, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def read(self, folder: Path, version: date) -> AliveModel:
        stored = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
        params = btyd.Params(**stored["params"])
        if "degenerate_reason" not in stored["params"]:
            # Stored before degeneracy was checked (and without the repeat buyers'
            # count): judge it by its parameters and convergence.
            params = replace(params, degenerate_reason=btyd.degeneracy(params, min_repeat_buyers=0))
        return AliveModel(version, params, stored["time_unit"])

    def unusable(self, model: AliveModel) -> str | None:
        if model.params.usable:
            return None
        return model.params.degenerate_reason or "not a converged fit"


def alive_model(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    day: date,
    params: dict[str, Any],
    *,
    min_repeat_buyers: int = btyd.MIN_REPEAT_BUYERS,
) -> AliveModel | None:
    """The model in force on ``day``: the newest usable on or before it, or a new fit when due.

    ``con`` has the view customer_segments of ``day``. A new fit is made in weeks
    (``FIT_TIME_UNIT``). If it is degenerate (see :func:`btyd.degeneracy`; fewer than
    ``min_repeat_buyers`` customers with a repeat purchase is one reason) it is saved
    under ``btyd/rejected/`` with its reason, a warning is logged, and the previous
    usable version stays in force (None if there is none: p_alive null). None also
    while nobody has bought on two days (MBG/NBD has no maximum then).
    """
    store = AliveStore(settings.paths.models)
    current = store.newest_on_or_before(day)
    # The schedule counts from the newest attempt, rejected ones too: a young lake whose
    # fits are degenerate is retried on the model's schedule, not every day. Every 0:
    # retried each day until the first usable fit, then never.
    every = settings.lifecycle.alive_refit_every_days
    if every > 0:
        since = store.newest_attempt_on_or_before(day)
    else:
        since = current.version if current else None
    if not refit_due(since, day, every):
        return current
    build_intermediate(con, settings, "lifecycle/alive_inputs", params)
    rows = con.table("alive_inputs").fetchall()
    if not any(frequency > 0 for frequency, _recency, _age, _count in rows):
        return current
    frequency, recency, age, customers = (
        np.array(column, dtype=np.float64) for column in zip(*rows, strict=True)
    )
    per = DAYS_PER_UNIT[FIT_TIME_UNIT]
    fitted = btyd.fit(
        frequency,
        recency / per,
        age / per,
        model="mbgnbd",
        weights=customers,
        min_repeat_buyers=min_repeat_buyers,
    )
    model = AliveModel(day, fitted, FIT_TIME_UNIT)
    if not fitted.usable:
        store.save_rejected(model)
        log.warning(
            "P(alive) model fitted on %s rejected (%s; kept in %s): %s; in force: %s",
            day,
            f"r={fitted.r:.4g} alpha={fitted.alpha:.4g} a={fitted.a:.4g} b={fitted.b:.4g}",
            store.rejected_path(day),
            fitted.degenerate_reason or "not a converged fit",
            f"version {current.version}" if current else "none (p_alive null)",
        )
        return current
    store.save(model)
    return model
