"""Re-running a date and re-sending a file change nothing: byte-identical lake files."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

from pipeline.config import Settings
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, lake_bytes, read_lake, write_csv

DAY = date(2026, 11, 22)
NEXT_DAY = date(2026, 11, 23)
LINES = [
    WEB_HEADER,
    "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed",
    "W1,2,C1,2026-11-22 10:00:00,P2,1,5.50,5.50,CNY,completed",
    "W2,1,,2026-11-22 23:00:00,P1,1,10.00,10.00,CNY,completed",
    "W3,1,C2,2026-11-22 11:00:00,P3,3x,1.00,3.00,CNY,completed",
]


def _partition(settings: Settings, table: str, day: date) -> bytes:
    return (settings.paths.lake / table / f"export_date={day}" / "data.parquet").read_bytes()


def test_ingesting_a_date_twice_gives_identical_bytes(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    first = lake_bytes(settings)

    ingest_date(settings, DAY)

    assert lake_bytes(settings) == first
    # sales, their quarantine, the (empty) master, its quarantine, file ledger, ledger
    assert len(first) == 6


def test_identical_in_another_folder(settings: Settings, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Nothing machine- or path-specific leaks into the lake files."""
    from tests.support import with_paths

    write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    elsewhere = with_paths(settings, tmp_path_factory.mktemp("elsewhere"))
    shutil.copy(settings.paths.incoming / "sales_20261122.csv", elsewhere.paths.incoming)

    ingest_date(elsewhere, DAY)

    assert lake_bytes(elsewhere) == lake_bytes(settings)


def test_resent_file_on_the_same_day_changes_no_line(settings: Settings) -> None:
    original = write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    lines_before = _partition(settings, "order_lines", DAY)
    quarantine_before = _partition(settings, "quarantined_order_lines", DAY)
    shutil.copy(original, settings.paths.incoming / "sales_20261122 (1).csv")

    ingest_date(settings, DAY)

    assert _partition(settings, "order_lines", DAY) == lines_before
    ledger = {row["source_file"]: row for row in read_lake(settings, "ingest_ledger")}
    resent = ledger["sales_20261122 (1).csv"]
    assert resent["file_sha256"] == ledger["sales_20261122.csv"]["file_sha256"]
    # The bad row of the copy is quarantined again (it never landed); the rest are duplicates.
    assert (
        resent["rows_in"],
        resent["rows_accepted"],
        resent["rows_duplicate"],
        resent["rows_quarantined"],
    ) == (4, 0, 3, 1)
    assert _partition(settings, "quarantined_order_lines", DAY) != quarantine_before


def test_resent_file_on_the_next_day_is_all_duplicates(settings: Settings) -> None:
    original = write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    day_bytes = lake_bytes(settings)
    shutil.copy(original, settings.paths.incoming / "sales_20261123_resend.csv")
    write_csv(
        settings.paths.incoming / "sales_20261123.csv",
        [WEB_HEADER, "W9,1,C9,2026-11-23 09:00:00,P1,1,1.00,1.00,CNY,completed"],
    )

    ingest_date(settings, NEXT_DAY)

    next_lines = [
        row for row in read_lake(settings, "order_lines") if row["export_date"] == NEXT_DAY
    ]
    assert [row["order_id"] for row in next_lines] == ["W9"]
    ledger = {row["source_file"]: row for row in read_lake(settings, "ingest_ledger")}
    assert ledger["sales_20261123_resend.csv"]["rows_duplicate"] == 3
    # The earlier date's partitions are untouched, and re-running it is still identical.
    ingest_date(settings, DAY)
    assert {k: v for k, v in lake_bytes(settings).items() if "2026-11-22" in k} == day_bytes


def test_corrected_resend_is_quarantined_not_silently_dropped(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    write_csv(
        settings.paths.incoming / "sales_20261123.csv",
        [WEB_HEADER, "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,18.00,CNY,completed"],
    )

    ingest_date(settings, NEXT_DAY)

    quarantined = [
        row
        for row in read_lake(settings, "quarantined_order_lines")
        if row["export_date"] == NEXT_DAY
    ]
    assert [(row["order_id"], row["quarantine_reason"]) for row in quarantined] == [
        ("W1", "conflicting_duplicate")
    ]


def test_copy_resent_after_the_lookback_is_never_counted_twice(settings: Settings) -> None:
    """Past the lookback a copy is not looked up, but it is also past the late tolerance."""
    original = write_csv(settings.paths.incoming / "sales_20261122.csv", LINES)
    ingest_date(settings, DAY)
    late_day = DAY + timedelta(days=settings.ingest.dedup_lookback_days + 1)
    shutil.copy(original, settings.paths.incoming / f"sales_{late_day:%Y%m%d}_resend.csv")

    ingest_date(settings, late_day)

    assert [
        row for row in read_lake(settings, "order_lines") if row["export_date"] == late_day
    ] == []
    reasons = {
        row["quarantine_reason"]
        for row in read_lake(settings, "quarantined_order_lines")
        if row["export_date"] == late_day
    }
    assert reasons == {"ordered_at_outside_window"}
