"""The lifecycle's peers on real data, and the figures it is judged by.

For a cutoff D and a holdout end E, every customer who bought on or before D is labelled
*lost* when they make no purchase in (D, E]. Scores of how likely that is, all computed
from the same run's lake (``customer_days`` up to D, read with DuckDB):

- ``recency``: days since the last purchase (higher = more likely lost);
- ``frequency``: purchase days up to D (fewer = more likely lost);
- ``bgnbd_expected_purchases``: the BG/NBD expected number of purchase days in (D, E]
  (Fader, Hardie and Lee 2005; fewer = more likely lost);
- ``mbgnbd_p_alive``: the MBG/NBD probability of being alive at D (lower = more likely
  lost).

Both models are fitted with ``pipeline.lifecycle.btyd`` on every customer's (frequency =
purchase days after the first, recency = first to last purchase, T = first purchase to
D), in weeks as in the BTYD papers, over all history up to D. The lifecycle's own score,
``customer_lifecycle.risk`` (probability of no purchase within the horizon), is judged
the same way when the column exists.

The figure is the ROC AUC of each score against the label (``roc_auc``): the chance that
a customer who was lost is scored above one who came back (0.5 is a coin).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipeline import seeds, sql
from pipeline.config import Settings
from pipeline.declarations import build_intermediate
from pipeline.duck import connect, release
from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.lifecycle import btyd
from pipeline.tables import CUSTOMER_DAYS, CUSTOMER_LIFECYCLE
from pipeline.workspace import scratch_dir

if TYPE_CHECKING:
    import pandas as pd

DAYS_PER_WEEK = 7.0
# Score column -> +1 if a higher value means more likely lost, -1 if a lower one does.
PEERS: dict[str, int] = {
    "recency": 1,
    "frequency": -1,
    "bgnbd_expected_purchases": -1,
    "mbgnbd_p_alive": -1,
}
RISK = "risk"
# Stages in the documented order of their chance to come back, best first (prospects,
# who never bought, have no holdout label).
STAGE_ORDER = seeds.stages_by_return()
LABEL = "lost"
# True for customers whose danger_entered_on is within danger_entry_days up to the cutoff.
RECENT_DANGER_ENTRY = "recent_danger_entry"


@dataclass(frozen=True)
class PeerScores:
    """Per customer (``frame``: customer_id, the history measures and one column per
    peer) and the two fitted models."""

    cutoff: date
    holdout_end: date
    frame: pd.DataFrame
    bgnbd: btyd.Params
    mbgnbd: btyd.Params


@dataclass(frozen=True)
class Evaluation:
    """The lifecycle and its peers against the holdout, as of ``cutoff``."""

    cutoff: date
    holdout_end: date
    customers: pd.DataFrame  # one row per labelled customer: truth, peers, lifecycle
    aucs: dict[str, float]
    stage_rates: pd.DataFrame
    danger_entry_rates: pd.DataFrame
    models: dict[str, btyd.Params] = field(default_factory=dict)


def purchase_history(settings: Settings, cutoff: date) -> pd.DataFrame:
    """Each customer's purchase days up to ``cutoff`` (sql/realdata/customer_purchase_history)
    from the lake's customer_days partitions of export dates up to it.

    Raises:
        NotScoredError: no customer_days partition on or before ``cutoff``.
    """
    lake = Lake(settings.paths.lake)
    days = [day for day in lake.partition_dates(CUSTOMER_DAYS) if day <= cutoff]
    if not days:
        raise NotScoredError(f"no {CUSTOMER_DAYS} on or before {cutoff} in {lake.root}")
    with scratch_dir(settings.paths.state, "realdata", cutoff) as scratch:
        con = connect(settings.duckdb, scratch)
        try:
            build_intermediate(con, settings, "lifecycle/int_purchase_days", {"known_by": cutoff})
            relation = sql.relation(con, "realdata/customer_purchase_history", {"cutoff": cutoff})
            return relation.df()
        finally:
            release(con)


def peer_scores(settings: Settings, cutoff: date, holdout_end: date) -> PeerScores:
    """The peers of every customer who bought on or before ``cutoff``, the BTYD models
    fitted in weeks on the same customers, the expectation over (cutoff, holdout_end]."""
    if holdout_end <= cutoff:
        raise ValueError(f"the holdout end {holdout_end} must be after the cutoff {cutoff}")
    frame = purchase_history(settings, cutoff)
    x = frame["frequency"].to_numpy(dtype="float64")
    t_x = frame["recency_days"].to_numpy(dtype="float64") / DAYS_PER_WEEK
    age = frame["age_days"].to_numpy(dtype="float64") / DAYS_PER_WEEK
    horizon = (holdout_end - cutoff).days / DAYS_PER_WEEK
    bgnbd = btyd.fit(x, t_x, age, model="bgnbd")
    mbgnbd = btyd.fit(x, t_x, age, model="mbgnbd")
    frame = frame.assign(
        recency=frame["days_since_last_purchase"],
        bgnbd_expected_purchases=btyd.expected_purchases(bgnbd, horizon, x, t_x, age),
        mbgnbd_p_alive=btyd.p_alive(mbgnbd, x, t_x, age),
    )
    return PeerScores(cutoff, holdout_end, frame, bgnbd, mbgnbd)


def roc_auc(score: pd.Series, lost: pd.Series) -> float:
    """ROC AUC of ``score`` (higher = more likely lost) against the boolean ``lost``.

    Raises:
        ValueError: a score is missing, or the label has a single class.
    """
    from sklearn.metrics import roc_auc_score

    if score.isna().any():
        raise ValueError(f"{score.name}: {int(score.isna().sum())} customers have no score")
    if lost.nunique() != 2:
        raise ValueError("the label needs both lost and returning customers")
    return float(roc_auc_score(lost.astype(bool), score.astype("float64")))


def repurchase_rates(
    frame: pd.DataFrame, column: str, order: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Customers and the share who came back (``came_back``) per value of ``column``;
    in ``order`` (values not in it after, by name; missing values as "(none)")."""
    import pandas as pd

    groups = frame[column].astype("string").fillna("(none)")
    table = (
        frame.assign(**{column: groups})
        .groupby(column, sort=False)["came_back"]
        .agg(customers="size", came_back="sum")
        .reset_index()
    )
    table["came_back"] = table["came_back"].astype("int64")
    table["repurchase_rate"] = table["came_back"] / table["customers"]
    rank = {value: i for i, value in enumerate(order or ())}
    table["_rank"] = table[column].map(lambda v: rank.get(v, len(rank)))
    table = table.sort_values(["_rank", column]).drop(columns="_rank")
    return pd.DataFrame(table.reset_index(drop=True))


def lifecycle_on(settings: Settings, day: date) -> pd.DataFrame:
    """The customer_lifecycle partition of ``day``, all columns.

    Raises:
        NotScoredError: ``day`` has not been staged.
    """
    path = Lake(settings.paths.lake).partition_file(CUSTOMER_LIFECYCLE, day, AS_OF_KEY)
    if not path.is_file():
        raise NotScoredError(f"{day} is not staged: no {path}")
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def evaluate(
    settings: Settings,
    truth: pd.DataFrame,
    cutoff: date,
    holdout_end: date,
    *,
    danger_entry_days: int = 90,
) -> Evaluation:
    """Join the holdout truth (``customer_id``, ``came_back``: see
    ``cdnow.holdout_truth``) with the peers and the lifecycle of ``cutoff``; the AUCs
    (the lifecycle's ``risk`` too when it exists), the repurchase rate by stage, and by
    whether danger was entered within ``danger_entry_days`` up to the cutoff.

    Raises:
        ValueError: a labelled customer has no peer score or no lifecycle row.
    """
    import pandas as pd

    peers = peer_scores(settings, cutoff, holdout_end)
    lifecycle = lifecycle_on(settings, cutoff)
    wanted = ["customer_id", "stage", "danger_entered_on", "p_alive"]
    if RISK in lifecycle.columns:
        wanted.append(RISK)
    lifecycle = lifecycle[wanted].rename(columns={"p_alive": "lifecycle_p_alive"})
    customers = (
        truth[["customer_id", "came_back"]]
        .merge(peers.frame, on="customer_id", how="left", indicator="_peers")
        .merge(lifecycle, on="customer_id", how="left", indicator="_lifecycle")
    )
    for side in ("_peers", "_lifecycle"):
        missing = customers.loc[customers[side] != "both", "customer_id"]
        if len(missing):
            raise ValueError(
                f"{len(missing)} customers of the holdout truth have no {side[1:]} row "
                f"(e.g. {', '.join(missing.head(3))})"
            )
    customers = customers.drop(columns=["_peers", "_lifecycle"])
    customers[LABEL] = ~customers["came_back"]
    aucs = {name: roc_auc(sign * customers[name], customers[LABEL]) for name, sign in PEERS.items()}
    if RISK in customers.columns:
        aucs[RISK] = roc_auc(customers[RISK], customers[LABEL])
    recent_label = f"danger entered in the last {danger_entry_days} days"
    entered = pd.to_datetime(customers["danger_entered_on"])
    since = pd.Timestamp(cutoff - timedelta(days=danger_entry_days))
    customers[RECENT_DANGER_ENTRY] = entered.notna() & (entered > since)
    groups = customers["stage"].where(~customers[RECENT_DANGER_ENTRY], recent_label)
    return Evaluation(
        cutoff=cutoff,
        holdout_end=holdout_end,
        customers=customers,
        aucs=aucs,
        stage_rates=repurchase_rates(customers, "stage", STAGE_ORDER),
        danger_entry_rates=repurchase_rates(
            customers.assign(group=groups), "group", (recent_label, *STAGE_ORDER)
        ),
        models={"bgnbd": peers.bgnbd, "mbgnbd": peers.mbgnbd},
    )


def format_report(evaluation: Evaluation) -> str:
    """The AUCs, the models and the repurchase tables as plain text."""
    lines = [
        f"Lost = no purchase in {evaluation.cutoff} < day <= {evaluation.holdout_end}; "
        f"{int(evaluation.customers[LABEL].sum()):,} of {len(evaluation.customers):,} customers.",
        "ROC AUC (0.5 = a coin):",
    ]
    for name, value in evaluation.aucs.items():
        lines.append(f"  {name:<26} {value:.4f}")
    if RISK not in evaluation.aucs:
        lines.append(f"  {RISK:<26} (customer_lifecycle has no {RISK} column)")
    for name, params in evaluation.models.items():
        lines.append(
            f"  {name} (weeks): r={params.r:.4f} alpha={params.alpha:.4f} "
            f"a={params.a:.4f} b={params.b:.4f} LL={params.log_likelihood:.1f}"
            f"{'' if params.converged else ' NOT CONVERGED'}"
        )
    lines += ["", "Repurchase rate by stage as of the cutoff:", _table(evaluation.stage_rates)]
    lines += ["", "... with recent danger entries apart:", _table(evaluation.danger_entry_rates)]
    return "\n".join(lines)


def _table(table: pd.DataFrame) -> str:
    rows: list[Any] = [list(table.columns)]
    for record in table.itertuples(index=False):
        *head, rate = record
        rows.append([*head, f"{rate:.3f}"])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            str(v).ljust(w) if i == 0 else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )
