"""Exchange rates of the accepted currencies into the reporting currency.

``source.exchange_rates_file`` is a CSV with a header ``rate_date,currency,rate``: one
unit of ``currency`` is worth ``rate`` units of the reporting currency (``source.currency``)
on ``rate_date``, the local calendar date of the order. One rate per currency per day; a
line whose day has no rate is quarantined (``unconvertible_currency``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.config import Settings
from pipeline.errors import PipelineError

RATES_TABLE = "exchange_rates"


class ExchangeRatesError(PipelineError):
    """The exchange rates file is missing or malformed."""


def rates_path(settings: Settings) -> Path | None:
    name = settings.source.exchange_rates_file
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else settings.paths.incoming / path


def load_exchange_rates(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Create ``exchange_rates`` (rate_date, currency, rate): empty without a rates file.

    Raises:
        ExchangeRatesError: the file is missing, unreadable, has a non-positive rate or
            two rates for one currency and day.
    """
    con.execute(
        f"create or replace temp table {RATES_TABLE}"
        " (rate_date date, currency varchar, rate decimal(18, 8))"
    )
    path = rates_path(settings)
    if path is None:
        return
    if not path.is_file():
        raise ExchangeRatesError(f"exchange rates file {path} does not exist")
    try:
        con.execute(
            f"insert into {RATES_TABLE} select rate_date, upper(trim(currency)), rate"
            " from read_csv($path, header = true, auto_detect = false,"
            " columns = {'rate_date': 'DATE', 'currency': 'VARCHAR', 'rate': 'DECIMAL(18, 8)'})",
            {"path": str(path)},
        )
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        raise ExchangeRatesError(f"exchange rates file {path}: {first}") from None
    problems = con.execute(
        f"select currency, rate_date, count(*), min(rate) from {RATES_TABLE}"
        " group by all having count(*) > 1 or min(rate) <= 0 or currency is null"
        " or rate_date is null order by all limit 1"
    ).fetchall()
    if problems:
        currency, rate_date, count, rate = problems[0]
        what = f"{count} rates" if count > 1 else f"rate {rate}"
        raise ExchangeRatesError(
            f"exchange rates file {path}: {what} for {currency} on {rate_date}"
            " (one positive rate per currency per day)"
        )
