"""The bottom of the test pyramid: every declared model, tested on in-memory DuckDB.

Each declaration (sql/<layer>/<table>.toml) may carry ``[[unit_tests]]``: rows given for
the views its query reads, parameters, and the rows the query must return. Here they run
with nothing else: no files, no ingest, no step. Also: every declaration parses, and each
declared data test fails on a row that breaks it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from pipeline import seeds, sql
from pipeline.config import Settings, late_span_days
from pipeline.declarations import (
    Declaration,
    Given,
    Offset,
    UnitTest,
    build_intermediate,
    check_view,
    config_params,
    declaration,
    declared_models,
    register_lake_inputs,
    run_model,
    run_tests,
)
from pipeline.errors import DataCheckError
from pipeline.lake import AS_OF_KEY, Lake, write_partition
from tests.support import with_paths

MODELS = declared_models()
UNIT_TESTS = [
    pytest.param(model, test, id=f"{model}: {test.name}")
    for model in MODELS
    for test in declaration(model).unit_tests
]


def test_every_lake_table_written_by_a_step_is_declared() -> None:
    assert {
        "scoring/customer_days",
        "scoring/customer_state",
        "scoring/customer_segments",
        "scoring/segment_summary",
        "lifecycle/customer_lifecycle",
        "lifecycle/stage_transitions",
        "lifecycle/customer_stage_history",
        "lifecycle/danger_alerts",
        "lifecycle/stage_counts",
        "lifecycle/stage_flows",
    } <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_the_declaration_names_its_grain_and_queries(model: str) -> None:
    spec = declaration(model)
    assert spec.tests[0].name == ("unique_grain" if spec.grain else "one_row")
    assert spec.description
    for query in spec.queries:
        assert sql.load(query)


def test_most_models_have_unit_tests() -> None:
    tested = {model for model in MODELS if declaration(model).unit_tests}
    assert len(tested) >= 5, tested


@pytest.mark.parametrize(("model", "unit"), UNIT_TESTS)
def test_model(model: str, unit: UnitTest) -> None:
    spec = declaration(model)
    con = duckdb.connect()
    try:
        for name in spec.seeds:
            seeds.register(con, name)
        for view, given in unit.given.items():
            _register(con, view, given, unit.params)
        params = config_params(Settings(), spec.config) | dict(unit.params)
        output = sql.relation(con, unit.query, params).to_arrow_table()
    finally:
        con.close()
    # What the model returned passes its own declared data tests.
    failed = [result for result in _data_tests(spec, output, params) if result.failing_rows]
    assert not failed, failed
    # The columns named in any expected row; a row that leaves one out expects null.
    wanted = list(dict.fromkeys(column for row in unit.expect for column in row))
    got = [{column: row[column] for column in wanted} for row in output.to_pylist()]
    expect = [{column: row.get(column) for column in wanted} for row in unit.expect]
    assert len(got) == len(expect), got
    for actual, expected in zip(got, expect, strict=True):
        assert _comparable(actual) == _comparable(expected), (actual, expected)


def _data_tests(spec: Declaration, output: pa.Table, params: Mapping[str, Any]) -> list[Any]:
    """The declared data tests over a unit test's output, read as the model's table (with
    its partition key, from the parameters, as a written partition has it)."""
    key = spec.partition_by
    if key and key not in output.column_names and key in params:
        output = output.append_column(key, pa.array([params[key]] * output.num_rows))
    con = duckdb.connect()
    try:
        con.register(spec.table, output)
        return check_view(con, spec.model, params)
    finally:
        con.close()


def _register(
    con: duckdb.DuckDBPyConnection, view: str, given: Given, params: Mapping[str, Any]
) -> None:
    """A unit test's input as the view ``view``: its query, or its rows with the typed
    columns no row gives (all null; no row at all when there are none)."""
    if given.query:
        sql.relation(con, given.query, params).create_view(view, replace=True)
        return
    typed = ", ".join(f'null::{kind} as "{name}"' for name, kind in given.types.items())
    if not given.rows:
        con.execute(f'create or replace temp view "{view}" as select {typed} limit 0')
        return
    con.register(f"{view}_rows", _arrow(given.rows))
    if typed:
        con.execute(f'create or replace temp view "{view}" as select *, {typed} from "{view}_rows"')
    else:
        con.execute(f'create or replace temp view "{view}" as select * from "{view}_rows"')


def _arrow(rows: tuple[Mapping[str, Any], ...]) -> pa.Table:
    """The given rows as a table; a key a row leaves out is null there (TOML has no null)."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    return pa.Table.from_pylist([{column: row.get(column) for column in columns} for row in rows])


def _comparable(row: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers (floats, decimals, integers) compared as floats to 1e-9; the rest as is."""
    return {key: _number(value) for key, value in row.items()}


def _number(value: Any) -> Any:
    if isinstance(value, bool | date | str) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return pytest.approx(float(value), rel=1e-9)
    return value


@pytest.mark.parametrize(
    ("model", "rows", "failing"),
    [
        (
            "lifecycle/stage_flows",
            "select 'growth' as from_stage, 'growth' as to_stage, 3::bigint as customers",
            {"not_a_change"},
        ),
        (
            "lifecycle/stage_counts",
            "select 'nobody' as stage, 0::integer as stage_order, -1::bigint as customers,"
            " 0.0 as customer_share, 0::bigint as entered, 0::bigint as exited",
            {"not_every_stage", "negative_count", "shares_do_not_add_up"},
        ),
        (
            "lifecycle/customer_lifecycle",
            "select * from (values ('c1', 'no such stage', null::date, 1.5, null::date,"
            " null::varchar, null::date, null::double, null::double, null::varchar),"
            " ('c1', 'prospect', date '2030-01-01', 0.5, date '2030-01-01', null, null,"
            " null, null, null)) as t(customer_id, stage, last_purchase_date, risk,"
            " stage_since, danger_rules, danger_entered_on, rhythm_percentile,"
            " expected_purchases, previous_stage)",
            {
                "unique_grain",
                "range",
                "stage_not_accepted",
                "prospect_iff_no_purchase",
                "stage_since_in_future",
                "purchase_in_future",
            },
        ),
    ],
)
def test_the_data_tests_fail_on_rows_that_break_them(
    tmp_path: Any, model: str, rows: str, failing: set[str]
) -> None:
    """run_tests over a written file of bad rows names exactly the tests they break."""
    con = duckdb.connect()
    try:
        partition = tmp_path / "as_of_date=2025-01-01" / "data.parquet"
        partition.parent.mkdir()
        con.sql(rows).write_parquet(str(partition))
        results = run_tests(con, model, partition, {"as_of_date": date(2025, 1, 1)})
    finally:
        con.close()
    assert {result.name for result in results if result.failing_rows} == failing


def test_run_model_registers_the_declared_lake_inputs_or_their_stand_ins(tmp_path: Path) -> None:
    """customer_lifecycle declares the day before's stages, the week before's and the
    customer master as lake inputs: run_model reads the partitions of those dates, or
    the stand-in query when there is none (a first run)."""
    settings = with_paths(Settings(), tmp_path)
    day = date(2025, 3, 10)
    lake = Lake(settings.paths.lake)
    con = duckdb.connect()
    try:
        before = lake.partition_file("customer_lifecycle", date(2025, 3, 9), AS_OF_KEY)
        write_partition(
            con.sql("select 'A' as customer_id, 'growth' as stage, 0.25 as risk"), before
        )
        register_lake_inputs(con, settings, "lifecycle/customer_lifecycle", day)
        previous = con.execute(
            "select customer_id, stage, as_of_date from previous_customer_lifecycle"
        ).fetchall()
        assert previous == [("A", "growth", date(2025, 3, 9))]
        # Nothing a week before, no customer master: the declared stand-ins, empty.
        assert con.execute("select count(*) from week_ago_customer_lifecycle").fetchall() == [(0,)]
        assert con.execute("select count(*) from customer_master").fetchall() == [(0,)]
        # A first run (nothing the day before): the stand-in too.
        register_lake_inputs(con, settings, "lifecycle/customer_lifecycle", date(2025, 3, 1))
        assert con.execute("select count(*) from previous_customer_lifecycle").fetchall() == [(0,)]
    finally:
        con.close()


def _customer_days_on(lake: Lake, con: duckdb.DuckDBPyConnection, days: list[date]) -> None:
    for day in days:
        write_partition(
            con.sql(
                "select 'A' as customer_id, $day::date as activity_date, 1 as sale_lines",
                params={"day": day},
            ),
            lake.partition_file("customer_days", day, "export_date"),
        )


def _export_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    found = con.execute("select distinct export_date from customer_days order by 1").fetchall()
    return [day for (day,) in found]


def test_a_lake_input_window_follows_the_configuration(tmp_path: Path) -> None:
    """recent_activity's full query reads the customer days of the recent window
    (``["1 - lifecycle.recent_days", 0]``): the configuration sets the window."""
    settings = with_paths(Settings(), tmp_path)
    settings = settings.model_copy(
        update={"lifecycle": settings.lifecycle.model_copy(update={"recent_days": 14})}
    )
    day = date(2025, 3, 31)
    con = duckdb.connect()
    try:
        _customer_days_on(Lake(settings.paths.lake), con, [date(2025, 3, d) for d in range(1, 32)])
        full = "lifecycle/recent_activity_from_days"
        register_lake_inputs(con, settings, "lifecycle/recent_activity", day, {}, full)
        assert _export_dates(con) == [date(2025, 3, d) for d in range(18, 32)]
    finally:
        con.close()


def test_an_intermediate_models_lake_inputs_count_from_its_declared_date(tmp_path: Path) -> None:
    """risk_labels counts from ``cutoff_date`` (``relative_to``): the horizon after the
    cut-off, a caller's parameter, and the late span (derived from ingest's tolerance)."""
    settings = with_paths(Settings(), tmp_path)
    con = duckdb.connect()
    try:
        _customer_days_on(Lake(settings.paths.lake), con, [date(2025, 3, d) for d in range(1, 32)])
        params = {
            "cutoff_date": date(2025, 3, 10),
            "horizon_days": 7,
            "known_by": date(2025, 3, 31),
        }
        con.execute("create temp view cutoff_customers as select 'A' as customer_id")
        build_intermediate(con, settings, "lifecycle/risk_labels", params)
        span = late_span_days(settings.ingest)
        assert _export_dates(con) == [date(2025, 3, d) for d in range(11, 18 + span)]
    finally:
        con.close()


def test_a_history_input_reads_every_partition_up_to_its_date(tmp_path: Path) -> None:
    """int_purchase_days reads ``days = "history"`` counted from ``known_by``: every
    committed customer-day partition up to that date (not one after it), whatever the
    gaps between them; with none, building it is an error that names the input."""
    settings = with_paths(Settings(), tmp_path)
    exported = [date(2025, 1, 5), date(2025, 2, 1), date(2025, 3, 1), date(2025, 3, 2)]
    con = duckdb.connect()
    try:
        _customer_days_on(Lake(settings.paths.lake), con, exported)
        build_intermediate(
            con, settings, "lifecycle/int_purchase_days", {"known_by": date(2025, 3, 1)}
        )
        assert _export_dates(con) == exported[:3]
        with pytest.raises(ValueError, match="reads customer_days: no customer_days"):
            build_intermediate(
                duckdb.connect(),
                settings,
                "lifecycle/int_purchase_days",
                {"known_by": date(2025, 1, 4)},
            )
    finally:
        con.close()


@pytest.mark.parametrize(
    ("model", "window", "full"),
    [
        ("scoring/customer_state", ("scoring", "window_days"), "customer_state_from_history"),
        ("lifecycle/recent_activity", ("lifecycle", "recent_days"), "recent_activity_from_days"),
    ],
)
def test_the_incremental_state_reads_the_days_entering_and_leaving_the_window(
    tmp_path: Path, model: str, window: tuple[str, str], full: str
) -> None:
    """A state's incremental query (customer_state's, recent_activity's) reads two
    ranges of customer days (entering: the date and the late span before it; leaving:
    the window's length back and the late span after) and the day before's state; the
    customer state's full recompute reads neither them nor the day before's state, and
    the recent activity's reads the window's customer days."""
    settings = with_paths(Settings(), tmp_path)
    section, field_name = window
    settings = settings.model_copy(
        update={section: getattr(settings, section).model_copy(update={field_name: 30})}
    )
    layer, table = model.split("/")
    lake, state = Lake(settings.paths.lake), Lake(settings.paths.state)
    day, span = date(2025, 3, 31), late_span_days(settings.ingest)
    con = duckdb.connect()
    try:
        _customer_days_on(lake, con, [date(2025, 2, 20) + timedelta(days=n) for n in range(40)])
        write_partition(
            con.sql("select 'A' as customer_id"),
            state.partition_file(table, day - timedelta(days=1), AS_OF_KEY),
        )
        incremental = f"{layer}/{table}_from_previous"
        register_lake_inputs(con, settings, model, day, {}, incremental)
        entering = [day - timedelta(days=n) for n in range(span, -1, -1)]
        leaving = [day - timedelta(days=30 - n) for n in range(span + 1)]
        assert _export_dates(con) == leaving + entering
        assert con.execute(f"select count(*) from previous_{table}").fetchall() == [(1,)]
        fresh = duckdb.connect()
        register_lake_inputs(fresh, settings, model, day, {}, f"{layer}/{full}")
        with pytest.raises(duckdb.CatalogException):
            fresh.execute(f"select * from previous_{table}")
        if model == "scoring/customer_state":
            with pytest.raises(duckdb.CatalogException):
                fresh.execute("select * from customer_days")
        else:
            assert _export_dates(fresh) == [day - timedelta(days=n) for n in range(29, -1, -1)]
        fresh.close()
    finally:
        con.close()


@pytest.mark.parametrize(
    ("bound", "problem"),
    [
        ("1 - lifecycle.no_such_field", "not a configuration field"),
        ("1 -", "not a sum"),
        ("recent days", "not a sum"),
    ],
)
def test_a_malformed_window_bound_is_refused_when_read(bound: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Offset.parse(bound)


def test_days_as_a_word_must_be_history() -> None:
    from pipeline.declarations import _lake_input

    item = {"view": "customer_days", "model": "scoring/customer_days"}
    assert _lake_input(item | {"days": "history"}, ()).history
    with pytest.raises(ValueError, match="a range, a list of ranges or 'history'"):
        _lake_input(item | {"days": "all"}, ())
    with pytest.raises(ValueError, match="not a window"):
        _lake_input(item | {"days": "history"}, ()).dates(Settings(), date(2025, 3, 1), {})


def test_a_window_naming_an_unknown_value_is_named_when_evaluated() -> None:
    with pytest.raises(ValueError, match="horizon_days is neither"):
        Offset.parse("horizon_days + 1").days(Settings(), {})


def test_run_model_names_a_view_its_query_reads_that_nobody_registered(tmp_path: Path) -> None:
    settings = with_paths(Settings(), tmp_path)
    con = duckdb.connect()
    try:
        with pytest.raises(ValueError, match=r"reads \['customer_segments'\]"):
            run_model(con, settings, "scoring/segment_summary", date(2025, 3, 10))
    finally:
        con.close()
    assert not Lake(settings.paths.lake).partition_dates("segment_summary", AS_OF_KEY)


@pytest.mark.parametrize("model", MODELS)
def test_every_declared_input_is_read_by_the_models_queries(model: str) -> None:
    """A declaration's inputs stay true to its SQL: each is read by one of its queries."""
    spec = declaration(model)
    texts = " ".join(sql.load(query) for query in spec.queries)
    unread = [name for name in spec.inputs if not re.search(rf"\b{name}\b", texts)]
    assert not unread, unread


def test_a_partition_failing_its_tests_is_never_written_and_the_dates_last_stays(
    tmp_path: Path,
) -> None:
    """run_model tests what it wrote before renaming it into place (write, audit,
    publish): a failing partition is never seen, and does not cost the date the
    partition it would have replaced."""
    settings = with_paths(Settings(), tmp_path)
    day = date(2025, 3, 2)
    params = {"late_span_days": late_span_days(settings.ingest)}
    lines = (
        "select $day::date as export_date, {customer} as customer_id,"
        " $day::date as activity_date, 'o1' as order_id, true as is_sale, 10.0 as amount"
    )
    con = duckdb.connect()
    try:
        con.sql(lines.format(customer="'a'"), params={"day": day}).create_view("int_customer_lines")
        target = run_model(con, settings, "scoring/customer_days", day, params)
        written = target.read_bytes()
        # A customer without an id breaks the grain: the date is re-run with it.
        con.sql(lines.format(customer="null::varchar"), params={"day": day}).create_view(
            "int_customer_lines", replace=True
        )
        with pytest.raises(DataCheckError, match=r"customer_days 2025-03-02 .*key_null"):
            run_model(con, settings, "scoring/customer_days", day, params)
        assert target.read_bytes() == written
        assert list(target.parent.iterdir()) == [target]  # no temporary left behind
        # A date with no partition before gets none.
        later = day + timedelta(days=1)
        with pytest.raises(DataCheckError, match="key_null"):
            run_model(con, settings, "scoring/customer_days", later, params)
    finally:
        con.close()
    dates = Lake(settings.paths.lake).partition_dates("customer_days", "export_date")
    assert dates == [day]
