"""Every bad-input class, fed as a real file: the reason it gets, and a ledger that balances."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.errors import MissingExportError, RejectedFileError
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, lake_bytes, lake_bytes_but_file_ledger, read_lake, write_csv

DAY = date(2026, 11, 22)
GOOD = [
    "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed",
    "W2,1,C2,2026-11-22 11:30:00,P2,1,5.50,5.50,CNY,completed",
]

ROW_CLASSES = [
    ("missing_order_id", ",1,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,CNY,completed"),
    ("missing_line_id", "W3,,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,CNY,completed"),
    ("missing_ordered_at", "W3,1,C3,,P1,1,10.00,10.00,CNY,completed"),
    ("unparseable_ordered_at", "W3,1,C3,2026-13-45 25:61:00,P1,1,10.00,10.00,CNY,completed"),
    ("ordered_at_outside_window", "W3,1,C3,2026-11-13 10:00:00,P1,1,10.00,10.00,CNY,completed"),
    ("ordered_at_outside_window", "W3,1,C3,2026-11-24 09:00:00,P1,1,10.00,10.00,CNY,completed"),
    ("missing_product_id", "W3,1,C3,2026-11-22 10:00:00,,1,10.00,10.00,CNY,completed"),
    ("missing_quantity", "W3,1,C3,2026-11-22 10:00:00,P1,,10.00,10.00,CNY,completed"),
    ("unparseable_quantity", "W3,1,C3,2026-11-22 10:00:00,P1,3x,10.00,30.00,CNY,completed"),
    ("zero_quantity", "W3,1,C3,2026-11-22 10:00:00,P1,0,10.00,0.00,CNY,completed"),
    ("unparseable_unit_price", "W3,1,C3,2026-11-22 10:00:00,P1,1,12.5O,12.50,CNY,completed"),
    ("unparseable_amount", "W3,1,C3,2026-11-22 10:00:00,P1,1,12.50,12.5O,CNY,completed"),
    ("missing_amount", "W3,1,C3,2026-11-22 10:00:00,P1,1,,,CNY,completed"),
    ("sign_mismatch", "W3,1,C3,2026-11-22 10:00:00,P1,-1,10.00,10.00,CNY,completed"),
    ("unaccepted_currency", "W3,1,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,USD,completed"),
    ("unknown_currency", "W3,1,C3,2026-11-22 10:00:00,P1,1,10.00,10.00,US$,completed"),
    ("conflicting_duplicate", "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,99.00,CNY,completed"),
]


@pytest.mark.parametrize(
    ("reason", "bad_line"), ROW_CLASSES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(ROW_CLASSES)]
)
def test_bad_row_is_quarantined_with_its_reason(
    settings: Settings, reason: str, bad_line: str
) -> None:
    write_csv(settings.paths.incoming / "sales_20261122_web.csv", [WEB_HEADER, *GOOD, bad_line])

    report = ingest_date(settings, DAY)

    quarantined = read_lake(settings, "quarantined_order_lines")
    assert [row["quarantine_reason"] for row in quarantined] == [reason]
    assert quarantined[0]["source_row"] == 3
    assert {row["order_id"] for row in read_lake(settings, "order_lines")} == {"W1", "W2"}
    (ledger,) = read_lake(settings, "ingest_ledger")
    assert (ledger["rows_in"], ledger["rows_accepted"], ledger["rows_quarantined"]) == (3, 2, 1)
    assert (
        ledger["rows_in"]
        == ledger["rows_accepted"] + ledger["rows_quarantined"] + ledger["rows_duplicate"]
    )
    assert report.quarantine_reasons == {reason: 1}


def test_exact_duplicate_is_counted_not_quarantined(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122_web.csv", [WEB_HEADER, *GOOD, GOOD[0]])

    ingest_date(settings, DAY)

    (ledger,) = read_lake(settings, "ingest_ledger")
    assert (ledger["rows_in"], ledger["rows_accepted"], ledger["rows_duplicate"]) == (3, 2, 1)
    assert read_lake(settings, "quarantined_order_lines") == []


def test_late_line_within_tolerance_is_accepted(settings: Settings) -> None:
    late = "W3,1,C3,2026-11-21 08:00:00,P1,1,10.00,10.00,CNY,completed"  # 40 h before midnight
    write_csv(settings.paths.incoming / "sales_20261122_web.csv", [WEB_HEADER, *GOOD, late])

    ingest_date(settings, DAY)

    lines = {row["order_id"]: row for row in read_lake(settings, "order_lines")}
    assert lines["W3"]["order_date"] == date(2026, 11, 21)
    assert lines["W3"]["export_date"] == DAY


def _truncated_gzip(path: Path) -> None:
    data = gzip.compress(("\n".join([WEB_HEADER, *GOOD * 2000]) + "\n").encode(), mtime=0)
    path.with_suffix(".gz").write_bytes(data[: len(data) // 2])


def _truncated_parquet(path: Path) -> None:
    table = pa.table(
        {
            "order_id": ["A1"],
            "customer_id": ["C1"],
            "ordered_at": ["2026-11-22 10:00:00"],
            "product_id": ["P1"],
            "quantity": [1],
            "amount": [1.0],
        }
    )
    target = path.with_suffix(".parquet")
    pq.write_table(table, target)
    target.write_bytes(target.read_bytes()[:-20])


STRUCTURAL = [
    (
        "missing-column",
        lambda p: write_csv(
            p, ["order_id,customer_id,order_time,sku,amount", "W1,C1,2026-11-22 10:00:00,P1,1"]
        ),
        "required column missing after mapping: quantity",
    ),
    # A row with a wrong field count is quarantined alone (tests/ingest/test_files_and_rows.py);
    # a file where most rows have one is rejected whole.
    (
        "mostly-wrong-column-count",
        lambda p: write_csv(
            p, [WEB_HEADER, GOOD[0], "W9,1,C1,2026-11-22 10:00:00,P1,1,1,1,CNY,ok,extra", "W9,1"]
        ),
        "malformed CSV: 2 of 3 rows have a wrong number of fields",
    ),
    ("truncated-gzip", _truncated_gzip, "end of GZIP stream"),
    ("truncated-parquet", _truncated_parquet, "unreadable Parquet"),
    (
        "unknown-encoding",
        lambda p: p.write_bytes(
            (WEB_HEADER + "\nW1,1,C1,2026-11-22 10:00:00,caf\xe9,1,1,1,CNY,ok\n").encode("latin-1")
        ),
        "unknown encoding",
    ),
    ("empty-file", lambda p: p.write_bytes(b""), "empty file"),
    ("unrecognised-header", lambda p: write_csv(p, ["a,b,c", "1,2,3"]), "header not recognised"),
    (
        "ambiguous-columns",
        lambda p: write_csv(
            p,
            [
                "order_id,订单号,customer_id,order_time,sku,quantity,amount",
                "1,1,C,2026-11-22 10:00:00,P,1,1",
            ],
        ),
        "both map to order_id",
    ),
    (
        "unknown-file-type",
        lambda p: p.with_suffix(".xlsx").write_bytes(b"PK\x03\x04"),
        "unknown file type",
    ),
]


@pytest.mark.parametrize(
    ("breaker", "message"), [(b, m) for _, b, m in STRUCTURAL], ids=[i for i, _, _ in STRUCTURAL]
)
def test_structurally_broken_file_is_rejected_whole(
    settings: Settings, breaker, message: str
) -> None:  # type: ignore[no-untyped-def]
    incoming = settings.paths.incoming
    write_csv(incoming / "sales_20261122_a.csv", [WEB_HEADER, *GOOD])
    ingest_date(settings, DAY)
    before = lake_bytes_but_file_ledger(settings)
    breaker(incoming / "sales_20261122_b.csv")

    with pytest.raises(RejectedFileError) as rejected:
        ingest_date(settings, DAY)

    assert message in str(rejected.value)
    assert rejected.value.file.startswith("sales_20261122_b")
    assert lake_bytes_but_file_ledger(settings) == before, (
        "a rejected file must leave the lake as it was"
    )
    assert list((settings.paths.state / "tmp").iterdir()) == [], "no scratch files left behind"


def test_rejected_file_on_first_ingest_writes_nothing(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122_web.csv", ["order_id,sku", "W1,P1"])

    with pytest.raises(RejectedFileError, match="customer_id"):
        ingest_date(settings, DAY)

    assert lake_bytes_but_file_ledger(settings) == {}


def test_header_only_file_is_an_empty_day(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122_web.csv", [WEB_HEADER])

    report = ingest_date(settings, DAY)

    assert report.total("rows_in") == 0
    assert read_lake(settings, "order_lines") == []
    (ledger,) = read_lake(settings, "ingest_ledger")
    assert (ledger["source_file"], ledger["rows_in"]) == ("sales_20261122_web.csv", 0)


def test_missing_export_fails_by_default(settings: Settings) -> None:
    with pytest.raises(MissingExportError, match="no export file for 2026-11-22"):
        ingest_date(settings, DAY)
    assert lake_bytes(settings) == {}


def test_missing_export_can_be_recorded_as_empty_day(settings: Settings) -> None:
    lenient = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"missing_export": "empty"})}
    )

    ingest_date(lenient, DAY)

    assert (
        settings.paths.lake / "ingest_ledger" / "export_date=2026-11-22" / "data.parquet"
    ).is_file()
    assert read_lake(settings, "ingest_ledger") == []
    assert read_lake(settings, "order_lines") == []
