"""Load export files into one all-text table, ``raw_export_lines``, with file row numbers.

Every column stays text here so that no value can fail to load: parsing and its
failures belong to the staging model, where each failure becomes a quarantine reason.
Other exports (the customer master) load the same way into their own raw table, with
their own header mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.config import SourceConfig
from pipeline.errors import RejectedFileError
from pipeline.ingest.decoding import (
    CANONICAL_COLUMNS,
    HeaderMapping,
    map_columns,
    prepare_csv,
    sales_header_mapping,
)
from pipeline.ingest.files import ExportFile

RAW_TABLE = "raw_export_lines"
_FILE_ROWS = "export_file_rows"
_REJECTS = "export_file_rejects"
_REJECTS_SCAN = "export_file_rejects_scan"
# Rows that do not parse are set aside in _REJECTS (with their line) instead of failing.
_TOLERANT = (
    f", ignore_errors = true, store_rejects = true, rejects_table = '{_REJECTS}',"
    f" rejects_scan = '{_REJECTS_SCAN}'"
)


def create_raw_table(
    con: duckdb.DuckDBPyConnection,
    table: str = RAW_TABLE,
    canonical_columns: Sequence[str] = CANONICAL_COLUMNS,
) -> None:
    columns = ",\n    ".join(f"{column} varchar" for column in canonical_columns)
    # load_problem, source_line and raw_text are set for a row that could not be split
    # into the header's fields (wrong_field_count): its columns are then all null.
    con.execute(
        f"create or replace temp table {table} (\n"
        f"    source_file varchar not null,\n    file_order integer not null,\n"
        f"    source_row bigint not null,\n    {columns},\n"
        f"    load_problem varchar,\n    source_line bigint,\n    raw_text varchar,\n"
        f"    may_have_control_bytes boolean\n)"
    )


def load_export_file(
    con: duckdb.DuckDBPyConnection,
    export: ExportFile,
    file_order: int,
    source: SourceConfig,
    scratch: Path,
    table: str = RAW_TABLE,
    mapping: HeaderMapping | None = None,
) -> dict[str, str]:
    """Append one file's rows to ``table`` (made by create_raw_table with ``mapping``'s
    columns; the sales exports' by default); returns how it was read.

    ``file_order`` is the file's precedence among the day's files (0 first).

    Raises:
        RejectedFileError: the file cannot be read whole; nothing of it is kept.
    """
    target = _Target(
        table, mapping or sales_header_mapping(source), row_problems=table == RAW_TABLE
    )
    if export.file_format == "parquet":
        return _load_parquet(con, export, file_order, target)
    return _load_csv(con, export, file_order, source, scratch, target)


@dataclass(frozen=True)
class _Target:
    """The raw table a file is appended to, and how its headers map to that table."""

    table: str
    mapping: HeaderMapping
    # Whether a row with a wrong field count is kept as a row problem (the sales
    # exports' staging gives it a reason) rather than rejecting the whole file.
    row_problems: bool = False


def _load_csv(
    con: duckdb.DuckDBPyConnection,
    export: ExportFile,
    file_order: int,
    source: SourceConfig,
    scratch: Path,
    target: _Target,
) -> dict[str, str]:
    layout = prepare_csv(export, source, scratch, target.mapping)
    names = [f"column{position:04d}" for position in range(layout.width)]
    params = {
        "path": str(layout.utf8_path),
        "columns": dict.fromkeys(names, "VARCHAR"),
        "delimiter": layout.delimiter,
        "compression": layout.compression,
        "skip": source.skip_rows,
    }
    read_sql = (
        f"create or replace temp table {_FILE_ROWS} as "
        "select * from read_csv($path, header = true, auto_detect = false, columns = $columns,"
        " delim = $delimiter, quote = '\"', escape = '\"', strict_mode = true,"
        " null_padding = false, encoding = 'utf-8', compression = $compression,"
        " skip = $skip{options})"
    )
    bad_rows: list[_BadRow] = []
    try:
        # Strict first: a clean file (nearly all of them) is read once, at full speed.
        con.execute(read_sql.format(options=""), params)
    except duckdb.Error as error:
        if not target.row_problems:
            raise RejectedFileError(
                export.name, _csv_problem(error), code="malformed_csv"
            ) from None
        # Read again, setting aside the rows that do not parse, to quarantine them.
        try:
            con.execute(read_sql.format(options=_TOLERANT), params)
            bad_rows = _wrong_field_count_rows(con, export, source.skip_rows)
        except duckdb.Error as error:
            raise RejectedFileError(
                export.name, _csv_problem(error), code="malformed_csv"
            ) from None
        finally:
            con.execute(f"drop table if exists {_REJECTS}; drop table if exists {_REJECTS_SCAN}")
    present = {column: names[position] for column, position in layout.column_index.items()}
    if not bad_rows:
        # Insertion order is file order (DuckDB preserves it): rowid is the data row number.
        _append(con, target, export, file_order, "rowid + 1", present, _FILE_ROWS)
    else:
        good_rows = con.execute(f"select count(*) from {_FILE_ROWS}").fetchall()[0][0]
        if len(bad_rows) > good_rows:
            con.execute(f"drop table {_FILE_ROWS}")
            raise RejectedFileError(
                export.name,
                f"malformed CSV: {len(bad_rows)} of {len(bad_rows) + good_rows} rows have a"
                f" wrong number of fields (first at line {bad_rows[0].line})",
                code="malformed_csv",
            )
        # The g-th row read is the g-th data row number not taken by a bad row.
        data_rows = [row.data_row for row in bad_rows]
        thresholds = [number - index for index, number in enumerate(data_rows, start=1)]
        row_number = "rowid + 1 + len(list_filter($thresholds, lambda t: t < rowid + 1))"
        _append(
            con, target, export, file_order, row_number, present, _FILE_ROWS,
            {"thresholds": thresholds},
        )  # fmt: skip
        _append_bad_rows(con, target.table, export, file_order, bad_rows)
    con.execute(f"drop table {_FILE_ROWS}")
    return {"encoding": layout.encoding, "delimiter": layout.delimiter}


@dataclass(frozen=True)
class _BadRow:
    """A CSV row that does not split into the header's number of fields."""

    data_row: int  # 1 = the first row after the header
    line: int  # the file's line number (1 = the file's first line)
    text: str


_ROW_SHAPE_ERRORS = ("TOO MANY COLUMNS", "MISSING COLUMNS")
_RAW_TEXT_CHARS = 1000


def _wrong_field_count_rows(
    con: duckdb.DuckDBPyConnection, export: ExportFile, skip_rows: int
) -> list[_BadRow]:
    """The rows DuckDB set aside; any problem but a wrong field count rejects the file.

    DuckDB counts ``line`` in rows from the file's first line (the skipped ones and the
    header included; a quoted field spanning lines counts once): it is the file's line
    number unless an earlier field spans lines.
    """
    rejects = con.execute(
        f"select line, error_type, csv_line, error_message from {_REJECTS}"
        " order by line, column_idx"
    ).fetchall()
    bad_rows: dict[int, _BadRow] = {}
    for line, error_type, csv_line, message in rejects:
        if error_type not in _ROW_SHAPE_ERRORS:
            problem = f"malformed CSV: {str(message).strip()} at line {line}"
            raise RejectedFileError(export.name, problem, code="malformed_csv")
        data_row = int(line) - 1 - skip_rows
        bad_rows.setdefault(data_row, _BadRow(data_row, int(line), str(csv_line)[:_RAW_TEXT_CHARS]))
    return sorted(bad_rows.values(), key=lambda row: row.data_row)


def _append_bad_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    export: ExportFile,
    file_order: int,
    bad_rows: list[_BadRow],
) -> None:
    con.executemany(
        f"insert into {table} (source_file, file_order, source_row, load_problem,"
        " source_line, raw_text) values (?, ?, ?, 'wrong_field_count', ?, ?)",
        [[export.name, file_order, row.data_row, row.line, row.text] for row in bad_rows],
    )


def _load_parquet(
    con: duckdb.DuckDBPyConnection, export: ExportFile, file_order: int, target: _Target
) -> dict[str, str]:
    params: dict[str, object] = {"path": str(export.path)}
    try:
        columns = con.sql("select * from read_parquet($path)", params=params).columns
    except duckdb.Error as error:
        raise RejectedFileError(
            export.name, f"unreadable Parquet: {_first_line(error)}", code="unreadable_parquet"
        ) from None
    present = {
        canonical: f"cast({quote_identifier(columns[position])} as varchar)"
        for canonical, position in map_columns(export.name, columns, target.mapping).items()
    }
    try:
        _append(
            con,
            target,
            export,
            file_order,
            "file_row_number + 1",
            present,
            "read_parquet($path, file_row_number = true)",
            params,
        )
    except duckdb.Error as error:
        raise RejectedFileError(
            export.name, f"unreadable Parquet: {_first_line(error)}", code="unreadable_parquet"
        ) from None
    return {"encoding": "parquet", "delimiter": ""}


def _append(
    con: duckdb.DuckDBPyConnection,
    target: _Target,
    export: ExportFile,
    file_order: int,
    row_number: str,
    present: dict[str, str],
    source_sql: str,
    params: dict[str, object] | None = None,
) -> None:
    """Insert the file's rows; ``present`` maps canonical columns to the file's values."""
    expressions = {column: present.get(column, "null") for column in target.mapping.columns}
    if "line_id" in expressions and "line_id" not in present:
        # No line number in the export: a line is its position within its order in the
        # file, so a re-sent copy of the file gets the same ids.
        expressions["line_id"] = (
            f"cast(row_number() over (partition by trim({present['order_id']})"
            f" order by {row_number}) as varchar)"
        )
    select_list = ",\n    ".join(f"{value} as {column}" for column, value in expressions.items())
    column_list = ", ".join(
        ["source_file", "file_order", "may_have_control_bytes", "source_row", *expressions]
    )
    con.execute(
        f"insert into {target.table} ({column_list})\nselect\n    $source_file as source_file,\n"
        f"    $file_order as file_order,\n"
        f"    $controls as may_have_control_bytes,\n"
        f"    {row_number} as source_row,\n    {select_list}\nfrom {source_sql}",
        {
            "source_file": export.name,
            "file_order": file_order,
            "controls": export.may_have_control_bytes,
            **(params or {}),
        },
    )


def quote_identifier(name: str) -> str:
    """A DuckDB identifier for any column name a file may carry."""
    return '"' + name.replace('"', '""') + '"'


def _first_line(error: duckdb.Error) -> str:
    return str(error).strip().splitlines()[0]


def _csv_problem(error: duckdb.Error) -> str:
    """DuckDB's CSV error without its advice section, on one line."""
    lines = []
    for line in str(error).strip().splitlines():
        if line.startswith("Possible fix") or line.startswith("Possible Solution"):
            break
        if line.strip():
            lines.append(line.strip())
    text = "; ".join(lines).replace("Invalid Input Error: ", "").replace("IO Error: ", "")
    return f"malformed CSV: {text}"
