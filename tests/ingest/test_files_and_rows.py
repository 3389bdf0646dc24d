"""Issue 14: every matched file accounted for, nothing opened outside paths.incoming, the
file-level policy, and the row checks and source options real shops need.

Each test feeds real files and asserts the outcome, the reason, and that the file ledger
(``ingest_files``) and the row ledger (``ingest_ledger``) balance.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, SourceConfig
from pipeline.errors import BadFilesError, MissingExportError
from pipeline.ingest.run import ingest_date
from pipeline.ingest.status import lake_status
from pipeline.lake import Lake
from tests.support import WEB_HEADER, lake_bytes_but_file_ledger, read_lake, write_csv

DAY = date(2026, 11, 22)
GOOD = [
    "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed",
    "W2,1,C2,2026-11-22 11:30:00,P2,1,5.50,5.50,CNY,completed",
]
NAME = "sales_20261122_web.csv"


def _with(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with source/ingest keys changed (validated like a config file)."""
    source = settings.source.model_dump()
    ingest = settings.ingest.model_dump()
    for key, value in changes.items():
        (source if key in source else ingest)[key] = value
    return settings.model_copy(
        update={
            "source": SourceConfig(**source),
            "ingest": type(settings.ingest)(**ingest),
        }
    )


def _lenient(settings: Settings, **changes: Any) -> Settings:
    return _with(settings, on_bad_file="quarantine", **changes)


def _file_ledger(settings: Settings) -> dict[str, dict[str, object]]:
    return {str(row["source_file"]): row for row in read_lake(settings, "ingest_files")}


def _assert_balanced(
    settings: Settings, matched: set[str], day: date = DAY
) -> dict[str, dict[str, object]]:
    """Every matched path has exactly one file-ledger row; every ingested file balances."""
    rows = [row for row in read_lake(settings, "ingest_files") if row["export_date"] == day]
    names = [str(row["source_file"]) for row in rows]
    assert sorted(names) == sorted(matched), "one file ledger row per matched path"
    for row in rows:
        if row["outcome"] == "ingested":
            assert row["rows_in"] == (
                int(str(row["rows_accepted"]))
                + int(str(row["rows_quarantined"]))
                + int(str(row["rows_duplicate"]))
            )
        else:
            assert row["outcome"] in ("rejected", "skipped")
            assert row["outcome_reason"] and row["error"]
            assert row["rows_in"] is None
    for row in read_lake(settings, "ingest_ledger"):
        assert row["rows_in"] == (
            int(str(row["rows_accepted"]))
            + int(str(row["rows_quarantined"]))
            + int(str(row["rows_duplicate"]))
        )
    return {str(row["source_file"]): row for row in rows}


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging) if a FIFO is ever opened for reading."""

    def _hung(_signum: int, _frame: object) -> None:
        raise AssertionError("blocked opening a FIFO: a file was opened that must not be")

    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- 1. every matched path is accounted for ---------------------------------------------


@pytest.mark.parametrize("hidden", [".sales_20261122.csv", "..%2Fsales_20261122.csv"])
def test_a_hidden_name_alone_is_in_transfer_not_missing(settings: Settings, hidden: str) -> None:
    settings = _with(settings, file_pattern="*sales_{date:%Y%m%d}*")
    write_csv(settings.paths.incoming / hidden, [WEB_HEADER, *GOOD])

    with pytest.raises(BadFilesError, match="still in transfer") as failed:
        ingest_date(settings, DAY)

    assert "no export file" not in str(failed.value)
    ledger = _assert_balanced(settings, {hidden})
    assert (ledger[hidden]["outcome"], ledger[hidden]["outcome_reason"]) == (
        "skipped",
        "in_transfer",
    )
    assert read_lake(settings, "order_lines") == []


def test_a_hidden_name_beside_a_valid_file_is_never_lost_silently(settings: Settings) -> None:
    settings = _with(settings, file_pattern="*sales_{date:%Y%m%d}*")
    hidden = ".sales_20261122_store.csv"
    write_csv(settings.paths.incoming / NAME, [WEB_HEADER, *GOOD])
    write_csv(settings.paths.incoming / hidden, [WEB_HEADER, GOOD[0].replace("W1", "S9")])

    # The default policy fails the date: its rows would be missing.
    with pytest.raises(BadFilesError, match=r"\.sales_20261122_store\.csv: skipped"):
        ingest_date(settings, DAY)
    ledger = _assert_balanced(settings, {NAME, hidden})
    assert ledger[NAME]["outcome_reason"] == "date_failed"

    # Quarantining bad files: the valid file lands, the hidden one stays in the ledger
    # and in `status`.
    lenient = _lenient(settings, file_pattern="*sales_{date:%Y%m%d}*")
    report = ingest_date(lenient, DAY)
    ledger = _assert_balanced(settings, {NAME, hidden})
    assert ledger[hidden]["outcome_reason"] == "in_transfer"
    assert [row["source_file"] for row in report.files_not_ingested] == [hidden]
    status = lake_status(Lake(settings.paths.lake), DAY, DAY)
    assert [(row["source_file"], row["outcome"]) for row in status.files_not_ingested] == [
        (hidden, "skipped")
    ]

    # Once renamed (or when hidden names are read), its rows land.
    ingest_date(_with(settings, hidden_files="ingest"), DAY)
    assert {row["order_id"] for row in read_lake(settings, "order_lines")} == {"W1", "W2", "S9"}
    _assert_balanced(settings, {NAME, hidden})


def test_the_export_wait_keeps_waiting_for_a_file_in_transfer(settings: Settings) -> None:
    from pipeline.schedule.dates import export_deadline
    from pipeline.schedule.tasks import exports_arrived

    write_csv(settings.paths.incoming / NAME, [WEB_HEADER, *GOOD])
    write_csv(settings.paths.incoming / f".{NAME}.part", [WEB_HEADER, *GOOD])
    settings = _with(settings, file_pattern="*sales_{date:%Y%m%d}*")
    before_deadline = export_deadline(settings, DAY) - timedelta(minutes=1)

    assert exports_arrived(settings, DAY, before_deadline) == []
    (settings.paths.incoming / f".{NAME}.part").rename(
        settings.paths.incoming / "sales_20261122_2.csv"
    )
    assert exports_arrived(settings, DAY, before_deadline) == ["sales_20261122_2.csv", NAME]


# -- 2. nothing outside paths.incoming is opened ----------------------------------------


def test_a_symlink_out_of_the_folder_is_never_opened(
    settings: Settings, tmp_path: Path, no_hang: None
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    fifo = outside / "pipe.csv"
    os.mkfifo(fifo)  # opening it for reading would block: the test would hang, then fail
    secret = outside / "secret.csv"
    secret.write_text("TOP-SECRET-FIRST-LINE\n")
    incoming = settings.paths.incoming
    write_csv(incoming / NAME, [WEB_HEADER, *GOOD])
    (incoming / "sales_20261122_pipe.csv").symlink_to(fifo)
    (incoming / "sales_20261122_passwd.csv").symlink_to(secret)
    (incoming / "sales_20261122_up.csv").symlink_to(Path("..") / "elsewhere" / "secret.csv")

    with pytest.raises(BadFilesError) as failed:
        ingest_date(settings, DAY)
    assert "TOP-SECRET" not in str(failed.value)
    assert "outside paths.incoming" in str(failed.value)

    report = ingest_date(_lenient(settings), DAY)

    links = {"sales_20261122_pipe.csv", "sales_20261122_passwd.csv", "sales_20261122_up.csv"}
    ledger = _assert_balanced(settings, {NAME, *links})
    for name in links:
        assert ledger[name]["outcome"] == "rejected"
        assert ledger[name]["outcome_reason"] == "symlink_outside_incoming"
        assert "TOP-SECRET" not in str(ledger[name]["error"])
        assert ledger[name]["file_sha256"] is None  # never read
    assert report.total("rows_accepted") == 2


def test_symlinks_inside_the_folder_follow_the_setting(settings: Settings) -> None:
    incoming = settings.paths.incoming
    (incoming / "archive").mkdir()
    write_csv(incoming / "archive" / "web.csv", [WEB_HEADER, *GOOD])
    (incoming / NAME).symlink_to(Path("archive") / "web.csv")

    ingest_date(settings, DAY)
    assert _assert_balanced(settings, {NAME})[NAME]["outcome"] == "ingested"
    assert len(read_lake(settings, "order_lines")) == 2

    refused = _lenient(settings, symlinks="refuse", missing_export="empty")
    ingest_date(refused, DAY)
    ledger = _assert_balanced(settings, {NAME})
    assert ledger[NAME]["outcome_reason"] == "symlink_refused"
    assert read_lake(settings, "order_lines") == []


def test_dangling_links_fifos_and_folders_are_rejected_with_a_row(
    settings: Settings, no_hang: None
) -> None:
    incoming = settings.paths.incoming
    write_csv(incoming / NAME, [WEB_HEADER, *GOOD])
    (incoming / "sales_20261122_gone.csv").symlink_to(incoming / "does-not-exist.csv")
    os.mkfifo(incoming / "sales_20261122_fifo.csv")
    (incoming / "sales_20261122_archive").mkdir()

    ingest_date(_lenient(settings), DAY)

    ledger = _assert_balanced(
        settings,
        {NAME, "sales_20261122_gone.csv", "sales_20261122_fifo.csv", "sales_20261122_archive"},
    )
    assert ledger["sales_20261122_gone.csv"]["outcome_reason"] == "dangling_symlink"
    assert ledger["sales_20261122_fifo.csv"]["outcome_reason"] == "not_regular_file"
    assert "FIFO" in str(ledger["sales_20261122_fifo.csv"]["error"])
    assert ledger["sales_20261122_archive"]["outcome_reason"] == "not_regular_file"
    assert len(read_lake(settings, "order_lines")) == 2


# -- 3. the file-level policy and wrong field counts -------------------------------------


def test_one_broken_file_fails_the_date_by_default_or_is_quarantined(settings: Settings) -> None:
    incoming = settings.paths.incoming
    write_csv(incoming / NAME, [WEB_HEADER, *GOOD])
    ingest_date(settings, DAY)
    before = lake_bytes_but_file_ledger(settings)
    (incoming / "sales_20261122_zero.csv").write_bytes(b"")

    with pytest.raises(BadFilesError, match="empty file"):
        ingest_date(settings, DAY)
    assert lake_bytes_but_file_ledger(settings) == before, "the lake keeps its partitions"
    ledger = _assert_balanced(settings, {NAME, "sales_20261122_zero.csv"})
    assert ledger["sales_20261122_zero.csv"]["outcome_reason"] == "empty_file"
    assert ledger[NAME]["outcome"] == "skipped"
    # `status` shows the rejected file of the failed attempt.
    status = lake_status(Lake(settings.paths.lake), DAY, DAY)
    assert [(row["source_file"], row["outcome_reason"]) for row in status.files_not_ingested] == [
        (NAME, "date_failed"),
        ("sales_20261122_zero.csv", "empty_file"),
    ]

    report = ingest_date(_lenient(settings), DAY)

    ledger = _assert_balanced(settings, {NAME, "sales_20261122_zero.csv"})
    assert (ledger[NAME]["outcome"], ledger[NAME]["rows_accepted"]) == ("ingested", 2)
    assert ledger["sales_20261122_zero.csv"]["outcome"] == "rejected"
    assert report.total("rows_accepted") == 2


def test_only_the_rejected_files_are_left_out(settings: Settings) -> None:
    incoming = settings.paths.incoming
    write_csv(incoming / NAME, [WEB_HEADER, *GOOD])
    write_csv(incoming / "sales_20261122_b.csv", ["a,b", "1,2"])
    write_csv(incoming / "sales_20261123_b.csv", ["a,b", "1,2"])

    # A day whose only file is rejected has no export: the missing_export rule decides.
    with pytest.raises(MissingExportError, match="header not recognised"):
        ingest_date(_lenient(settings), DAY + timedelta(days=1))
    ledger = _assert_balanced(settings, {"sales_20261123_b.csv"}, DAY + timedelta(days=1))
    assert ledger["sales_20261123_b.csv"]["outcome_reason"] == "header_not_recognised"
    ingest_date(_lenient(settings), DAY)
    ledger = _assert_balanced(settings, {NAME, "sales_20261122_b.csv"})
    assert ledger["sales_20261122_b.csv"]["outcome_reason"] == "header_not_recognised"
    assert ledger[NAME]["rows_accepted"] == 2


def test_rows_with_a_wrong_field_count_are_quarantined_with_their_line(settings: Settings) -> None:
    lines = [
        "Daily export, shop 12",  # a title row above the header
        WEB_HEADER,
        GOOD[0],
        "W3,1,C3,2026-11-22 10:00:00,P1,1,1,1,CNY,ok,extra",
        GOOD[1],
        "W4,1,C4,2026-11-22 10:0",
        "W5,1,C5,2026-11-22 12:00:00,P5,1,3.00,3.00,CNY,completed",
    ]
    write_csv(settings.paths.incoming / NAME, lines)

    ingest_date(_with(settings, skip_rows=1), DAY)

    _assert_balanced(settings, {NAME})
    quarantined = read_lake(settings, "quarantined_order_lines")
    assert [
        (row["quarantine_reason"], row["source_row"], row["source_line"], row["raw_text"])
        for row in quarantined
    ] == [
        ("wrong_field_count", 2, 4, lines[3]),
        ("wrong_field_count", 4, 6, lines[5]),
    ]
    accepted = {row["order_id"]: row["source_row"] for row in read_lake(settings, "order_lines")}
    assert accepted == {"W1": 1, "W2": 3, "W5": 5}
    (ledger,) = read_lake(settings, "ingest_ledger")
    assert (ledger["rows_in"], ledger["rows_accepted"], ledger["rows_quarantined"]) == (5, 3, 2)


# -- 4. row checks with their own reasons ------------------------------------------------

ROW_CHECKS = [
    ("invalid_character", "W3,1,C3,2026-11-22 10:00:00,P\x001,1,10.00,10.00,CNY,completed"),
    ("invalid_character", "W3,1,C3,2026-11-22 10:00:00,P1\x1b[0m,1,10.00,10.00,CNY,completed"),
    ("outlier", "W3,1,C3,2026-11-22 10:00:00,P1,1000000000,1.00,1000000000.00,CNY,completed"),
    ("outlier", "W3,1,C3,2026-11-22 10:00:00,P1,1,99999999.00,99999999.00,CNY,completed"),
    ("repeated_header", WEB_HEADER),
    ("footer_row", "Total,,,,,,,25.50,,"),
    ("footer_row", "合计,,,,,3,,25.50,,"),
    ("unknown_currency", "W3,1,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,US$,completed"),
    ("unaccepted_currency", "W3,1,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,JPY,completed"),
]


@pytest.mark.parametrize(
    ("reason", "bad_line"), ROW_CHECKS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(ROW_CHECKS)]
)
def test_row_check_quarantines_with_its_reason(
    settings: Settings, reason: str, bad_line: str
) -> None:
    write_csv(settings.paths.incoming / NAME, [WEB_HEADER, *GOOD, bad_line])

    report = ingest_date(settings, DAY)

    quarantined = read_lake(settings, "quarantined_order_lines")
    assert [(row["quarantine_reason"], row["source_row"]) for row in quarantined] == [(reason, 3)]
    assert {row["order_id"] for row in read_lake(settings, "order_lines")} == {"W1", "W2"}
    assert report.quarantine_reasons == {reason: 1}
    _assert_balanced(settings, {NAME})


INCONSISTENT = [
    "W3,1,C3,2026-11-22 10:00:00,P1,1,259.00,25900.00,CNY,completed",
    "W4,1,C4,2026-11-22 10:00:00,P1,2,7.50,0.01,CNY,completed",
]


def test_an_inconsistent_amount_is_flagged_or_quarantined(settings: Settings) -> None:
    consistent = "W5,1,C5,2026-11-22 10:00:00,P1,3,0.33,0.99,CNY,completed"  # rounding
    write_csv(settings.paths.incoming / NAME, [WEB_HEADER, *GOOD, *INCONSISTENT, consistent])

    ingest_date(settings, DAY)  # default: flag
    flags = {
        row["order_id"]: row["is_amount_inconsistent"] for row in read_lake(settings, "order_lines")
    }
    assert flags == {"W1": False, "W2": False, "W3": True, "W4": True, "W5": False}
    _assert_balanced(settings, {NAME})

    ingest_date(_with(settings, inconsistent_amount="quarantine"), DAY)
    quarantined = read_lake(settings, "quarantined_order_lines")
    assert [(row["order_id"], row["quarantine_reason"]) for row in quarantined] == [
        ("W3", "inconsistent_amount"),
        ("W4", "inconsistent_amount"),
    ]
    _assert_balanced(settings, {NAME})


def test_a_renamed_amount_column_marks_the_computed_amounts(settings: Settings) -> None:
    write_csv(
        settings.paths.incoming / NAME,
        [WEB_HEADER.replace("amount", "line_amount_incl_tax"), *GOOD],
    )

    ingest_date(settings, DAY)

    lines = read_lake(settings, "order_lines")
    assert [(row["amount"], row["is_amount_derived"]) for row in lines] == [
        (Decimal("20.0000"), True),
        (Decimal("5.5000"), True),
    ]
    _assert_balanced(settings, {NAME})


BERLIN_SPRING = date(2026, 3, 29)  # 02:00-03:00 does not exist
BERLIN_AUTUMN = date(2026, 10, 25)  # 02:00-03:00 occurs twice


@pytest.mark.parametrize("policy", ["flag", "quarantine"])
def test_dst_gap_and_fold_times_are_flagged_or_quarantined(settings: Settings, policy: str) -> None:
    berlin = _with(
        settings,
        timezone="Europe/Berlin",
        currency="EUR",
        accepted_currencies=["EUR"],
        dst_local_times=policy,
    )
    spring = [
        "S1,1,C1,2026-03-29 01:59:59,P1,1,1.00,1.00,EUR,ok",
        "S2,1,C1,2026-03-29 02:59:59,P1,1,1.00,1.00,EUR,ok",  # does not exist
        "S3,1,C1,2026-03-29 03:00:00,P1,1,1.00,1.00,EUR,ok",
    ]
    write_csv(settings.paths.incoming / "sales_20260329.csv", [WEB_HEADER, *spring])
    autumn = [
        "A1,1,C1,2026-10-25 02:30:00,P1,1,1.00,1.00,EUR,ok",  # occurs twice
        "A2,1,C1,2026-10-25 03:00:00,P1,1,1.00,1.00,EUR,ok",
    ]
    write_csv(settings.paths.incoming / "sales_20261025.csv", [WEB_HEADER, *autumn])

    ingest_date(berlin, BERLIN_SPRING)
    ingest_date(berlin, BERLIN_AUTUMN)

    lines = {row["order_id"]: row for row in read_lake(settings, "order_lines")}
    quarantined = {
        row["order_id"]: row["quarantine_reason"]
        for row in read_lake(settings, "quarantined_order_lines")
    }
    if policy == "quarantine":
        assert quarantined == {"S2": "nonexistent_local_time", "A1": "ambiguous_local_time"}
        assert sorted(lines) == ["A2", "S1", "S3"]
    else:
        assert quarantined == {}
        assert lines["S2"]["is_nonexistent_local_time"] is True
        assert lines["A1"]["is_ambiguous_local_time"] is True
        # The documented resolution: the gap with the offset before the switch (+01:00),
        # the fold as its second occurrence (standard time, +01:00).
        assert lines["S2"]["ordered_at"] == datetime(2026, 3, 29, 1, 59, 59, tzinfo=UTC)
        assert lines["A1"]["ordered_at"] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
        flagged = {
            name
            for name, row in lines.items()
            if row["is_nonexistent_local_time"] or row["is_ambiguous_local_time"]
        }
        assert flagged == {"S2", "A1"}


# -- 5. source options -------------------------------------------------------------------


def test_cancellation_marker_thousands_separator_and_aliases(settings: Settings) -> None:
    options = _with(settings, cancellation_order_prefix="C", thousands_separator=",")
    lines = [
        WEB_HEADER,
        'W1,1,C1,2026-11-22 10:00:00,P1,2,"1,250.00","2,500.00",RMB,completed',
        "C536379,1,C1,2026-11-22 11:00:00,P1,-1,10.00,-10.00,人民币,completed",
        "W3,1,C2,2026-11-22 12:00:00,P2,1,5.00,5.00,¥,completed",
    ]
    write_csv(settings.paths.incoming / NAME, lines)

    ingest_date(options, DAY)

    rows = {row["order_id"]: row for row in read_lake(settings, "order_lines")}
    assert rows["W1"]["amount"] == Decimal("2500.0000")
    assert rows["W1"]["unit_price"] == Decimal("1250.0000")
    assert rows["C536379"]["line_kind"] == "cancellation"
    assert {row["currency"] for row in rows.values()} == {"CNY"}
    assert {row["source_currency"] for row in rows.values()} == {None}  # nothing converted
    _assert_balanced(settings, {NAME})


def test_decimal_comma_with_dot_thousands(settings: Settings) -> None:
    options = _with(settings, decimal_separator=",", thousands_separator=".", delimiter=";")
    (settings.paths.incoming / NAME).write_text(
        WEB_HEADER.replace(",", ";")
        + "\nW1;1;C1;2026-11-22 10:00:00;P1;2;1.250,50;2.501,00;CNY;completed\n"
    )

    ingest_date(options, DAY)

    (row,) = read_lake(settings, "order_lines")
    assert (row["unit_price"], row["amount"]) == (Decimal("1250.5000"), Decimal("2501.0000"))


def test_accepted_currencies_are_converted_with_dated_rates(settings: Settings) -> None:
    incoming = settings.paths.incoming
    (incoming / "rates.csv").write_text(
        "rate_date,currency,rate\n2026-11-22,USD,7.1000\n2026-11-21,USD,7.0000\n"
    )
    options = _with(
        settings, accepted_currencies=["CNY", "USD", "EUR"], exchange_rates_file="rates.csv"
    )
    lines = [
        WEB_HEADER,
        *GOOD,
        "U1,1,C3,2026-11-22 09:00:00,P1,2,5.00,10.00,USD,completed",
        "U2,1,C3,2026-11-21 23:00:00,P1,1,10.00,10.00,usd,completed",  # the day before
        "E1,1,C4,2026-11-22 09:00:00,P1,1,10.00,10.00,EUR,completed",  # no EUR rate
    ]
    write_csv(incoming / NAME, lines)

    ingest_date(options, DAY)

    rows = {row["order_id"]: row for row in read_lake(settings, "order_lines")}
    assert {row["currency"] for row in rows.values()} == {"CNY"}
    u1 = rows["U1"]
    assert (u1["amount"], u1["unit_price"], u1["source_amount"], u1["source_currency"]) == (
        Decimal("71.0000"),
        Decimal("35.5000"),
        Decimal("10.0000"),
        "USD",
    )
    assert u1["exchange_rate"] == Decimal("7.10000000")
    assert rows["U2"]["amount"] == Decimal("70.0000")
    assert rows["W1"]["exchange_rate"] is None
    quarantined = read_lake(settings, "quarantined_order_lines")
    assert [(row["order_id"], row["quarantine_reason"]) for row in quarantined] == [
        ("E1", "unconvertible_currency")
    ]
    _assert_balanced(settings, {NAME})


def test_a_second_currency_needs_a_rates_file() -> None:
    with pytest.raises(ValueError, match="exchange_rates_file"):
        SourceConfig(accepted_currencies=["CNY", "USD"])
    with pytest.raises(ValueError, match="must differ"):
        SourceConfig(decimal_separator=",", thousands_separator=",")


def test_master_files_are_in_the_file_ledger_too(settings: Settings) -> None:
    incoming = settings.paths.incoming
    write_csv(incoming / NAME, [WEB_HEADER, *GOOD])
    write_csv(
        incoming / "customers_20261122.csv",
        ["customer_id,signup_date", "C1,2026-11-01", "C1,2026-11-01", ",2026-11-02"],
    )
    (incoming / "customers_20261122_b.csv").write_bytes(b"")

    ingest_date(_lenient(settings), DAY)

    ledger = _assert_balanced(
        settings, {NAME, "customers_20261122.csv", "customers_20261122_b.csv"}
    )
    master = ledger["customers_20261122.csv"]
    assert (master["file_kind"], master["outcome"]) == ("customer_master", "ingested")
    assert (master["rows_in"], master["rows_accepted"], master["rows_quarantined"]) == (3, 1, 2)
    assert ledger["customers_20261122_b.csv"]["outcome_reason"] == "empty_file"
    assert ledger[NAME]["file_kind"] == "sales"
