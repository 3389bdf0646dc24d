"""Every table declared once, beside the SQL that writes it, and run by one function.

``sql/<layer>/<table>.toml`` says what ``sql/<layer>/<table>.sql`` (or the queries it
names) produces: how it is materialized, the folder it lives in (``store``: the lake, or
the working ``state``), its partition key and grain, the views the SQL reads, the
configuration sections it binds, and its data tests: per column ``not_null``,
``accepted_values`` or ``accepted_from`` a seed, ``range``; per table singular tests,
each a SQL expression counting failing rows. The published tables' contracts
(``sql/publish/*.toml``) state their columns in the same words.

``materialized`` is ``"partition"`` (the default: a table of the lake or the state, one
Parquet partition per date) or, for an intermediate model that lives only in a step's
connection, ``"view"`` or ``"temp_table"`` (dbt's ephemeral models and SQLMesh's VIEW
kind; no store, no partition key).

An input is a view name (the step registers it: a table it has just built, a model's
scores) or a lake input, ``{ view, model, days = [first, last], when_missing }``: the
partitions of a declared table on dates relative to the date written, or a stand-in
query when there is none (``previous_customer_lifecycle``: ``customer_lifecycle`` of the
day before, ``lifecycle/no_previous_lifecycle`` on a first run). A bound of ``days`` is
an integer or a sum of terms, each an integer, a configuration field (``section.field``),
a value derived from the configuration (``late_span_days``) or one of the caller's
parameters: ``customer_days`` over ``["1 - lifecycle.recent_days", 0]`` is the recent
window (lifecycle_features), over ``[1, "horizon_days + late_span_days"]`` a horizon and
the late lines exported after it (risk_labels). An intermediate model's lake
inputs are registered when it is built, relative to its ``as_of_date`` parameter (or the
parameter its ``relative_to`` names).

``run_model`` is the step skeleton written once: register the declared lake inputs and
check the others are there, bind the declared configuration and the caller's values,
write the partition atomically, run the declared tests over what was
written, and remove the partition again if any fails. ``build_intermediate`` builds an
intermediate model in a step's connection, once its declared inputs are there; its data
tests run on the outputs of its unit tests (tests/models). ``build_unwritten`` builds a
partitioned model's query the same way, as a temporary table that is not written: a
state's full query for a past date whose partition is no longer kept.

A unit test gives each input the query reads as rows (``given.<view> = [...]``; a key a
row leaves out is null there), as ``{ rows = [...], types = { column = "DATE" } }`` when
a column has no value in any row or the input is empty (TOML has no null), or as
``{ query = "lifecycle/no_previous_lifecycle" }``, a query of the project (the stand-in a
step registers on a first run). Its output must equal ``expect`` in the columns named
there and pass the model's declared data tests.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import seeds, sql
from pipeline.errors import ConfigError, DataCheckError
from pipeline.lake import Lake, write_partition

if TYPE_CHECKING:
    import duckdb

    from pipeline.config import Settings

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TYPE = re.compile(r"^[A-Z][A-Z ]*(\(\d+(, ?\d+)?\))?$")
_SEED_REFERENCE = re.compile(r"^([a-z0-9_]+)\.csv:([a-z0-9_]+)$")
_STORES = ("lake", "state")
_MATERIALIZED = ("partition", "view", "temp_table")
_SECTIONS = ("ingest", "scoring", "clusters", "lifecycle")
_TERM = re.compile(r"\s*([+-])?\s*(\d+|[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\s*")


@dataclass(frozen=True)
class Offset:
    """A bound of a lake input's dates: a number of days relative to the model's date,
    ``constant`` plus or minus named values (``(sign, name)``: a configuration field
    ``section.field``, a value derived from the configuration, or a parameter)."""

    constant: int
    terms: tuple[tuple[int, str], ...] = ()

    @staticmethod
    def parse(bound: int | str) -> Offset:
        if isinstance(bound, int):
            return Offset(bound)
        text, constant, terms, at = str(bound), 0, [], 0
        while at < len(text):
            match = _TERM.match(text, at)
            if not match or match.end() == at or (at and not match.group(1)):
                raise ValueError(f"days: {text!r} is not a sum of integers and names")
            sign = -1 if match.group(1) == "-" else 1
            if match.group(2).isdigit():
                constant += sign * int(match.group(2))
            else:
                terms.append((sign, _checked_name(match.group(2))))
            at = match.end()
        return Offset(constant, tuple(terms))

    def days(self, settings: Settings, params: Mapping[str, Any]) -> int:
        """The offset under ``settings`` and the caller's ``params``.

        Raises:
            ValueError: a name is neither a parameter nor a derived value.
        """
        total = self.constant
        for sign, name in self.terms:
            if "." in name:
                section, _, field_name = name.partition(".")
                value = getattr(getattr(settings, section), field_name)
            elif name in params:
                value = params[name]
            elif name in _DERIVED:
                value = _DERIVED[name](settings)
            else:
                raise ValueError(f"days: {name} is neither a parameter nor a derived value")
            total += sign * int(value)
        return total


def _late_span_days(settings: Settings) -> int:
    from pipeline.config import late_span_days

    return late_span_days(settings.ingest)


# Values derived from the configuration that a lake input's dates may name.
_DERIVED = {"late_span_days": _late_span_days}


def _checked_name(name: str) -> str:
    """A configuration field must exist (checked when the declaration is read)."""
    if "." in name:
        from pipeline.config import Settings

        section, _, field_name = name.partition(".")
        model = Settings.model_fields.get(section)
        annotation = model.annotation if model else None
        fields = getattr(annotation, "model_fields", {})
        if field_name not in fields:
            raise ValueError(f"days: {name} is not a configuration field")
    return name


def identifier(name: str) -> str:
    """``name`` if it is a plain lower-case SQL identifier, else ValueError."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "" where a declaration leaves the type to its SQL
    description: str
    not_null: bool = False
    accepted_values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class DataTest:
    """One check: an aggregate SQL expression over the table's view giving failing rows."""

    name: str
    column: str | None
    detail: str
    failing: str


def parse_column(item: Mapping[str, Any], *, typed: bool) -> Column:
    """A column's entry, as contracts and declarations write it."""
    unknown = set(item) - {
        "name",
        "type",
        "description",
        "not_null",
        "accepted_values",
        "accepted_from",
        "range",
    }
    if unknown:
        raise ValueError(f"column {item.get('name')!r}: unknown keys {sorted(unknown)}")
    type_name = str(item["type"]) if typed or "type" in item else ""
    if type_name and not _TYPE.match(type_name):
        raise ValueError(f"column {item['name']!r}: not a type: {type_name!r}")
    accepted = [str(value) for value in item.get("accepted_values", [])]
    if "accepted_from" in item:
        accepted += seed_values(item["accepted_from"])
    low, high = item.get("range", [None, None])
    return Column(
        name=identifier(str(item["name"])),
        type=type_name,
        description=str(item.get("description", "")),
        not_null=bool(item.get("not_null", False)),
        accepted_values=tuple(dict.fromkeys(accepted)),
        minimum=None if low is None else float(low),
        maximum=None if high is None else float(high),
    )


def seed_values(reference: Any) -> list[str]:
    """The values a column may take from a seed: ``"lifecycle_stages.csv:stage"``, or
    ``{ seed = "lifecycle_stages.csv:stage", where = { can_enter_danger = true } }``."""
    where: dict[str, Any] = {}
    if isinstance(reference, Mapping):
        where = dict(reference.get("where", {}))
        reference = reference["seed"]
    match = _SEED_REFERENCE.match(str(reference))
    if not match:
        raise ValueError(f"accepted_from must look like seed.csv:column, not {reference!r}")
    name, column = match.groups()
    return [str(value) for value in seeds.values(name, column, **where)]


def column_tests(columns: Sequence[Column]) -> tuple[list[DataTest], dict[str, Any]]:
    """The column-level tests (not null, accepted values, range) and the values they bind."""
    tests: list[DataTest] = []
    params: dict[str, Any] = {}
    for position, column in enumerate(columns):
        quoted = f'"{column.name}"'
        if column.not_null:
            tests.append(DataTest("not_null", column.name, "", _count(f"{quoted} is null")))
        if column.accepted_values:
            params[f"values_{position}"] = list(column.accepted_values)
            tests.append(
                DataTest(
                    "accepted_values",
                    column.name,
                    ", ".join(column.accepted_values),
                    _count(
                        f"{quoted} is not null and not list_contains("
                        f"$values_{position}::varchar[], {quoted}::varchar)"
                    ),
                )
            )
        if column.minimum is not None or column.maximum is not None:
            params[f"low_{position}"] = column.minimum if column.minimum is not None else -1e308
            params[f"high_{position}"] = column.maximum if column.maximum is not None else 1e308
            tests.append(
                DataTest(
                    "range",
                    column.name,
                    f"[{column.minimum}, {column.maximum}]",
                    _count(f"{quoted} < $low_{position} or {quoted} > $high_{position}"),
                )
            )
    return tests, params


def _count(where: str) -> str:
    return f"count(*) filter (where {where})"


@dataclass(frozen=True)
class Given:
    """One input of a unit test: rows (a key a row leaves out is null there), the SQL
    types of columns no row gives a value (TOML has no null: an all-null column, or an
    empty view), or one of the project's own queries (``query``, e.g. the empty stand-in
    a step registers on a first run)."""

    rows: tuple[Mapping[str, Any], ...] = ()
    types: Mapping[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass(frozen=True)
class UnitTest:
    """Given rows for the views a query reads and parameters, the rows it must return
    (only the columns listed, in the query's order): a model test on in-memory DuckDB."""

    name: str
    query: str
    params: Mapping[str, Any]
    given: Mapping[str, Given]
    expect: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class LakeInput:
    """An input the runner registers itself: partitions of a declared table, by their
    dates relative to the date the model is built for (``days``: first and last offset,
    e.g. ``(-1, -1)`` the day before, each an integer or a sum of terms naming
    configuration fields, derived values or the caller's parameters:
    ``"1 - lifecycle.recent_days"``; or a list of such ranges), or, when none exists, a
    stand-in query. With ``query``, only that query of the model reads it. ``days =
    "history"``: every partition committed on or before the date (a fit's or a
    backtest's whole history)."""

    view: str  # the name the SQL reads
    model: str  # the declared table read, "layer/table"
    days: tuple[tuple[Offset, Offset], ...]  # ranges of dates, first and last offsets
    when_missing: str  # a query standing in with no partition ("": an error)
    query: str = ""  # "": every query of the model reads it
    history: bool = False  # every committed partition up to the date, not ``days``

    def dates(self, settings: Settings, day: date, params: Mapping[str, Any]) -> list[date]:
        """The dates of the partitions read for ``day``, in order, each once.

        Raises:
            ValueError: a name has no value, or the input reads the whole history (whose
                dates only the lake knows: :func:`register_lake_inputs` asks it).
        """
        from pipeline.scoring.inputs import date_range  # imports duckdb

        if self.history:
            raise ValueError(f"{self.view} reads every partition up to the date, not a window")
        found: set[date] = set()
        for first_bound, last_bound in self.days:
            first = day + timedelta(days=first_bound.days(settings, params))
            last = day + timedelta(days=last_bound.days(settings, params))
            found.update(date_range(first, last))  # none when it ends before it starts
        return sorted(found)


@dataclass(frozen=True)
class Declaration:
    """What one table is: ``sql/<layer>/<table>.toml``."""

    layer: str
    table: str
    description: str
    materialized: str  # "partition", or "view"/"temp_table" for an intermediate model
    store: str  # "lake" or "state": which configured folder holds a partitioned table
    partition_by: str  # "" for an intermediate model
    grain: tuple[str, ...]
    queries: tuple[str, ...]  # the models that may write it, "layer/name"
    inputs: tuple[str, ...]  # the views its SQL reads
    lake_inputs: tuple[LakeInput, ...]  # those run_model registers from the lake itself
    seeds: tuple[str, ...]  # seeds its SQL or tests read as views
    config: tuple[str, ...]  # configuration sections bound by field name
    columns: tuple[Column, ...]
    tests: tuple[DataTest, ...]  # the grain's uniqueness, the columns', the singular ones
    test_params: Mapping[str, Any]
    unit_tests: tuple[UnitTest, ...] = ()
    relative_to: str = "as_of_date"  # the parameter an intermediate's lake inputs count from

    @property
    def model(self) -> str:
        return f"{self.layer}/{self.table}"

    @property
    def intermediate(self) -> bool:
        return self.materialized != "partition"

    def folder(self, settings: Settings) -> Path:
        return Path(settings.paths.lake if self.store == "lake" else settings.paths.state)


@cache
def declaration(model: str) -> Declaration:
    """Read and validate ``sql/<layer>/<table>.toml`` (``model`` is ``"layer/table"``).

    Raises:
        ConfigError: the declaration is missing or malformed (named key and file).
    """
    layer, _, table = model.partition("/")
    path = sql.sql_root() / identifier(layer) / f"{identifier(table)}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return _parse(layer, table, raw)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"declaration {path}: {error}") from None


def declared_models() -> list[str]:
    """Every declared table outside ``sql/publish`` (whose files are contracts)."""
    root = sql.sql_root()
    return sorted(
        f"{path.parent.name}/{path.stem}"
        for path in root.glob("*/*.toml")
        if path.parent.name != "publish"
    )


def _parse(layer: str, table: str, raw: dict[str, Any]) -> Declaration:
    unknown = set(raw) - {
        "description",
        "materialized",
        "store",
        "partition_by",
        "grain",
        "queries",
        "inputs",
        "seeds",
        "config",
        "columns",
        "tests",
        "unit_tests",
        "relative_to",
    }
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    materialized = raw.get("materialized", "partition")
    if materialized not in _MATERIALIZED:
        raise ValueError(f"materialized must be one of {_MATERIALIZED}, not {materialized!r}")
    store = raw.get("store", "lake")
    if store not in _STORES:
        raise ValueError(f"store must be one of {_STORES}, not {store!r}")
    if materialized == "partition":
        partition_by = identifier(str(raw["partition_by"]))
    elif "partition_by" in raw or "store" in raw:
        raise ValueError(f"a {materialized} has no partition_by or store: it is never written")
    else:
        partition_by = ""
    config = tuple(raw.get("config", []))
    if not set(config) <= set(_SECTIONS):
        raise ValueError(f"config sections must be among {_SECTIONS}, not {list(config)}")
    declared_seeds = tuple(str(name) for name in raw.get("seeds", []))
    for name in declared_seeds:
        seeds.path(name)  # an unknown seed is an error
    columns = tuple(parse_column(item, typed=False) for item in raw.get("columns", []))
    grain = tuple(identifier(name) for name in raw["grain"])
    key = ", ".join(f'"{name}"' for name in grain)
    # An empty grain declares one row (a population's figures): the test says so.
    tests = [
        DataTest("unique_grain", None, f"grain ({key})", f"count(*) - count(distinct ({key}))")
        if grain
        else DataTest("one_row", None, "exactly one row", "abs(count(*) - 1)")
    ]
    from_columns, test_params = column_tests(columns)
    tests += from_columns
    for item in raw.get("tests", []):
        tests.append(_singular(item))
    names = [test.name for test in tests if test.column is None]
    if len(set(names)) != len(names):
        raise ValueError("a test name is used twice")
    queries = tuple(raw.get("queries", [f"{layer}/{table}"]))
    for query in queries:
        sql.load(query)  # a query that does not exist is an error now, not mid-run
    return Declaration(
        layer=layer,
        table=identifier(table),
        description=str(raw["description"]),
        materialized=materialized,
        store=store,
        partition_by=partition_by,
        grain=grain,
        queries=queries,
        inputs=tuple(
            identifier(item["view"] if isinstance(item, Mapping) else str(item))
            for item in raw.get("inputs", [])
        ),
        lake_inputs=tuple(
            _lake_input(item, queries)
            for item in raw.get("inputs", [])
            if isinstance(item, Mapping)
        ),
        seeds=declared_seeds,
        config=config,
        columns=columns,
        tests=tuple(tests),
        test_params=test_params,
        unit_tests=tuple(_unit_test(item, queries) for item in raw.get("unit_tests", [])),
        relative_to=identifier(str(raw.get("relative_to", "as_of_date"))),
    )


def _unit_test(item: Mapping[str, Any], queries: Sequence[str]) -> UnitTest:
    unknown = set(item) - {"name", "query", "params", "given", "expect"}
    if unknown:
        raise ValueError(f"unit test {item.get('name')!r}: unknown keys {sorted(unknown)}")
    query = str(item.get("query", queries[0]))
    if query not in queries:
        raise ValueError(f"unit test {item['name']!r}: {query} is not a declared query")
    return UnitTest(
        name=str(item["name"]),
        query=query,
        params=dict(item.get("params", {})),
        given={identifier(view): _given(value) for view, value in item.get("given", {}).items()},
        expect=tuple(item["expect"]),
    )


def _lake_input(item: Mapping[str, Any], queries: Sequence[str]) -> LakeInput:
    unknown = set(item) - {"view", "model", "days", "when_missing", "query"}
    if unknown:
        raise ValueError(f"input {item.get('view')!r}: unknown keys {sorted(unknown)}")
    days = item["days"]
    history = days == "history"
    if isinstance(days, str) and not history:
        raise ValueError(f"input {item['view']!r}: days is a range, a list of ranges or 'history'")
    ranges = [] if history else days if days and isinstance(days[0], list) else [days]
    parsed = []
    for bounds in ranges:
        first, last = (Offset.parse(bound) for bound in bounds)
        if first.terms == last.terms == () and first.constant > last.constant:
            raise ValueError(f"input {item['view']!r}: days {first.constant} > {last.constant}")
        parsed.append((first, last))
    when_missing = str(item.get("when_missing", ""))
    if when_missing:
        sql.load(when_missing)
    query = str(item.get("query", ""))
    if query and query not in queries:
        raise ValueError(f"input {item['view']!r}: {query} is not a query of the model")
    return LakeInput(
        view=identifier(str(item["view"])),
        model=str(item["model"]),
        days=tuple(parsed),
        when_missing=when_missing,
        query=query,
        history=history,
    )


def _given(value: Any) -> Given:
    """A unit test's input: a list of rows, or ``{ rows, types }``, or ``{ query }``."""
    if isinstance(value, list):
        value = {"rows": value}
    unknown = set(value) - {"rows", "types", "query"}
    if unknown:
        raise ValueError(f"given: unknown keys {sorted(unknown)}")
    types = {identifier(str(name)): str(kind) for name, kind in value.get("types", {}).items()}
    for kind in types.values():
        if not _TYPE.match(kind):
            raise ValueError(f"given: not a type: {kind!r}")
    query = str(value.get("query", ""))
    if query:
        if "rows" in value or types:
            raise ValueError("given: a query takes no rows or types")
        sql.load(query)
    rows = tuple(value.get("rows", []))
    if not (rows or types or query):
        raise ValueError("given: an empty input needs the types of its columns")
    return Given(rows=rows, types=types, query=query)


def _singular(item: Mapping[str, Any]) -> DataTest:
    unknown = set(item) - {"name", "description", "fails_where", "failing_rows"}
    if unknown:
        raise ValueError(f"test {item.get('name')!r}: unknown keys {sorted(unknown)}")
    if ("fails_where" in item) == ("failing_rows" in item):
        raise ValueError(f"test {item.get('name')!r}: give fails_where or failing_rows")
    failing = _count(item["fails_where"]) if "fails_where" in item else str(item["failing_rows"])
    return DataTest(identifier(str(item["name"])), None, str(item.get("description", "")), failing)


def config_params(settings: Settings, sections: Sequence[str]) -> dict[str, Any]:
    """The named configuration sections' fields, by field name, as SQL binds them.

    Raises:
        ConfigError: two sections have a field of the same name (a SQL parameter would
            be ambiguous).
    """
    params: dict[str, Any] = {}
    for section in sections:
        fields = getattr(settings, section).model_dump()
        clash = params.keys() & fields.keys()
        if clash:
            raise ConfigError(f"configuration sections {list(sections)} share {sorted(clash)}")
        params |= fields
    return params


@dataclass(frozen=True)
class TestResult:
    name: str
    column: str | None
    failing_rows: int


def run_tests(
    con: duckdb.DuckDBPyConnection,
    model: str,
    partition: Path,
    params: Mapping[str, Any] | None = None,
    *,
    register_seeds: bool = True,
) -> list[TestResult]:
    """Every declared test of ``model`` over one written partition file (its partition
    key from the path), in one scan. ``register_seeds=False``: the caller has registered
    the declared seeds."""
    return check_view(con, model, params, register_seeds=register_seeds, file=partition)


def check_view(
    con: duckdb.DuckDBPyConnection,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    register_seeds: bool = True,
    file: Path | None = None,
) -> list[TestResult]:
    """Every declared test of ``model`` over the view or table named after it in ``con``
    (a unit test's output), or over ``file`` (a written partition, read under that name
    for the query alone), in one scan."""
    spec = declaration(model)
    for name in spec.seeds if register_seeds else ():
        seeds.register(con, name)
    query = "select " + ", ".join(test.failing for test in spec.tests) + f' from "{spec.table}"'
    bound = dict(spec.test_params) | dict(params or {})
    if file is not None:
        source = "select * from read_parquet($tested_file, hive_partitioning = true)"
        query = f'with "{spec.table}" as ({source})\n{query}'
        bound["tested_file"] = str(file)
    wanted = sql.parameters_of(query)
    missing = wanted - bound.keys()
    if missing:
        raise KeyError(f"{model} tests: no value for parameter(s) {sorted(missing)}")
    counts = con.execute(query, {name: bound[name] for name in sorted(wanted)}).fetchall()[0]
    return [
        TestResult(test.name, test.column, int(count or 0))
        for test, count in zip(spec.tests, counts, strict=True)
    ]


def describe(result: TestResult) -> str:
    label = f"{result.name}({result.column})" if result.column else result.name
    return f"{label} ({result.failing_rows:,} rows)"


def run_model(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    model: str,
    day: date,
    params: Mapping[str, Any] | None = None,
    *,
    query: str | None = None,
) -> Path:
    """Write ``day``'s partition of the declared ``model`` and test it.

    Binds the declared configuration sections, the partition key (``day``) and ``params``
    (the caller's: derived values, lookups, fitted models) to the query, writes the
    partition aside, runs the declared tests on what was written, and only then renames
    it into place (write, audit, publish). The declared lake inputs and seeds are
    registered here; the other views the query reads must be registered by the caller (a
    missing one is an error that names it). ``query`` picks one of the declared queries
    (default: the table's own file).

    Raises:
        DataCheckError: a test failed; nothing was written (the date's partition before,
            if any, stays as it was).
        ValueError: a view the query reads is not registered, or a lake input has no
            partition and no stand-in.
    """
    spec = declaration(model)
    if spec.intermediate:
        raise ValueError(f"{model} is an intermediate model: build_intermediate builds it")
    chosen = query or spec.queries[0]
    if chosen not in spec.queries:
        raise ValueError(f"{chosen} is not a query of {model} (declared: {list(spec.queries)})")
    register_lake_inputs(con, settings, model, day, params, chosen)
    for name in spec.seeds:
        seeds.register(con, name)
    bound = config_params(settings, spec.config) | {spec.partition_by: day} | dict(params or {})
    target = Lake(spec.folder(settings)).partition_file(spec.table, day, spec.partition_by)
    with _inputs_named_on_error(con, spec, chosen):
        relation = sql.relation(con, chosen, bound)

    def audit(written: Path) -> None:
        results = run_tests(con, model, written, bound, register_seeds=False)
        failed = [result for result in results if result.failing_rows]
        if failed:
            described = ", ".join(describe(result) for result in failed)
            raise DataCheckError(f"{spec.table} {day} failed its tests: {described}")

    write_partition(relation, target, audit)
    # The view named after the table reads what was written, as the steps expect.
    con.read_parquet(str(target), hive_partitioning=True).create_view(spec.table, replace=True)
    return target


def build_intermediate(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    customers: str | None = None,
    registered: Collection[str] = (),
) -> None:
    """Build the declared intermediate ``model`` in ``con``, named after it: a temporary
    view or table, as declared (``materialized``).

    Binds the declared configuration sections and ``params`` (the caller's: the date,
    derived values) and registers the declared seeds and lake inputs (relative to the
    parameter ``relative_to`` names, ``as_of_date`` unless declared). With
    ``customers`` (a registered view or table with a ``customer_id`` column), the lake
    inputs keep only those customers' rows: for a model whose rows are each one
    customer's own, the build over a sample of customers. The lake inputs named in
    ``registered`` are the caller's, already registered: for a query that keeps its
    declared window by its own date filters, one table read once for many dates.

    Raises:
        ValueError: ``model`` is a partitioned table (``run_model`` writes those), or a
            declared input is not registered in ``con`` (named).
    """
    spec = declaration(model)
    if not spec.intermediate:
        raise ValueError(f"{model} is a partitioned table: run_model writes it")
    bound = config_params(settings, spec.config) | dict(params or {})
    if spec.lake_inputs:
        register_lake_inputs(
            con,
            settings,
            model,
            bound[spec.relative_to],
            bound,
            customers=customers,
            registered=registered,
        )
    for name in spec.seeds:
        seeds.register(con, name)
    with _inputs_named_on_error(con, spec, model):
        if spec.materialized == "view":
            sql.relation(con, model, bound).create_view(spec.table, replace=True)
        else:
            sql.materialize(con, model, bound)


def build_unwritten(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    model: str,
    day: date,
    params: Mapping[str, Any] | None = None,
    *,
    query: str,
    customers: str | None = None,
    registered: Collection[str] = (),
) -> None:
    """Build ``day``'s rows of the partitioned ``model`` by its declared ``query`` into a
    temporary table named after the model, without writing them: a state's full query
    for a past date whose partition is no longer kept (the risk model's cut-offs read
    the recent activity so). Binds and registers as :func:`run_model` does; ``customers``
    and ``registered`` as in :func:`build_intermediate`. Its data tests run where it is
    written.

    Raises:
        ValueError: ``model`` is intermediate, ``query`` is not one of its queries, or
            a declared input is not registered in ``con`` (named).
    """
    spec = declaration(model)
    if spec.intermediate:
        raise ValueError(f"{model} is an intermediate model: build_intermediate builds it")
    if query not in spec.queries:
        raise ValueError(f"{query} is not a query of {model} (declared: {list(spec.queries)})")
    register_lake_inputs(
        con, settings, model, day, params, query, customers=customers, registered=registered
    )
    for name in spec.seeds:
        seeds.register(con, name)
    bound = config_params(settings, spec.config) | {spec.partition_by: day} | dict(params or {})
    with _inputs_named_on_error(con, spec, query):
        sql.materialize(con, query, bound, name=spec.table)


def register_lake_inputs(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    model: str,
    day: date,
    params: Mapping[str, Any] | None = None,
    query: str | None = None,
    *,
    customers: str | None = None,
    registered: Collection[str] = (),
) -> None:
    """Register ``model``'s declared lake inputs for ``day`` (those of ``query`` when it
    is given): each a view over the partitions of its table on the declared dates
    (under ``settings`` and the caller's ``params``), or its stand-in when there is none.
    With ``customers`` (a registered view or table), a table with a ``customer_id``
    column is read for those customers only. The inputs named in ``registered`` are the
    caller's, already registered.

    Raises:
        ValueError: an input has no partition on its dates and no stand-in (named).
    """
    from pipeline.scoring.inputs import register_parquet  # imports duckdb

    if customers is not None:
        identifier(customers)
    for item in declaration(model).lake_inputs:
        if (item.query and query is not None and item.query != query) or item.view in registered:
            continue
        source = declaration(item.model)
        if source.intermediate:
            raise ValueError(f"{model}: input {item.view} reads {item.model}, not a table")
        lake = Lake(source.folder(settings))
        if item.history:  # partition_dates lists committed partitions only
            dates = [d for d in lake.partition_dates(source.table, source.partition_by) if d <= day]
            files = [lake.partition_file(source.table, d, source.partition_by) for d in dates]
        else:
            dates = item.dates(settings, day, params or {})
            files = lake.existing_partitions(source.table, dates, source.partition_by)
        if files:
            # By name: a partition written before a column was added reads as null there.
            register_parquet(
                con,
                item.view,
                [str(path) for path in files],
                union_by_name=True,
                customers=customers,
            )
        elif item.when_missing:
            sql.relation(con, item.when_missing).create_view(item.view, replace=True)
        else:
            raise ValueError(f"{model} reads {item.view}: no {source.table} {_span(dates)}")


def _span(dates: list[date]) -> str:
    return f"from {dates[0]} to {dates[-1]}" if dates else "on no date"


def input_dates(
    settings: Settings,
    model: str,
    view: str,
    day: date,
    params: Mapping[str, Any],
    query: str | None = None,
) -> list[date]:
    """The dates of the partitions ``model`` (its ``query``, when given) reads as its
    lake input ``view`` for ``day`` (for a step that makes sure they exist first, or
    reads them once for many dates).

    Raises:
        ValueError: ``model`` declares no lake input ``view`` (for ``query``).
    """
    for item in declaration(model).lake_inputs:
        if item.view == view and not (item.query and query is not None and item.query != query):
            return item.dates(settings, day, params)
    raise ValueError(f"{model} declares no lake input {view}")


@contextmanager
def _inputs_named_on_error(
    con: duckdb.DuckDBPyConnection, spec: Declaration, query: str
) -> Iterator[None]:
    """If binding ``query`` fails, say which declared inputs it reads are not registered
    (checked only then: the catalog query costs milliseconds on every model)."""
    try:
        yield
    except Exception as error:
        _require_inputs(con, spec, query, error)
        raise


def _require_inputs(
    con: duckdb.DuckDBPyConnection, spec: Declaration, query: str, error: Exception
) -> None:
    """Raise ValueError from ``error`` if a declared input ``query`` (one of the model's
    queries) reads is not registered in ``con``."""
    text = sql.load(query)
    # duckdb_views() (registered Arrow tables too) and duckdb_tables(): a third of the
    # cost of information_schema.tables, on every model of every step.
    present = {
        str(name)
        for (name,) in con.execute(
            "select view_name from duckdb_views() where not internal"
            " union all select table_name from duckdb_tables()"
        ).fetchall()
    }
    read = [name for name in spec.inputs if re.search(rf"\b{name}\b", text)]
    missing = [name for name in read if name not in present]
    if missing:
        raise ValueError(f"{spec.model} reads {missing}: register them first") from error
