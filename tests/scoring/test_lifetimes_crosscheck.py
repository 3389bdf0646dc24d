"""Recency, frequency and monetary checked against ``lifetimes`` on the demo data.

``lifetimes.utils.summary_data_from_transaction_data`` is an independent implementation
of the same counts (a test-only dependency). It is fed the order lines read back from the
lake, and wherever its definitions and ours coincide every scored customer must agree
exactly, at three as-of dates (the last day included). Where they differ:

- Which lines. We net returns into monetary on the day they are recorded and never count
  them as purchases; lifetimes counts every row as a transaction. So lifetimes is fed
  sale lines only, and monetary is compared only for customers with no return line in
  the window. A customer whose only lines are returns (a purchase from before the lake's
  history) is not scored by us; fed returns as transactions, lifetimes would report one.
- Which day. A line's activity date is its local order date clamped into
  [export_date - 2, export_date] (48 h late tolerance), and as of date D only exports up
  to D are known; lifetimes takes the date it is given and everything up to
  observation_period_end. So it is fed the clamped dates of the lines exported up to D.
  The demo has no late or early-stamped lines, so a few are added by hand (below).
- Frequency. Ours counts purchase days in the window (``window_days`` ending with the
  as-of date); lifetimes counts repeat periods (distinct days - 1) over all history, or
  every period with ``include_first_transaction=True``. Compared: lifetimes on the window's
  lines with ``include_first_transaction=True``; and, while the window still holds all of
  history, its default frequency + 1.
- Recency. Ours is days since the last purchase day; lifetimes' recency is the age at the
  last purchase (last - first) and T the age now (end - first), so ours is T - recency,
  and our tenure_days is T.
- Monetary. Ours is the window's net spend (a sum, negative when returns outweigh
  sales); lifetimes' monetary_value is a mean per period (of repeat periods only by
  default), so with every period included mean x frequency is our sum.

docs/scoring-crosscheck.md has the same list and the number of customers compared.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from pipeline.config import ScoringConfig, Settings
from pipeline.demo.generate import generate
from pipeline.ingest.run import ingest_date
from pipeline.scoring.run import score_date
from tests.support import WEB_HEADER, read_lake, with_paths, write_csv

pytestmark = pytest.mark.slow  # a cross-check against the lifetimes library over a whole history

with warnings.catch_warnings():
    # lifetimes 0.11.3 sets pandas' mode.chained_assignment on import, deprecated in pandas 3.
    warnings.simplefilter("ignore", DeprecationWarning)
    from lifetimes.utils import summary_data_from_transaction_data

START = date(2025, 1, 1)
DAYS = 100
END = START + timedelta(days=DAYS - 1)
CUSTOMERS = 1000
SEED = 7
WINDOW = 60
# The window holding all history (on 03-01 exactly); past it, on the last day (04-10).
AS_OF = [date(2025, 1, 31), date(2025, 3, 1), END]

# Hand-added lines that the demo lacks (it has no late or early-stamped lines, and no
# customer whose only line is a return), in extra web exports of their export day:
# (export day, order id, customer, local order time, amount, status).
EXTRA_LINES = [
    # Late across an as-of date: ordered on 01-31, exported on 02-01. As of 01-31 X1's
    # last purchase day is 01-30; from 02-01 on it is 01-31.
    (date(2025, 1, 30), "XC00000001", "X0000001", "2025-01-30 10:00:00", "120.00", "completed"),
    (date(2025, 2, 1), "XC00000002", "X0000001", "2025-01-31 20:00:00", "35.50", "completed"),
    # One purchase day in two exports (the second 2 days late): counted once.
    (date(2025, 3, 1), "XC00000003", "X0000002", "2025-03-01 09:00:00", "60.00", "completed"),
    (date(2025, 3, 29), "XC00000004", "X0000002", "2025-03-29 11:00:00", "40.00", "completed"),
    (date(2025, 3, 31), "XC00000005", "X0000002", "2025-03-29 23:00:00", "15.25", "completed"),
    # Stamped 30 min after its export day (clock skew): counts on 03-31, not 04-01, so
    # X3 has 2 purchase days, not 1.
    (date(2025, 3, 31), "XC00000006", "X0000003", "2025-04-01 00:30:00", "88.00", "completed"),
    (date(2025, 4, 1), "XC00000007", "X0000003", "2025-04-01 12:00:00", "12.00", "completed"),
    # Only a return (of a purchase before the lake's history): never scored.
    (date(2025, 2, 10), "XC00000008", "X0000004", "2025-02-10 14:00:00", "-80.00", "returned"),
]


@dataclass(frozen=True)
class Scored:
    """The lake read back: customer lines with their activity date, and the segments."""

    lines: pd.DataFrame  # customer_id, kind, export_date, order_date, activity_date, amount
    segments: pd.DataFrame  # customer_segments, every as-of date
    window_days: int


def _write_extra_exports(settings: Settings) -> None:
    by_day: dict[date, list[str]] = {}
    for day, order_id, customer, ordered, amount, status in EXTRA_LINES:
        quantity = "-1" if amount.startswith("-") else "1"
        price = amount.removeprefix("-")
        by_day.setdefault(day, []).append(
            f"{order_id},1,{customer},{ordered},XSKU,{quantity},{price},{amount},CNY,{status}"
        )
    for day, rows in by_day.items():
        write_csv(settings.paths.incoming / f"sales_{day:%Y%m%d}_xcheck.csv", [WEB_HEADER, *rows])


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    root = tmp_path_factory.mktemp("lifetimes")
    generate(root, start=START, days=DAYS, customers=CUSTOMERS, seed=SEED)
    settings = with_paths(Settings(), root).model_copy(
        update={
            "scoring": ScoringConfig(window_days=WINDOW),
        }
    )
    _write_extra_exports(settings)
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        ingest_date(settings, day)
        score_date(settings, day)

    lines = pd.DataFrame(read_lake(settings, "order_lines"))
    lines = lines[lines["customer_id"].notna() & lines["line_kind"].isin(["sale", "return"])]
    export_date = pd.to_datetime(lines["export_date"])
    order_date = pd.to_datetime(lines["order_date"])
    late_days = -(-settings.ingest.late_tolerance_hours // 24)
    customer_lines = pd.DataFrame(
        {
            "customer_id": lines["customer_id"].astype(str),
            "kind": lines["line_kind"],
            "export_date": export_date,
            "order_date": order_date,
            "activity_date": order_date.clip(
                lower=export_date - pd.Timedelta(days=late_days), upper=export_date
            ),
            "amount": lines["amount"].astype(float),
        }
    )
    segments = pd.DataFrame(read_lake(settings, "customer_segments"))
    segments["customer_id"] = segments["customer_id"].astype(str)
    return Scored(customer_lines, segments, settings.scoring.window_days)


def _ours(scored: Scored, as_of: date) -> pd.DataFrame:
    rows = scored.segments[scored.segments["as_of_date"] == as_of]
    assert len(rows) > 0
    return rows.set_index("customer_id")


def _known(scored: Scored, as_of: date) -> pd.DataFrame:
    """The lines scoring as of ``as_of`` knows: those exported up to that date."""
    return scored.lines[scored.lines["export_date"] <= pd.Timestamp(as_of)]


def _in_window(scored: Scored, lines: pd.DataFrame, as_of: date) -> pd.DataFrame:
    first_day = pd.Timestamp(as_of - timedelta(days=scored.window_days - 1))
    return lines[lines["activity_date"] >= first_day]


def _summary(lines: pd.DataFrame, as_of: date, *, include_first: bool) -> pd.DataFrame:
    sales = lines[lines["kind"] == "sale"]
    return summary_data_from_transaction_data(
        sales,
        "customer_id",
        "activity_date",
        monetary_value_col="amount",
        observation_period_end=pd.Timestamp(as_of),
        freq="D",
        include_first_transaction=include_first,
    )


def _differences(ours: dict[str, object], theirs: dict[str, object]) -> dict[str, object]:
    """Customers whose values differ, with (ours, lifetimes'); both have the same keys."""
    assert ours.keys() == theirs.keys()
    return {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]}


def test_the_hand_added_lines_landed_and_need_the_clamping(scored: Scored) -> None:
    extra = scored.lines[scored.lines["customer_id"].str.startswith("X")]
    late = extra[extra["order_date"] < extra["export_date"]]
    early = extra[extra["order_date"] > extra["export_date"]]

    assert len(extra) == len(EXTRA_LINES)
    assert len(late) == 2
    assert list(early["activity_date"]) == [pd.Timestamp("2025-03-31")]
    assert (scored.lines["activity_date"] <= scored.lines["export_date"]).all()


@pytest.mark.parametrize("as_of", AS_OF, ids=str)
def test_recency_and_tenure_agree_for_every_customer(scored: Scored, as_of: date) -> None:
    ours = _ours(scored, as_of)
    theirs = _summary(_known(scored, as_of), as_of, include_first=False)

    # Scored exactly: the customers with a sale line (return-only X0000004 is in neither).
    assert set(ours.index) == set(theirs.index)
    assert "X0000004" not in ours.index
    our_rt = {c: (r.recency_days, r.tenure_days) for c, r in ours.iterrows()}
    their_rt = {c: (r["T"] - r["recency"], r["T"]) for c, r in theirs.iterrows()}
    assert _differences(our_rt, their_rt) == {}


@pytest.mark.parametrize("as_of", AS_OF, ids=str)
def test_window_frequency_agrees_for_every_customer(scored: Scored, as_of: date) -> None:
    ours = _ours(scored, as_of)
    window = _in_window(scored, _known(scored, as_of), as_of)
    theirs = _summary(window, as_of, include_first=True)

    buyers = ours[ours["frequency"] > 0]
    assert set(buyers.index) == set(theirs.index)
    assert _differences(buyers["frequency"].to_dict(), theirs["frequency"].to_dict()) == {}


@pytest.mark.parametrize("as_of", AS_OF, ids=str)
def test_window_monetary_agrees_for_customers_without_returns(scored: Scored, as_of: date) -> None:
    ours = _ours(scored, as_of)
    window = _in_window(scored, _known(scored, as_of), as_of)
    returners = set(window.loc[window["kind"] == "return", "customer_id"])
    theirs = _summary(window, as_of, include_first=True)

    compared = [c for c in theirs.index if c not in returners]
    assert len(compared) > 0.8 * len(theirs)
    our_m = {c: ours.at[c, "monetary"] for c in compared}
    their_m = {
        c: Decimal(f"{theirs.at[c, 'monetary_value'] * theirs.at[c, 'frequency']:.2f}")
        for c in compared
    }
    assert _differences(our_m, their_m) == {}


@pytest.mark.parametrize("as_of", AS_OF[:2], ids=str)
def test_while_the_window_holds_all_history_frequency_is_repeat_periods_plus_one(
    scored: Scored, as_of: date
) -> None:
    assert (as_of - START).days < scored.window_days
    ours = _ours(scored, as_of)
    theirs = _summary(_known(scored, as_of), as_of, include_first=False)

    assert _differences(ours["frequency"].to_dict(), (theirs["frequency"] + 1).to_dict()) == {}


def test_the_hand_added_customers(scored: Scored) -> None:
    """What the clamping and the export cut-off change, customer by customer."""
    jan31, mar1, end = (_ours(scored, as_of) for as_of in AS_OF)

    assert jan31.at["X0000001", "recency_days"] == 1  # the 01-31 purchase is not known yet
    assert mar1.at["X0000001", "recency_days"] == 29
    assert end.at["X0000002", "frequency"] == 2  # 03-01 and 03-29, in three exports
    assert end.at["X0000003", "frequency"] == 2  # 03-31 (stamped 04-01 00:30) and 04-01
    assert end.at["X0000003", "recency_days"] == 9
    assert "X0000004" not in end.index
