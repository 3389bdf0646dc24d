"""The demo generator writes reproducible, well-formed exports that agree with its ground truth."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipeline.demo.exports import (
    APP_SCHEMA,
    CUSTOMER_HEADER,
    STORE_HEADER,
    WEB_HEADER,
    delimited_bytes,
)
from pipeline.demo.generate import GenerateSummary, generate

START = date(2026, 1, 20)  # the window crosses Chinese New Year (2026-02-17)
DAYS = 60
CUSTOMERS = 500


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, start=START, days=DAYS, customers=CUSTOMERS, seed=7)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    """Enough customer-days for the aggregate behaviour checks to be stable."""
    out = tmp_path_factory.mktemp("demo_big")
    return out, generate(out, start=date(2026, 3, 1), days=120, customers=3000, seed=11)


@pytest.fixture(scope="module")
def sales(run: tuple[Path, GenerateSummary]) -> pa.Table:
    root, summary = run
    return _sales(root, summary.start, summary.days)


@pytest.fixture(scope="module")
def big_sales(big_run: tuple[Path, GenerateSummary]) -> pa.Table:
    root, summary = big_run
    return _sales(root, summary.start, summary.days)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _days(start: date, days: int) -> list[date]:
    return [start + timedelta(days=offset) for offset in range(days)]


def _web_table(path: Path) -> pa.Table:
    """A web file with every column as text, the way an ingest must first read it."""
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(WEB_HEADER, pa.string()))
    return pacsv.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())), convert_options=convert)


def _store_table(path: Path) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding="gbk"),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(STORE_HEADER, pa.string())),
    )


def _sales(root: Path, start: date, days: int) -> pa.Table:
    """Every purchase and return line of the original files, dated by the file's day."""
    parts = []
    for day in _days(start, days):
        stamp = day.strftime("%Y%m%d")
        web = _web_table(root / "incoming" / f"sales_{stamp}_web.csv.gz")
        store = _store_table(root / "incoming" / f"sales_{stamp}_store.tsv")
        app = pq.read_table(root / "incoming" / f"sales_{stamp}_app.parquet")
        for channel, customer, quantity in (
            ("web", web["customer_id"], web["quantity"]),
            ("store", store["客户编号"], store["数量"]),
            ("app", app["customer_id"], app["quantity"].cast(pa.string())),
        ):
            n = len(customer)
            parts.append(
                pa.table(
                    {
                        "file_date": pa.array([day] * n, pa.date32()),
                        "channel": pa.array([channel] * n, pa.string()),
                        "customer_id": customer.cast(pa.string()),
                        "quantity": pc.cast(quantity, pa.string()),
                    }
                )
            )
    return pa.concat_tables(parts)


def _sql(query: str, **tables: pa.Table | str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    for name, table in tables.items():
        if isinstance(table, str):
            con.sql(f"create view {name} as select * from read_parquet('{table}')")
        else:
            con.register(name, table)
    return con.sql(query).fetchall()


# -- reproducibility ------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(
    run: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    first, summary = run
    second = generate(tmp_path / "again", start=START, days=DAYS, customers=CUSTOMERS, seed=7)
    assert _hashes(tmp_path / "again") == _hashes(first)
    assert second == summary


def test_other_seed_gives_other_files(run: tuple[Path, GenerateSummary], tmp_path: Path) -> None:
    first, _ = run
    generate(tmp_path / "other", start=START, days=DAYS, customers=CUSTOMERS, seed=8)
    ours, theirs = _hashes(first), _hashes(tmp_path / "other")
    web = [name for name in ours if name.endswith("_web.csv.gz")]
    assert web
    assert all(ours[name] != theirs.get(name) for name in web)


def test_progress_is_called_once_per_day(tmp_path: Path) -> None:
    seen: list[int] = []
    generate(tmp_path, start=START, days=5, customers=50, progress=seen.append)
    assert seen == [0, 1, 2, 3, 4]


# -- formats --------------------------------------------------------------------------------


def test_every_day_has_its_files_and_the_summary_counts_them(
    run: tuple[Path, GenerateSummary],
) -> None:
    root, summary = run
    names = {path.name for path in (root / "incoming").iterdir()}
    for day in _days(START, DAYS):
        stamp = day.strftime("%Y%m%d")
        expected = {f"sales_{stamp}_{kind}" for kind in ("web.csv.gz", "store.tsv", "app.parquet")}
        assert expected | {f"customers_{stamp}.csv"} <= names
    files = [path for path in root.rglob("*") if path.is_file()]
    assert summary.files_written == len(files)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["arguments"] == {
        "start": START.isoformat(), "days": DAYS, "customers": CUSTOMERS, "seed": 7,
    }  # fmt: skip
    assert manifest["summary"]["bad_rows_injected"] == summary.bad_rows_injected


def test_web_file_is_gzip_utf8_csv_with_the_exact_header(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    for path in sorted((root / "incoming").glob("sales_*_web.csv.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        assert text.split("\n", 1)[0] == ",".join(WEB_HEADER)


def test_store_file_is_gbk_tsv_with_the_chinese_header(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    texts = []
    for path in sorted((root / "incoming").glob("sales_*_store.tsv")):
        raw = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # the Chinese header alone is not valid UTF-8 in GBK
        text = raw.decode("gbk")
        assert text.split("\n", 1)[0] == "订单号\t客户编号\t下单时间\t商品编号\t数量\t单价\t金额"
        texts.append(text)
    assert any("礼盒" in text.split("\n", 1)[1] for text in texts)


def test_app_file_has_the_typed_schema(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    for path in sorted((root / "incoming").glob("sales_*_app.parquet")):
        schema = pq.read_schema(path)
        assert schema.names == APP_SCHEMA.names
        assert [field.type for field in schema] == [field.type for field in APP_SCHEMA]
        assert schema.pandas_metadata is None


def test_app_times_are_utc_instants_of_the_local_day(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    day = START + timedelta(days=3)
    table = pq.read_table(root / "incoming" / f"sales_{day:%Y%m%d}_app.parquet")
    local = [(instant + timedelta(hours=8)).date() for instant in table["ordered_at"].to_pylist()]
    assert local and set(local) == {day}


def test_customer_master_lists_each_signup_once_and_backfills_day_one(
    run: tuple[Path, GenerateSummary],
) -> None:
    root, summary = run
    ids: list[str] = []
    for index, day in enumerate(_days(START, DAYS)):
        path = root / "incoming" / f"customers_{day:%Y%m%d}.csv"
        header, *rows = path.read_text(encoding="utf-8").splitlines()
        assert header == ",".join(CUSTOMER_HEADER)
        signups = {row.split(",")[1] for row in rows}
        if index == 0:
            assert len(rows) >= summary.backfilled_customers > 0
        else:
            assert signups <= {day.isoformat()}
        ids += [row.split(",")[0] for row in rows]
    assert len(ids) == len(set(ids))
    truth = pq.read_table(root / "ground_truth" / "customers.parquet")
    assert sorted(ids) == sorted(truth["customer_id"].to_pylist())


def test_every_buying_customer_is_in_the_master(
    run: tuple[Path, GenerateSummary], sales: pa.Table
) -> None:
    root, _ = run
    master = pq.read_table(root / "ground_truth" / "customers.parquet")
    unknown = _sql(
        "select count(*) from sales where customer_id <> '' and customer_id not in "
        "(select customer_id from master)",
        sales=sales,
        master=master,
    )
    assert unknown == [(0,)]


# -- content and noise ----------------------------------------------------------------------


def _original_web(root: Path) -> list[tuple[date, pa.Table]]:
    return [
        (day, _web_table(root / "incoming" / f"sales_{day:%Y%m%d}_web.csv.gz"))
        for day in _days(START, DAYS)
    ]


def _count(table: pa.Table, mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def test_injected_noise_matches_the_summary(run: tuple[Path, GenerateSummary]) -> None:
    root, summary = run
    found = dict.fromkeys(
        ("bad_quantity", "bad_price", "bad_timestamp", "empty_order_id", "unknown_currency",
         "out_of_window_time"),
        0,
    )  # fmt: skip
    lines = 0
    for day, table in _original_web(root):
        lines += len(table)
        times = pc.strptime(
            table["order_time"], format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True
        )
        parsed_dates = pc.cast(pc.cast(times, pa.timestamp("s")), pa.date32())
        found["bad_timestamp"] += times.null_count
        found["out_of_window_time"] += _count(table, pc.not_equal(parsed_dates, pa.scalar(day)))
        found["bad_quantity"] += _count(
            table, pc.invert(pc.match_substring_regex(table["quantity"], r"^-?\d+$"))
        )
        found["bad_price"] += _count(
            table, pc.invert(pc.match_substring_regex(table["unit_price"], r"^-?\d+\.\d\d$"))
        )
        found["empty_order_id"] += _count(table, pc.equal(table["order_id"], ""))
        found["unknown_currency"] += _count(table, pc.not_equal(table["currency"], "CNY"))
    assert found == {kind: getattr(summary, kind) for kind in found}
    assert all(count > 0 for count in found.values())  # every kind is exercised
    assert sum(found.values()) == summary.bad_rows_injected
    assert summary.web_lines == lines


def test_out_of_window_times_are_days_away(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    for day, table in _original_web(root):
        for text in table["order_time"].to_pylist():
            try:
                moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            assert moment.date() == day or (day - moment.date()).days >= 7


@pytest.mark.parametrize("channel", ["web", "store", "app"], ids=["web", "store", "app"])
def test_guests_and_negative_returns_are_present(sales: pa.Table, channel: str) -> None:
    rows = _sql(
        "select count(*) filter (where coalesce(customer_id, '') = ''),"
        " count(*) filter (where try_cast(quantity as integer) < 0), count(*)"
        " from sales where channel = $channel".replace("$channel", f"'{channel}'"),
        sales=sales,
    )
    guests, returns, total = rows[0]
    assert isinstance(total, int) and isinstance(guests, int)
    assert 0.02 < guests / total < 0.2
    assert isinstance(returns, int) and returns > 0


def test_returns_are_negative_and_only_returns_are(run: tuple[Path, GenerateSummary]) -> None:
    root, summary = run
    returned = 0
    for path in sorted((root / "incoming").glob("sales_*_app.parquet")):
        table = pq.read_table(path)
        is_return = pc.equal(table["status"], "returned")
        negative = pc.less(table["quantity"], 0)
        negative_amount = pc.less(pc.cast(table["amount"], pa.float64()), 0)
        assert is_return.to_pylist() == negative.to_pylist() == negative_amount.to_pylist()
        returned += _count(table, is_return)
    for _, table in _original_web(root):
        statuses = set(table["status"].to_pylist())
        assert statuses <= {"completed", "returned", "cancelled"}
        for status, text in zip(
            table["status"].to_pylist(), table["quantity"].to_pylist(), strict=True
        ):
            if re.fullmatch(r"-?\d+", text):
                assert (int(text) < 0) == (status == "returned")
    assert summary.return_lines > returned > 0


def test_order_ids_are_unique_across_the_dataset(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    orders: dict[str, date] = {}
    for day, table in _original_web(root):
        for order_id in set(table["order_id"].to_pylist()) - {""}:
            assert orders.setdefault(order_id, day) == day
    assert all(order_id.startswith("W") for order_id in orders)


def test_resent_files_are_byte_copies(run: tuple[Path, GenerateSummary]) -> None:
    root, summary = run
    incoming = root / "incoming"
    resends = sorted(incoming.glob("sales_*_web_resend.csv.gz"))
    copies = sorted(incoming.glob("sales_* (1).tsv"))
    assert len(resends) >= 1 and len(copies) == 1
    assert summary.resent_files == len(resends) + len(copies)
    for path in resends:
        day = datetime.strptime(path.name[6:14], "%Y%m%d").date()
        previous = incoming / f"sales_{day - timedelta(days=1):%Y%m%d}_web.csv.gz"
        assert path.read_bytes() == previous.read_bytes()
    original = incoming / copies[0].name.replace(" (1)", "")
    assert copies[0].read_bytes() == original.read_bytes()


# -- ground truth ---------------------------------------------------------------------------


def _truth(root: Path, name: str) -> str:
    return str(root / "ground_truth" / f"{name}.parquet")


def test_dissatisfaction_episodes_match_state_episodes(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    rows = _sql(
        """
        select count(*) as episodes, count(e.customer_id) as matched,
            count(*) filter (
                where d.outcome <> 'open' and e.valid_to is distinct from d.resolved_date
            )
        from dissatisfaction as d
        left join episodes as e
            on e.customer_id = d.customer_id and e.state = 'dissatisfied'
            and e.valid_from = d.onset_date
        """,
        dissatisfaction=_truth(root, "dissatisfaction"),
        episodes=_truth(root, "state_episodes"),
    )
    episodes, matched, wrong_end = rows[0]
    assert isinstance(episodes, int) and episodes > 0
    assert matched == episodes and wrong_end == 0


def test_state_episodes_tile_time_without_overlap(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    rows = _sql(
        """
        with ordered as (
            select *,
                lead(valid_from) over (partition by customer_id order by valid_from) as next_from
            from episodes
        )
        select
            count(*) filter (where next_from is not null and valid_to is distinct from next_from),
            count(*) filter (where next_from is null and valid_to is not null),
            count(*) filter (where valid_to <= valid_from),
            count(*) filter (where state not in
                ('prospect', 'socialization', 'growth', 'maturity', 'dissatisfied', 'churned'))
        from ordered
        """,
        episodes=_truth(root, "state_episodes"),
    )
    assert rows == [(0, 0, 0, 0)]


def test_win_back_episodes_follow_churn(run: tuple[Path, GenerateSummary]) -> None:
    root, _ = run
    rows = _sql(
        """
        with ordered as (
            select *, lag(state) over (partition by customer_id order by valid_from) as previous
            from episodes
        )
        select count(*) filter (where is_win_back and previous is distinct from 'churned'),
            count(*) filter (where previous = 'churned' and not is_win_back)
        from ordered
        """,
        episodes=_truth(root, "state_episodes"),
    )
    assert rows == [(0, 0)]


@pytest.mark.parametrize("state", ["churned", "prospect"], ids=["churned", "prospect"])
def test_no_purchase_while_churned_or_before_first_purchase(
    big_run: tuple[Path, GenerateSummary], big_sales: pa.Table, state: str
) -> None:
    root, _ = big_run
    rows = _sql(
        f"""
        select count(*) as purchases
        from sales as s
        join episodes as e
            on e.customer_id = s.customer_id and e.state = '{state}'
            and s.file_date >= e.valid_from and (e.valid_to is null or s.file_date < e.valid_to)
        where try_cast(s.quantity as integer) > 0
        """,
        sales=big_sales,
        episodes=_truth(root, "state_episodes"),
    )
    assert rows == [(0,)]


def test_dissatisfied_customers_buy_less_often_than_before_onset(
    big_run: tuple[Path, GenerateSummary], big_sales: pa.Table
) -> None:
    root, summary = big_run
    window_end = summary.start + timedelta(days=summary.days)
    rows = _sql(
        f"""
        with purchase_days as (
            select distinct customer_id, file_date from sales
            where try_cast(quantity as integer) > 0 and coalesce(customer_id, '') <> ''
        ),
        clipped as (
            select customer_id, state,
                greatest(valid_from, date '{summary.start}') as valid_from,
                least(coalesce(valid_to, date '{window_end}'), date '{window_end}') as valid_to
            from episodes
            where customer_id in (select customer_id from dissatisfaction)
        ),
        exposure as (
            select c.state = 'dissatisfied' as is_dissatisfied,
                sum(c.valid_to - c.valid_from) as days
            from clipped as c
            where c.valid_to > c.valid_from
                and c.state in ('socialization', 'growth', 'maturity', 'dissatisfied')
            group by all
        ),
        bought as (
            select c.state = 'dissatisfied' as is_dissatisfied, count(*) as purchases
            from clipped as c
            join purchase_days as p
                on p.customer_id = c.customer_id
                and p.file_date >= c.valid_from and p.file_date < c.valid_to
            where c.state in ('socialization', 'growth', 'maturity', 'dissatisfied')
            group by all
        )
        select e.is_dissatisfied, b.purchases / e.days
        from exposure as e join bought as b using (is_dissatisfied)
        order by e.is_dissatisfied
        """,
        sales=big_sales,
        episodes=_truth(root, "state_episodes"),
        dissatisfaction=_truth(root, "dissatisfaction"),
    )
    (_, normal_rate), (_, dissatisfied_rate) = rows
    assert isinstance(normal_rate, float) and isinstance(dissatisfied_rate, float)
    assert dissatisfied_rate < 0.6 * normal_rate


def test_lifecycle_rates_are_plausible(big_run: tuple[Path, GenerateSummary]) -> None:
    root, summary = big_run
    rows = _sql(
        """
        select count(*) filter (where outcome = 'churned'),
            count(*) filter (where outcome = 'recovered'),
            count(*) filter (where stage_at_onset = 'socialization')
        from dissatisfaction
        """,
        dissatisfaction=_truth(root, "dissatisfaction"),
    )
    churned, recovered, early = rows[0]
    assert isinstance(churned, int) and isinstance(recovered, int) and isinstance(early, int)
    assert churned > recovered > 0  # most who do not recover churn
    assert early > 0  # danger can come in any stage
    assert summary.win_backs_in_window > 0


@pytest.mark.parametrize(
    ("value", "written"),
    [("12.50", "12.50"), ("12,5O", '"12,5O"'), ('say "hi"', '"say ""hi"""'), ("", "")],
    ids=["plain", "delimiter", "quote", "empty"],
)
def test_csv_values_are_quoted_only_when_needed(value: str, written: str) -> None:
    columns = [pa.array(["a", "b"]), pa.array([value, "x"])]
    assert delimited_bytes(("k", "v"), columns, ",").decode() == f"k,v\na,{written}\nb,x\n"
