"""The CDNOW purchase log as the shop's daily exports, and its holdout truth.

CDNOW (Fader and Hardie's benchmark of buy-till-you-die models) is every purchase, from
1997-01-01 to 1998-06-30, of the customers who first bought at CDNOW in the first quarter
of 1997: ``CDNOW_master.txt`` (23,570 customers, 69,659 purchases) and its 1/10th sample
``CDNOW_sample.txt`` (2,357 customers, 6,919 purchases), shipped with the ``lifetimes``
wheel (a dev dependency; its ``datasets`` module needs ``pkg_resources``, so the files are
found without importing it). Columns, whitespace-separated: customer id, (sample only) the
customer's id within the sample, the date as yyyymmdd, the number of CDs, the dollar amount.

Each CDNOW row becomes one order of one line, exported on its date, in a CSV file per day
named by ``source.file_pattern`` (``sales_19970101.csv``):

- ``order_id`` ``CD`` + the row's number in the raw file (unique across the whole log);
  ``line_id`` 1; ``customer_id`` the CDNOW id as written (``00004``);
- ``ordered_at`` noon local time (``source.timezone``) of the row's date;
- ``product_id`` ``CD``; ``status`` ``completed`` (a sale: neither a return nor a
  cancellation status); ``currency`` ``source.currency`` (the dollars are relabelled, not
  converted: only relative amounts matter here);
- ``amount`` the dollar amount; ``quantity`` the number of CDs and ``unit_price`` the
  amount divided by it, when that is a whole number of cents; otherwise quantity 1 and
  unit price = amount, so that amount = quantity x unit price holds exactly on every line.
  The number of rows so rewritten is reported (:class:`ExportSummary`).

Every day from the first in the log to ``end`` gets a file: a header-only file on a day
without purchases (an empty day in the ledger), so ``ingest.missing_export`` keeps its
default ``"fail"`` and a missing file is still an error.

Rows of 0.00 dollars (8 in the sample, 80 in the master) are kept: the ingest accepts
them as sales (quantity 1, amount 0: no sign mismatch), and they count as purchase days,
as in the BTYD literature, which counts every CDNOW transaction.

``python -m pipeline.realdata.cdnow --root DIR`` prepares a folder, runs the pipeline over
every day up to ``--end`` and prints the comparison of the lifecycle with its peers on the
holdout (``pipeline.realdata.peers``).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from pipeline.config import PathsConfig, Settings

if TYPE_CHECKING:
    import pandas as pd

Sample = Literal["sample", "master"]
SAMPLES: tuple[Sample, ...] = ("sample", "master")
FIRST_DAY = date(1997, 1, 1)
# The split of the BTYD papers: 39 weeks of calibration, 39 weeks of holdout.
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)
EXPORT_HEADER = (
    "order_id", "line_id", "customer_id", "ordered_at", "product_id",
    "quantity", "unit_price", "amount", "currency", "status",
)  # fmt: skip
ORDER_PREFIX = "CD"
PRODUCT_ID = "CD"
SALE_STATUS = "completed"
LOCAL_TIME = "12:00:00"
# The pseudonym secret of the evaluation's published tables (nothing here is personal).
KEY_SECRET = "cdnow-evaluation-only"
_FILES = {"sample": "CDNOW_sample.txt", "master": "CDNOW_master.txt"}


class CdnowError(RuntimeError):
    """The CDNOW files cannot be found or read, or the request makes no sense."""


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`write_exports` wrote."""

    files: int
    rows: int
    customers: int
    days_without_purchase: int
    zero_amount_rows: int
    # Rows whose amount is no whole number of cents per CD: exported as quantity 1.
    quantity_one_rows: int


def raw_file(sample: Sample) -> Path:
    """The CDNOW file inside the installed ``lifetimes`` wheel."""
    if sample not in SAMPLES:
        raise CdnowError(f"sample must be one of {', '.join(SAMPLES)}; got {sample!r}")
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise CdnowError("the lifetimes package (a dev dependency) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / _FILES[sample]
    if not path.is_file():
        raise CdnowError(f"{path} not found in the installed lifetimes package")
    return path


def read_purchases(sample: Sample = "sample") -> pd.DataFrame:
    """Every CDNOW row: ``row`` (1-based position in the file), ``customer_id`` (text),
    ``purchase_date`` (datetime64), ``cds``, ``amount_cents`` (int64), in file order."""
    import pandas as pd

    path = raw_file(sample)
    if sample == "sample":
        names = ["customer_id", "sample_id", "date", "cds", "amount"]
        header = None
    else:  # a header line: customer_id date number_of_cds dollar_value (CRLF line ends)
        names = ["customer_id", "date", "cds", "amount"]
        header = 0
    raw = pd.read_csv(path, sep=r"\s+", header=header, names=names, dtype=str)
    try:
        purchases = pd.DataFrame(
            {
                "row": range(1, len(raw) + 1),
                "customer_id": raw["customer_id"],
                "purchase_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                "cds": pd.to_numeric(raw["cds"]).astype("int64"),
                "amount_cents": (pd.to_numeric(raw["amount"]) * 100).round().astype("int64"),
            }
        )
    except (ValueError, TypeError) as error:
        raise CdnowError(f"{path}: unexpected content: {error}") from None
    if purchases["customer_id"].isna().any() or (purchases["cds"] <= 0).any():
        raise CdnowError(f"{path}: a row without customer id or with no CD")
    if (purchases["amount_cents"] < 0).any():
        raise CdnowError(f"{path}: a negative amount")
    return purchases


def export_lines(purchases: pd.DataFrame, currency: str) -> pd.Series:
    """One CSV line (without line end) per purchase, in the order of ``purchases``."""
    import numpy as np

    cents = purchases["amount_cents"].to_numpy()
    cds = purchases["cds"].to_numpy()
    exact = cents % cds == 0
    quantity = np.where(exact, cds, 1)
    unit_cents = np.where(exact, cents // cds, cents)
    columns = [
        ORDER_PREFIX + purchases["row"].astype(str).str.zfill(6),
        "1",
        purchases["customer_id"],
        purchases["purchase_date"].dt.strftime("%Y-%m-%d") + " " + LOCAL_TIME,
        PRODUCT_ID,
        _text(quantity, purchases.index),
        _money(unit_cents, purchases.index),
        _money(cents, purchases.index),
        currency,
        SALE_STATUS,
    ]
    line = columns[0]
    for column in columns[1:]:
        line = line + "," + column
    return line


def _text(values: object, index: pd.Index) -> pd.Series:
    import pandas as pd

    return pd.Series(values, index=index, dtype="int64").astype(str)


def _money(cents: object, index: pd.Index) -> pd.Series:
    """Exact ``12.30`` text from integer cents (no float formatting)."""
    import pandas as pd

    whole = pd.Series(cents, index=index, dtype="int64")
    return (whole // 100).astype(str) + "." + (whole % 100).astype(str).str.zfill(2)


def write_exports(
    purchases: pd.DataFrame, settings: Settings, first: date, end: date
) -> ExportSummary:
    """Write one export file per day from ``first`` to ``end`` into ``paths.incoming``
    (header-only on days without purchases); purchases after ``end`` are left out."""
    import numpy as np
    import pandas as pd

    if end < first:
        raise CdnowError(f"end {end} is before the first day {first}")
    incoming = settings.paths.incoming
    incoming.mkdir(parents=True, exist_ok=True)
    dates = purchases["purchase_date"].dt.date
    kept = purchases[(dates >= first) & (dates <= end)].sort_values(["purchase_date", "row"])
    lines = (export_lines(kept, settings.source.currency) + "\n").to_numpy()
    days = pd.date_range(first, end, freq="D")
    # Row positions of each day's first line: the days are in order, so one search.
    bounds = np.searchsorted(kept["purchase_date"].to_numpy(), days.to_numpy(), side="left")
    bounds = np.append(bounds, len(kept))
    header = ",".join(EXPORT_HEADER) + "\n"
    empty_days = 0
    for i, day in enumerate(days):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        empty_days += start == stop
        body = "".join(lines[start:stop])
        name = export_file_name(settings, day.date())
        (incoming / name).write_text(header + body, encoding="utf-8")
    cents, cds = kept["amount_cents"].to_numpy(), kept["cds"].to_numpy()
    return ExportSummary(
        files=len(days),
        rows=len(kept),
        customers=int(kept["customer_id"].nunique()),
        days_without_purchase=empty_days,
        zero_amount_rows=int((cents == 0).sum()),
        quantity_one_rows=int((cents % cds != 0).sum()),
    )


def export_file_name(settings: Settings, day: date) -> str:
    """The day's file name: ``source.file_pattern`` formatted, its glob part dropped."""
    name = settings.source.file_pattern.format(date=day).rstrip("*")
    if any(char in name for char in "*?[]/\\"):
        raise CdnowError(
            f"source.file_pattern {settings.source.file_pattern!r} must be a file name "
            "ending in at most one '*' to name the CDNOW exports"
        )
    return name + ".csv"


def cdnow_settings(root: Path, base: Settings | None = None) -> Settings:
    """``base`` (default: the built-in defaults) with every path under ``root`` and the
    evaluation's pseudonym secret."""
    settings = base or Settings()
    paths = PathsConfig.under(root)
    publish = settings.publish.model_copy(update={"key_secret": SecretStr(KEY_SECRET)})
    return settings.model_copy(update={"paths": paths, "publish": publish})


def prepare_cdnow(
    root: Path,
    sample: Sample = "sample",
    end: date = CALIBRATION_END,
    *,
    base: Settings | None = None,
) -> Settings:
    """Write CDNOW's daily exports from 1997-01-01 to ``end`` under ``root/incoming``;
    the settings that run the pipeline on them (every path under ``root``).

    ``root`` must be empty or absent: another run's lake or models would mix in.
    """
    root = root.resolve()
    if root.exists() and any(root.iterdir()):
        raise CdnowError(f"{root} is not empty: prepare CDNOW in a new folder")
    settings = cdnow_settings(root, base)
    write_exports(read_purchases(sample), settings, FIRST_DAY, end)
    return settings


def holdout_truth(sample: Sample, cutoff: date, end: date = HOLDOUT_END) -> pd.DataFrame:
    """Straight from the raw file, one row per customer who bought on or before
    ``cutoff``: ``customer_id``, ``holdout_purchase_days`` (distinct days with a purchase
    in (cutoff, end]), ``next_purchase_date`` (the first of them, or NaT) and
    ``came_back`` (at least one). Sorted by customer_id."""
    if end <= cutoff:
        raise CdnowError(f"the holdout end {end} must be after the cutoff {cutoff}")
    purchases = read_purchases(sample)
    dates = purchases["purchase_date"].dt.date
    known = purchases.loc[dates <= cutoff, "customer_id"].drop_duplicates()
    later = purchases[(dates > cutoff) & (dates <= end)]
    per_customer = later.groupby("customer_id")["purchase_date"].agg(["nunique", "min"])
    truth = known.to_frame().merge(
        per_customer, how="left", left_on="customer_id", right_index=True
    )
    truth = truth.rename(columns={"nunique": "holdout_purchase_days", "min": "next_purchase_date"})
    truth["holdout_purchase_days"] = truth["holdout_purchase_days"].fillna(0).astype("int64")
    truth["came_back"] = truth["holdout_purchase_days"] > 0
    return truth.sort_values("customer_id").reset_index(drop=True)


def run_pipeline(settings: Settings, end: date, start: date = FIRST_DAY) -> float:
    """Ingest, score, stage and publish every day from ``start`` to ``end`` (the CLI's
    backfill); the seconds it took."""
    from pipeline.steps import run_days

    began = time.perf_counter()
    run_days(settings, start, end)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    """``python -m pipeline.realdata.cdnow --root DIR [--sample master] [--end DATE]``."""
    import click

    from pipeline import console
    from pipeline.realdata import peers

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--root",
        type=click.Path(path_type=Path, file_okay=False),
        required=True,
        help="A new (empty) folder for the exports, the lake and everything else.",
    )
    @click.option("--sample", type=click.Choice(SAMPLES), default="sample", show_default=True)
    @click.option(
        "--end",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=CALIBRATION_END.isoformat(),
        show_default=True,
        help="The cutoff: the last day run; the holdout is the rest of the log.",
    )
    def command(root: Path, sample: Sample, end: datetime) -> None:
        """Run the pipeline on CDNOW up to END and judge it on the rest of the log."""
        cutoff = end.date()
        if not FIRST_DAY <= cutoff < HOLDOUT_END:
            raise click.BadParameter(f"must be within {FIRST_DAY} .. {HOLDOUT_END - timedelta(1)}")
        try:
            settings = prepare_cdnow(root, sample, cutoff)
        except CdnowError as error:
            raise click.ClickException(str(error)) from None
        seconds = run_pipeline(settings, cutoff)
        truth = holdout_truth(sample, cutoff)
        result = peers.evaluate(settings, truth, cutoff, HOLDOUT_END)
        console.out.print(
            f"CDNOW {sample}: {len(truth):,} customers, run {FIRST_DAY}..{cutoff} "
            f"in {seconds:.0f} s; holdout {cutoff + timedelta(1)}..{HOLDOUT_END}, "
            f"{truth['came_back'].mean():.1%} came back"
        )
        console.out.print(peers.format_report(result))

    command.main(args=argv, prog_name="python -m pipeline.realdata.cdnow")


if __name__ == "__main__":
    main()
