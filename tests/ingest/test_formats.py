"""The same order lines, exported in every supported way, land as the same lake rows."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, read_lake, write_csv

DAY = date(2026, 11, 22)
WEB_LINES = [
    WEB_HEADER,
    "W1,1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00,CNY,completed",
    "W1,2,C1,2026-11-22 10:00:00,商品A,1,5.50,5.50,CNY,completed",
    "W2,1,,2026-11-22 23:59:59,P1,1,10.00,10.00,CNY,completed",
    "R1,1,C1,2026-11-22 12:00:00,P1,-1,10.00,-10.00,CNY,returned",
]
CHINESE_LINES = [
    "订单号,客户编号,下单时间,商品编号,数量,单价,金额",
    "W1,C1,2026-11-22 10:00:00,P1,2,10.00,20.00",
    "W1,C1,2026-11-22 10:00:00,商品A,1,5.50,5.50",
    "W2,,2026-11-22 23:59:59,P1,1,10.00,10.00",
    "R1,C1,2026-11-22 12:00:00,P1,-1,10.00,-10.00",
]


def _parquet(path: Path, *, absolute_times: bool) -> None:
    times = [
        datetime(2026, 11, 22, h, m, s)
        for h, m, s in [(10, 0, 0), (10, 0, 0), (23, 59, 59), (12, 0, 0)]
    ]
    if absolute_times:  # the same instants, stored as UTC
        times = [
            t.replace(tzinfo=UTC) - (datetime(2026, 1, 1, 8) - datetime(2026, 1, 1)) for t in times
        ]
    table = pa.table(
        {
            "order_id": ["W1", "W1", "W2", "R1"],
            "line_number": pa.array([1, 2, 1, 1], pa.int32()),
            "customer_id": ["C1", "C1", None, "C1"],
            "ordered_at": pa.array(times, pa.timestamp("us", tz="UTC" if absolute_times else None)),
            "sku": ["P1", "商品A", "P1", "P1"],
            "quantity": pa.array([2, 1, 1, -1], pa.int32()),
            "unit_price": pa.array(
                [Decimal("10.00"), Decimal("5.50"), Decimal("10.00"), Decimal("10.00")],
                pa.decimal128(12, 2),
            ),
            "amount": [20.0, 5.5, 10.0, -10.0],
            "currency": ["CNY"] * 4,
            "status": ["completed", "completed", "completed", "returned"],
        }
    )
    pq.write_table(table, path.with_suffix(".parquet"))


VARIANTS: dict[str, Callable[[Path], object]] = {
    "utf8-comma": lambda p: write_csv(p, WEB_LINES),
    "utf8-bom-semicolon": lambda p: p.write_bytes(
        b"\xef\xbb\xbf" + "".join(line.replace(",", ";") + "\n" for line in WEB_LINES).encode()
    ),
    "utf8-tab-crlf": lambda p: p.write_bytes(
        "".join(line.replace(",", "\t") + "\r\n" for line in WEB_LINES).encode()
    ),
    "gzip-csv": lambda p: p.with_suffix(".csv.gz").write_bytes(
        gzip.compress("".join(line + "\n" for line in WEB_LINES).encode(), mtime=0)
    ),
    "gbk-chinese-headers-tab": lambda p: write_csv(
        p, CHINESE_LINES, encoding="gbk", delimiter="\t"
    ),
    "gb18030-gzip": lambda p: p.with_suffix(".csv.gz").write_bytes(
        gzip.compress("".join(line + "\n" for line in CHINESE_LINES).encode("gb18030"), mtime=0)
    ),
    "utf16-bom": lambda p: p.write_bytes(
        "".join(line + "\n" for line in WEB_LINES).encode("utf-16")
    ),
    "parquet-local-times": lambda p: _parquet(p, absolute_times=False),
    "parquet-utc-times": lambda p: _parquet(p, absolute_times=True),
}
CANONICAL = [
    "order_id",
    "line_id",
    "customer_id",
    "ordered_at",
    "order_date",
    "product_id",
    "quantity",
    "amount",
    "currency",
    "line_kind",
]


def _canonical_rows(settings: Settings) -> list[tuple[object, ...]]:
    return sorted(
        tuple(row[column] for column in CANONICAL) for row in read_lake(settings, "order_lines")
    )


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_every_format_lands_the_same_lines(settings: Settings, variant: str) -> None:
    VARIANTS[variant](settings.paths.incoming / "sales_20261122_x.csv")

    ingest_date(settings, DAY)

    rows = _canonical_rows(settings)
    assert rows == [
        (
            "R1",
            "1",
            "C1",
            datetime(2026, 11, 22, 4, 0, tzinfo=UTC),
            DAY,
            "P1",
            Decimal("-1.000"),
            Decimal("-10.0000"),
            "CNY",
            "return",
        ),
        (
            "W1",
            "1",
            "C1",
            datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
            DAY,
            "P1",
            Decimal("2.000"),
            Decimal("20.0000"),
            "CNY",
            "sale",
        ),
        (
            "W1",
            "2",
            "C1",
            datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
            DAY,
            "商品A",
            Decimal("1.000"),
            Decimal("5.5000"),
            "CNY",
            "sale",
        ),
        (
            "W2",
            "1",
            None,
            datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC),
            DAY,
            "P1",
            Decimal("1.000"),
            Decimal("10.0000"),
            "CNY",
            "sale",
        ),
    ]
    (ledger,) = read_lake(settings, "ingest_ledger")
    assert (ledger["rows_in"], ledger["rows_accepted"]) == (4, 4)


def test_amount_is_computed_from_price_when_absent(settings: Settings) -> None:
    write_csv(
        settings.paths.incoming / "sales_20261122.csv",
        [
            "order_id,customer_id,order_time,sku,quantity,unit_price",
            "W1,C1,2026-11-22 10:00:00,P1,3,2.335",
        ],
    )

    ingest_date(settings, DAY)

    (line,) = read_lake(settings, "order_lines")
    assert line["amount"] == Decimal("7.0100")  # 3 x 2.335 = 7.005, rounded half away to cents
    assert line["currency"] == "CNY"  # the configured default when the export has none


def test_status_markers_set_the_line_kind(settings: Settings) -> None:
    write_csv(
        settings.paths.incoming / "sales_20261122.csv",
        [
            WEB_HEADER,
            "W1,1,C1,2026-11-22 10:00:00,P1,1,10.00,10.00,CNY,Cancelled",
            "W2,1,C1,2026-11-22 10:00:00,P1,1,10.00,10.00,CNY,退货",
        ],
    )

    ingest_date(settings, DAY)

    kinds = {
        row["order_id"]: (row["line_kind"], row["quantity"], row["amount"])
        for row in read_lake(settings, "order_lines")
    }
    assert kinds["W1"] == ("cancellation", Decimal("1.000"), Decimal("10.0000"))
    # A return marked only by its status is normalized to negative figures.
    assert kinds["W2"] == ("return", Decimal("-1.000"), Decimal("-10.0000"))


def test_decimal_comma_exports(settings: Settings) -> None:
    european = settings.model_copy(
        update={"source": settings.source.model_copy(update={"decimal_separator": ","})}
    )
    (settings.paths.incoming / "sales_20261122.csv").write_text(
        "order_id;customer_id;order_time;sku;quantity;unit_price;amount\nW1;C1;2026-11-22 10:00:00;P1;2;12,50;25,00\n"
    )

    ingest_date(european, DAY)

    (line,) = read_lake(settings, "order_lines")
    assert (line["unit_price"], line["amount"]) == (Decimal("12.5000"), Decimal("25.0000"))


@pytest.mark.parametrize(
    ("local_time", "expected_utc"),
    [
        ("2026-10-25 00:30:00", datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),  # CEST, +2
        # The repeated hour resolves to standard time (CET, +1): its second occurrence.
        ("2026-10-25 02:30:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ("2026-10-25 03:30:00", datetime(2026, 10, 25, 2, 30, tzinfo=UTC)),  # CET, +1
        (
            "2026-10-25 23:59:59",
            datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC),
        ),  # the 25-hour day's end
        ("2026-10-25T01:00:00+02:00", datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),  # explicit offset
        ("2026-10-25T12:00:00Z", datetime(2026, 10, 25, 12, 0, tzinfo=UTC)),
    ],
    ids=["before-switch", "ambiguous-hour", "after-switch", "day-end", "offset", "zulu"],
)
def test_local_times_convert_to_utc_across_dst(
    settings: Settings, local_time: str, expected_utc: datetime
) -> None:
    berlin = settings.model_copy(
        update={
            "source": settings.source.model_copy(
                update={
                    "timezone": "Europe/Berlin",
                    "currency": "EUR",
                    "accepted_currencies": ["EUR"],
                }
            )
        }
    )
    write_csv(
        settings.paths.incoming / "sales_20261025.csv",
        [WEB_HEADER, f"W1,1,C1,{local_time},P1,1,1.00,1.00,EUR,completed"],
    )

    ingest_date(berlin, date(2026, 10, 25))

    (line,) = read_lake(settings, "order_lines")
    assert line["ordered_at"] == expected_utc
    assert line["order_date"] == date(2026, 10, 25)


def test_day_window_follows_the_local_day(settings: Settings) -> None:
    """With no tolerance, 00:00 local is in and 00:00 of the next local day is out."""
    strict = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"late_tolerance_hours": 0, "early_tolerance_hours": 0}
            )
        }
    )
    write_csv(
        settings.paths.incoming / "sales_20261122.csv",
        [
            WEB_HEADER,
            "W1,1,C1,2026-11-22 00:00:00,P1,1,1.00,1.00,CNY,completed",
            "W2,1,C1,2026-11-21 23:59:59,P1,1,1.00,1.00,CNY,completed",
            "W3,1,C1,2026-11-23 00:00:00,P1,1,1.00,1.00,CNY,completed",
        ],
    )

    ingest_date(strict, DAY)

    assert [row["order_id"] for row in read_lake(settings, "order_lines")] == ["W1"]
    assert sorted(row["order_id"] for row in read_lake(settings, "quarantined_order_lines")) == [
        "W2",
        "W3",
    ]


def test_skipped_spring_hour_reads_with_the_offset_before_the_switch(settings: Settings) -> None:
    berlin = settings.model_copy(
        update={
            "source": settings.source.model_copy(
                update={
                    "timezone": "Europe/Berlin",
                    "currency": "EUR",
                    "accepted_currencies": ["EUR"],
                }
            )
        }
    )
    write_csv(
        settings.paths.incoming / "sales_20260329.csv",
        [WEB_HEADER, "W1,1,C1,2026-03-29 02:30:00,P1,1,1.00,1.00,EUR,completed"],
    )

    ingest_date(berlin, date(2026, 3, 29))

    (line,) = read_lake(settings, "order_lines")
    assert line["ordered_at"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
