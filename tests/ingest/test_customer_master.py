"""The optional customer master: what lands, what is quarantined and why, and its partitions."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.demo.generate import generate
from pipeline.errors import MissingExportError, RejectedFileError
from pipeline.ingest.run import IngestReport, ingest_date
from tests.support import (
    WEB_HEADER,
    lake_bytes,
    lake_bytes_but_file_ledger,
    read_lake,
    with_paths,
    write_csv,
)

DAY = date(2026, 11, 22)
SALES = [WEB_HEADER, "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed"]
MASTER_HEADER = "customer_id,signup_date,email,phone,city"
MASTER = [
    MASTER_HEADER,
    "C1,2026-11-22,li@example.com,13800000001,上海",
    "C2,2026-11-22,,13800000002,北京",
    "C3,2026-11-22,wang@example.com,,",
]
CUSTOMER_MASTER_TYPES = [
    ("customer_id", "VARCHAR"),
    ("signup_date", "DATE"),
    ("email", "VARCHAR"),
    ("phone", "VARCHAR"),
    ("city", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
]
QUARANTINE_TYPES = [
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
    ("quarantine_reason", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("signup_date", "VARCHAR"),
    ("email", "VARCHAR"),
    ("phone", "VARCHAR"),
    ("city", "VARCHAR"),
]
EXPECTED = [
    ("C1", date(2026, 11, 22), "li@example.com", "13800000001", "上海"),
    ("C2", date(2026, 11, 22), None, "13800000002", "北京"),
    ("C3", date(2026, 11, 22), "wang@example.com", None, None),
]


def _with_sales(settings: Settings, day: date = DAY) -> None:
    write_csv(settings.paths.incoming / f"sales_{day:%Y%m%d}.csv", SALES)


def _master(settings: Settings) -> list[tuple[object, ...]]:
    return [
        (row["customer_id"], row["signup_date"], row["email"], row["phone"], row["city"])
        for row in read_lake(settings, "customer_master")
    ]


def _partition(settings: Settings, table: str, day: date = DAY) -> Path:
    return settings.paths.lake / table / f"export_date={day}" / "data.parquet"


def _describe(path: Path) -> list[tuple[str, str]]:
    with duckdb.connect() as con:
        rows = con.execute(
            "select column_name, column_type from"
            " (describe select * from read_parquet($path, hive_partitioning = false))",
            {"path": str(path)},
        ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _assert_accounted_for(settings: Settings, report: IngestReport) -> None:
    """Every master row read is loaded or quarantined, file by file, as the lake shows."""
    loaded = read_lake(settings, "customer_master")
    quarantined = read_lake(settings, "quarantined_customer_master")
    for row in report.customer_master_files:
        name = row["source_file"]
        assert row["rows_in"] == row["rows_loaded"] + row["rows_quarantined"], row
        assert row["rows_loaded"] == sum(r["source_file"] == name for r in loaded), row
        assert row["rows_quarantined"] == sum(r["source_file"] == name for r in quarantined), row


# -- the demo's format --------------------------------------------------------------------


def test_the_demo_master_lands(settings: Settings, tmp_path: Path) -> None:
    start = date(2025, 1, 1)
    generate(tmp_path, start=start, days=2, customers=300, seed=7)  # into settings' folders

    report = ingest_date(settings, start)

    truth = pq.read_table(tmp_path / "ground_truth" / "customers.parquet").to_pylist()
    expected_ids = {row["customer_id"] for row in truth if row["signup_date"] <= start}
    loaded = read_lake(settings, "customer_master")
    assert {row["customer_id"] for row in loaded} == expected_ids
    assert len(loaded) == len(expected_ids)
    signup = {row["customer_id"]: row["signup_date"] for row in truth}
    assert all(row["signup_date"] == signup[row["customer_id"]] for row in loaded)
    assert any(row["email"] is None for row in loaded), "the demo leaves some emails empty"
    assert all(row["city"] for row in loaded)
    assert read_lake(settings, "quarantined_customer_master") == []
    (master_file,) = report.customer_master_files
    assert (master_file["source_file"], master_file["encoding"], master_file["delimiter"]) == (
        "customers_20250101.csv",
        "utf-8",
        ",",
    )
    assert master_file["rows_in"] == master_file["rows_loaded"] == len(expected_ids)
    # The master is counted apart: the ingest ledger still lists the sales exports only.
    assert all(
        str(row["source_file"]).startswith("sales_") for row in read_lake(settings, "ingest_ledger")
    )
    _assert_accounted_for(settings, report)


# -- header variants, encodings, delimiters, formats -------------------------------------


def _parquet_master(path: Path) -> None:
    table = pa.table(
        {
            "member_id": ["C1", "C2", "C3"],
            "registered_at": pa.array(
                [date(2026, 11, 22)] * 3,
                pa.date32(),
            ),
            "email": ["li@example.com", None, "wang@example.com"],
            "mobile": ["13800000001", "13800000002", None],
            "city": ["上海", "北京", None],
        }
    )
    pq.write_table(table, path.with_suffix(".parquet"))


CHINESE = [
    "会员编号,注册日期,邮箱,手机,城市",
    "C1,2026/11/22,li@example.com,13800000001,上海",
    "C2,2026/11/22,,13800000002,北京",
    "C3,2026年11月22日,wang@example.com,,",
]
MASTER_VARIANTS: dict[str, Callable[[Path], object]] = {
    "utf8-comma": lambda p: write_csv(p, MASTER),
    "gbk-chinese-headers-tab": lambda p: write_csv(p, CHINESE, encoding="gbk", delimiter="\t"),
    "gb18030-gzip-semicolon": lambda p: p.with_suffix(".csv.gz").write_bytes(
        gzip.compress(
            "".join(line.replace(",", ";") + "\n" for line in CHINESE).encode("gb18030"), mtime=0
        )
    ),
    "utf8-bom-member-id-registered-at-crlf": lambda p: p.write_bytes(
        b"\xef\xbb\xbf"
        + "".join(
            line + "\r\n"
            for line in [
                '"Member_ID","Registered_At","E-Mail","Mobile","City","Tier"',
                "C1,2026-11-22 09:15:00,li@example.com,13800000001,上海,gold",
                # An absolute time: 2026-11-21 16:30 UTC is 2026-11-22 00:30 in Shanghai.
                "C2,2026-11-21T16:30:00Z,,13800000002,北京,",
                " C3 ,20261122,wang@example.com,,,silver",
            ]
        ).encode()
    ),
    "parquet-typed-date": _parquet_master,
}


@pytest.mark.parametrize("writer", MASTER_VARIANTS.values(), ids=MASTER_VARIANTS.keys())
def test_header_variants_encodings_and_formats_land_the_same_rows(
    settings: Settings, writer: Callable[[Path], object]
) -> None:
    _with_sales(settings)
    writer(settings.paths.incoming / "customers_20261122.csv")

    report = ingest_date(settings, DAY)

    assert _master(settings) == EXPECTED
    assert read_lake(settings, "quarantined_customer_master") == []
    (master_file,) = report.customer_master_files
    assert master_file["rows_in"] == 3
    _assert_accounted_for(settings, report)


def test_gbk_master_is_transcoded(settings: Settings) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.tsv", CHINESE, encoding="gbk")

    report = ingest_date(settings, DAY)

    (master_file,) = report.customer_master_files
    assert (master_file["encoding"], master_file["delimiter"]) == ("gb18030", ",")
    assert [row[4] for row in _master(settings)] == ["上海", "北京", None]


def test_a_master_without_signup_date_lands_with_null_dates(settings: Settings) -> None:
    _with_sales(settings)
    write_csv(
        settings.paths.incoming / "customers_20261122.csv",
        ["客户编号,手机", "C1,13800000001", "C2,"],
    )

    ingest_date(settings, DAY)

    assert _master(settings) == [
        ("C1", None, None, "13800000001", None),
        ("C2", None, None, None, None),
    ]


# -- bad rows ------------------------------------------------------------------------------


def test_bad_rows_are_quarantined_with_reasons_and_every_row_is_accounted_for(
    settings: Settings,
) -> None:
    _with_sales(settings)
    write_csv(
        settings.paths.incoming / "customers_20261122.csv",
        [
            MASTER_HEADER,
            "C1,2026-11-22,li@example.com,13800000001,上海",
            ",2026-11-22,nobody@example.com,,",  # row 2
            "  ,2026-11-22,,,",  # row 3: blank id
            "C4,2026-13-45,,,",  # row 4
            "C5,yesterday,,,",  # row 5
            "C6,2026-11-23,,,",  # row 6: after the export date
            "C7,,,,",  # row 7: no date given: loaded without one
            "C8,2026-02-30,,,",  # row 8
        ],
    )

    report = ingest_date(settings, DAY)

    quarantined = read_lake(settings, "quarantined_customer_master")
    assert [(row["source_row"], row["quarantine_reason"]) for row in quarantined] == [
        (2, "missing_customer_id"),
        (3, "missing_customer_id"),
        (4, "bad_signup_date"),
        (5, "bad_signup_date"),
        (6, "signup_date_after_export_date"),
        (8, "bad_signup_date"),
    ]
    # The row is kept as it arrived, text included.
    assert (quarantined[3]["customer_id"], quarantined[3]["signup_date"]) == ("C5", "yesterday")
    assert quarantined[1]["customer_id"] == "  "
    assert [(row[0], row[1]) for row in _master(settings)] == [
        ("C1", date(2026, 11, 22)),
        ("C7", None),
    ]
    (master_file,) = report.customer_master_files
    assert (
        master_file["rows_in"],
        master_file["rows_loaded"],
        master_file["rows_quarantined"],
    ) == (8, 2, 6)
    assert report.customer_master_reasons == {
        "bad_signup_date": 3,
        "missing_customer_id": 2,
        "signup_date_after_export_date": 1,
    }
    assert report.quarantine_reasons == {}, "sales quarantine reasons stay the sales'"
    _assert_accounted_for(settings, report)


# -- duplicates ----------------------------------------------------------------------------


def test_duplicates_within_a_day_keep_the_first_file_then_the_first_row(
    settings: Settings,
) -> None:
    _with_sales(settings)
    incoming = settings.paths.incoming
    write_csv(
        incoming / "customers_20261122.csv",
        [
            MASTER_HEADER,
            "C1,2026-11-20,first@example.com,,",
            "C2,2026-13-01,,,",  # bad date: its later valid copy is the one loaded
            "C1,2026-11-21,second@example.com,,",  # same file, later row
            "C2,2026-11-21,,,",
        ],
    )
    # A re-sent copy with a longer name, and a later file correcting C3.
    write_csv(incoming / "customers_20261122_resend.csv", [MASTER_HEADER, "C1,2026-11-20,,,"])
    write_csv(incoming / "customers_20261122_b.csv", [MASTER_HEADER, "C3,2026-11-22,,,"])
    write_csv(incoming / "customers_20261122_zz.csv", [MASTER_HEADER, "C3,2026-11-01,,,"])

    report = ingest_date(settings, DAY)

    loaded = read_lake(settings, "customer_master")
    assert [
        (row["customer_id"], row["signup_date"], row["source_file"], row["source_row"])
        for row in loaded
    ] == [
        ("C1", date(2026, 11, 20), "customers_20261122.csv", 1),
        ("C2", date(2026, 11, 21), "customers_20261122.csv", 4),
        ("C3", date(2026, 11, 22), "customers_20261122_b.csv", 1),
    ]
    assert loaded[0]["email"] == "first@example.com"
    quarantined = read_lake(settings, "quarantined_customer_master")
    assert [
        (row["source_file"], row["source_row"], row["quarantine_reason"]) for row in quarantined
    ] == [
        ("customers_20261122.csv", 2, "bad_signup_date"),
        ("customers_20261122.csv", 3, "duplicate_customer_id"),
        ("customers_20261122_resend.csv", 1, "duplicate_customer_id"),
        ("customers_20261122_zz.csv", 1, "duplicate_customer_id"),
    ]
    assert [row["source_file"] for row in report.customer_master_files] == [
        "customers_20261122.csv",
        "customers_20261122_b.csv",
        "customers_20261122_resend.csv",
        "customers_20261122_zz.csv",
    ]
    _assert_accounted_for(settings, report)


# -- repeatability, empty days, switching off ----------------------------------------------


def test_reingesting_gives_identical_bytes_in_any_folder(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.csv", [*MASTER, ",2026-11-22,,,"])
    write_csv(settings.paths.incoming / "customers_20261122 (1).csv", MASTER)
    ingest_date(settings, DAY)
    first = lake_bytes(settings)

    ingest_date(settings, DAY)

    assert lake_bytes(settings) == first
    assert sorted({path.split("/")[0] for path in first}) == [
        "customer_master",
        "ingest_files",
        "ingest_ledger",
        "order_lines",
        "quarantined_customer_master",
        "quarantined_order_lines",
    ]
    elsewhere = with_paths(settings, tmp_path_factory.mktemp("elsewhere"))
    for name in ("sales_20261122.csv", "customers_20261122.csv", "customers_20261122 (1).csv"):
        shutil.copy(settings.paths.incoming / name, elsewhere.paths.incoming)
    ingest_date(elsewhere, DAY)
    assert lake_bytes(elsewhere) == first


def test_a_day_without_a_master_file_gets_empty_partitions(settings: Settings) -> None:
    _with_sales(settings)

    report = ingest_date(settings, DAY)

    assert report.customer_master_files == []
    assert _describe(_partition(settings, "customer_master")) == CUSTOMER_MASTER_TYPES
    assert _describe(_partition(settings, "quarantined_customer_master")) == QUARANTINE_TYPES
    assert read_lake(settings, "customer_master") == []
    assert read_lake(settings, "quarantined_customer_master") == []


def test_partitions_with_rows_have_the_same_schema(settings: Settings) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.csv", [*MASTER, "C9,bad,,,"])

    ingest_date(settings, DAY)

    assert _describe(_partition(settings, "customer_master")) == CUSTOMER_MASTER_TYPES
    assert _describe(_partition(settings, "quarantined_customer_master")) == QUARANTINE_TYPES
    for table in ("customer_master", "quarantined_customer_master"):
        assert "export_date" not in pq.read_schema(_partition(settings, table)).names


def test_header_only_master_is_an_empty_master(settings: Settings) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.csv", [MASTER_HEADER])

    report = ingest_date(settings, DAY)

    (master_file,) = report.customer_master_files
    assert (master_file["rows_in"], master_file["rows_loaded"]) == (0, 0)
    assert read_lake(settings, "customer_master") == []


def test_an_empty_pattern_reads_no_master(settings: Settings) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.csv", MASTER)
    disabled = settings.model_copy(
        update={"source": settings.source.model_copy(update={"customer_file_pattern": ""})}
    )

    report = ingest_date(disabled, DAY)

    assert report.customer_master_files == []
    assert read_lake(settings, "customer_master") == []
    assert _describe(_partition(settings, "customer_master")) == CUSTOMER_MASTER_TYPES
    assert read_lake(settings, "quarantined_customer_master") == []


def test_reingesting_without_the_master_empties_its_partition(settings: Settings) -> None:
    """The partitions describe the files of the latest run, like the sales tables."""
    _with_sales(settings)
    master = write_csv(settings.paths.incoming / "customers_20261122.csv", MASTER)
    ingest_date(settings, DAY)
    assert len(read_lake(settings, "customer_master")) == 3
    master.unlink()

    ingest_date(settings, DAY)

    assert read_lake(settings, "customer_master") == []


# -- a master without sales, broken masters ------------------------------------------------


def test_a_master_without_sales_follows_the_missing_export_rule(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "customers_20261122.csv", MASTER)

    with pytest.raises(MissingExportError, match="no export file for 2026-11-22"):
        ingest_date(settings, DAY)
    assert lake_bytes_but_file_ledger(settings) == {}

    lenient = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"missing_export": "empty"})}
    )
    report = ingest_date(lenient, DAY)

    assert report.files == []
    assert read_lake(settings, "ingest_ledger") == []
    assert _partition(settings, "ingest_ledger").is_file()
    assert _master(settings) == EXPECTED


BROKEN_MASTERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "no-customer-id-column": (
        lambda p: write_csv(p, ["signup_date,email", "2026-11-22,x@example.com"]),
        "required column missing after mapping: customer_id",
    ),
    "header-not-recognised": (lambda p: write_csv(p, ["a,b", "1,2"]), "header not recognised"),
    "empty-file": (lambda p: p.write_bytes(b""), "empty file"),
    "wrong-column-count": (
        lambda p: write_csv(p, [MASTER_HEADER, "C1,2026-11-22,a,b,c,extra"]),
        "malformed CSV",
    ),
    "ambiguous-columns": (
        lambda p: write_csv(p, ["customer_id,会员编号", "C1,C1"]),
        "both map to customer_id",
    ),
}


@pytest.mark.parametrize(("breaker", "message"), BROKEN_MASTERS.values(), ids=BROKEN_MASTERS.keys())
def test_a_structurally_broken_master_rejects_the_date(
    settings: Settings, breaker: Callable[[Path], object], message: str
) -> None:
    _with_sales(settings)
    write_csv(settings.paths.incoming / "customers_20261122.csv", MASTER)
    ingest_date(settings, DAY)
    before = lake_bytes_but_file_ledger(settings)
    breaker(settings.paths.incoming / "customers_20261122_b.csv")

    with pytest.raises(RejectedFileError) as rejected:
        ingest_date(settings, DAY)

    assert message in str(rejected.value)
    assert rejected.value.file == "customers_20261122_b.csv"
    assert lake_bytes_but_file_ledger(settings) == before, (
        "a rejected file must leave the lake as it was"
    )


def test_a_file_matching_both_patterns_is_rejected(settings: Settings) -> None:
    write_csv(settings.paths.incoming / "sales_20261122.csv", SALES)
    overlapping = settings.model_copy(
        update={
            "source": settings.source.model_copy(
                update={"customer_file_pattern": "sales_{date:%Y%m%d}*"}
            )
        }
    )

    with pytest.raises(RejectedFileError, match="matches both"):
        ingest_date(overlapping, DAY)
    assert lake_bytes_but_file_ledger(settings) == {}


def test_the_pattern_is_validated_like_the_sales_pattern() -> None:
    from pipeline.config import SourceConfig

    assert SourceConfig().customer_file_pattern == "customers_{date:%Y%m%d}*"
    assert SourceConfig(customer_file_pattern="").customer_file_pattern == ""
    with pytest.raises(ValueError, match=r"\{date"):
        SourceConfig(customer_file_pattern="customers.csv")
    with pytest.raises(ValueError, match=r"paths\.incoming"):
        SourceConfig(customer_file_pattern="../customers_{date:%Y%m%d}*")
