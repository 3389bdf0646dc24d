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


def create_raw_table(
    con: duckdb.DuckDBPyConnection,
    table: str = RAW_TABLE,
    canonical_columns: Sequence[str] = CANONICAL_COLUMNS,
) -> None:
    columns = ",\n    ".join(f"{column} varchar" for column in canonical_columns)
    con.execute(
        f"create or replace temp table {table} (\n"
        f"    source_file varchar not null,\n    file_order integer not null,\n"
        f"    source_row bigint not null,\n    {columns}\n)"
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
    target = _Target(table, mapping or sales_header_mapping(source))
    if export.file_format == "parquet":
        return _load_parquet(con, export, file_order, target)
    return _load_csv(con, export, file_order, source, scratch, target)


@dataclass(frozen=True)
class _Target:
    """The raw table a file is appended to, and how its headers map to that table."""

    table: str
    mapping: HeaderMapping


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
    try:
        con.execute(
            f"create or replace temp table {_FILE_ROWS} as "
            "select * from read_csv($path, header = true, auto_detect = false, columns = $columns,"
            " delim = $delimiter, quote = '\"', escape = '\"', strict_mode = true,"
            " null_padding = false, encoding = 'utf-8', compression = $compression)",
            {
                "path": str(layout.utf8_path),
                "columns": dict.fromkeys(names, "VARCHAR"),
                "delimiter": layout.delimiter,
                "compression": layout.compression,
            },
        )
    except duckdb.Error as error:
        raise RejectedFileError(export.name, _csv_problem(error)) from None
    # Insertion order is file order (DuckDB preserves it), so rowid is the data row number.
    present = {column: names[position] for column, position in layout.column_index.items()}
    _append(con, target, export, file_order, "rowid + 1", present, _FILE_ROWS)
    con.execute(f"drop table {_FILE_ROWS}")
    return {"encoding": layout.encoding, "delimiter": layout.delimiter}


def _load_parquet(
    con: duckdb.DuckDBPyConnection, export: ExportFile, file_order: int, target: _Target
) -> dict[str, str]:
    params = {"path": str(export.path)}
    try:
        columns = con.sql("select * from read_parquet($path)", params=params).columns
    except duckdb.Error as error:
        raise RejectedFileError(export.name, f"unreadable Parquet: {_first_line(error)}") from None
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
        raise RejectedFileError(export.name, f"unreadable Parquet: {_first_line(error)}") from None
    return {"encoding": "parquet", "delimiter": ""}


def _append(
    con: duckdb.DuckDBPyConnection,
    target: _Target,
    export: ExportFile,
    file_order: int,
    row_number: str,
    present: dict[str, str],
    source_sql: str,
    params: dict[str, str] | None = None,
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
    con.execute(
        f"insert into {target.table}\nselect\n    $source_file as source_file,\n"
        f"    $file_order as file_order,\n"
        f"    {row_number} as source_row,\n    {select_list}\nfrom {source_sql}",
        {"source_file": export.name, "file_order": file_order, **(params or {})},
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
