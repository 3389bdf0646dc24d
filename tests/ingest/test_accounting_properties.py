"""Property: whatever rows arrive, each lands exactly once and a re-run changes nothing."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.ingest.run import ingest_date
from tests.support import WEB_HEADER, lake_bytes, read_lake, with_paths

DAY = date(2026, 11, 22)
TIMES = [
    "2026-11-22 10:00:00",
    "2026-11-22 23:59:59",
    "2026-11-21 01:00:00",
    "2026-11-13 10:00:00",
    "2026-11-22T02:00:00Z",
    "garbage",
    "",
]
QUANTITIES = ["1", "2", "-1", "0", "3x", ""]
AMOUNTS = ["10.00", "20.00", "-10.00", "12,5O", ""]
CURRENCIES = ["CNY", "cny", "USD", ""]

rows = st.lists(
    st.tuples(
        st.sampled_from(["W1", "W2", "W3", ""]),  # few ids: many key collisions
        st.sampled_from(["1", "2"]),
        st.sampled_from(["C1", "C2", ""]),
        st.sampled_from(TIMES),
        st.sampled_from(["P1", "商品A", ""]),
        st.sampled_from(QUANTITIES),
        st.sampled_from(["10.00", ""]),
        st.sampled_from(AMOUNTS),
        st.sampled_from(CURRENCIES),
        st.sampled_from(["completed", "returned", "cancelled", ""]),
    ),
    max_size=25,
)


def _write(path: Path, lines: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(WEB_HEADER.split(","))
        writer.writerows(lines)


@given(first=rows, second=rows)
def test_every_row_lands_exactly_once(
    tmp_path_factory, first: list[tuple[str, ...]], second: list[tuple[str, ...]]
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = with_paths(load_settings(), tmp_path_factory.mktemp("property"))
    _write(settings.paths.incoming / "sales_20261122.csv", first)
    _write(settings.paths.incoming / "sales_20261122_b.csv", second)

    ingest_date(settings, DAY)

    accepted = read_lake(settings, "order_lines")
    quarantined = read_lake(settings, "quarantined_order_lines")
    ledger = {row["source_file"]: row for row in read_lake(settings, "ingest_ledger")}
    for name, lines in (("sales_20261122.csv", first), ("sales_20261122_b.csv", second)):
        row = ledger[name]
        assert row["rows_in"] == len(lines)
        assert (
            row["rows_in"] == row["rows_accepted"] + row["rows_quarantined"] + row["rows_duplicate"]
        )
    placed = [(row["source_file"], row["source_row"]) for row in accepted + quarantined]
    assert len(placed) == len(set(placed)), "a row landed twice"
    keys = [(row["order_id"], row["line_id"]) for row in accepted]
    assert len(keys) == len(set(keys)), "an order line was accepted twice"
    assert all(row["quantity"] != 0 and row["currency"] == "CNY" for row in accepted)

    before = lake_bytes(settings)
    ingest_date(settings, DAY)
    assert lake_bytes(settings) == before
    shutil.rmtree(settings.paths.lake)
