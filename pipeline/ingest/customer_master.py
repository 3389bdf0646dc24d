"""The optional daily customer master: who signed up on a date, beside the sales exports.

The master's files are found by ``source.customer_file_pattern``, decoded like the sales
exports (BOM sniff, UTF-8, GB18030; the same delimiters; gzip or Parquet), loaded as text
into ``raw_customer_master_rows``, and validated and deduplicated by the SQL models
``staging/stg_customer_master_rows`` and ``intermediate/int_customer_master_rows_classified``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from pipeline.config import SourceConfig, normalize_header
from pipeline.errors import RejectedFileError
from pipeline.ingest.decoding import HeaderMapping
from pipeline.ingest.files import ExportFile, FoundFiles, find_export_files
from pipeline.ingest.loading import create_raw_table, load_export_file

RAW_MASTER_TABLE = "raw_customer_master_rows"
MASTER_FILES_TABLE = "customer_master_files"

# Canonical master column -> the source headers that mean it (matched like the sales
# headers: case-insensitive, BOM and quotes stripped). customer_id also takes every header
# configured for it in [source.columns], so one setting serves both exports.
MASTER_COLUMNS: dict[str, list[str]] = {
    "customer_id": [
        "customer_id", "member_id", "customer_no", "member_no", "客户编号", "会员编号",
        "客户号", "会员号", "会员卡号",
    ],
    "signup_date": [
        "signup_date", "signup_at", "signed_up_at", "signup_time", "registered_at",
        "registration_date", "register_date", "registered_on", "join_date", "joined_at",
        "created_at", "注册日期", "注册时间", "入会日期", "开卡日期",
    ],
    "email": ["email", "e-mail", "e_mail", "email_address", "邮箱", "电子邮箱", "电子邮件"],
    "phone": [
        "phone", "mobile", "phone_number", "mobile_phone", "tel", "telephone", "手机",
        "手机号", "手机号码", "电话", "联系电话",
    ],
    "city": ["city", "城市", "所在城市"],
}  # fmt: skip
REQUIRED_MASTER_COLUMNS = ("customer_id",)
# Date-only formats tried for signup_date before source.timestamp_formats (whose date
# part is taken); a value ending in Z or a UTC offset is converted to source.timezone.
SIGNUP_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")

Progress = Callable[[str], None]


def master_header_mapping(source: SourceConfig) -> HeaderMapping:
    """The master's columns; headers configured for sales customer_id come first."""
    customer_headers = _unique([*source.columns.customer_id, *MASTER_COLUMNS["customer_id"]])
    taken = {normalize_header(header) for header in customer_headers}
    aliases = {"customer_id": customer_headers}
    for column, headers in MASTER_COLUMNS.items():
        if column != "customer_id":
            aliases[column] = [
                header for header in headers if normalize_header(header) not in taken
            ]
    return HeaderMapping(aliases, REQUIRED_MASTER_COLUMNS)


def find_master_files(incoming: Path, source: SourceConfig, day: date) -> FoundFiles:
    """The day's master files in the sales files' precedence order, and an outcome for
    every other matched path; none if disabled. (A path that also matches the sales
    pattern is the caller's to reject: it cannot be both exports.)"""
    if not source.customer_file_pattern:
        return FoundFiles()
    return find_export_files(
        incoming,
        source.customer_file_pattern,
        day,
        symlinks=source.symlinks,
        hidden_files=source.hidden_files,
    )


def load_master_files(
    con: duckdb.DuckDBPyConnection,
    masters: list[ExportFile],
    source: SourceConfig,
    scratch: Path,
    report_progress: Progress,
    on_reject: Callable[[ExportFile, RejectedFileError], None],
) -> dict[str, dict[str, str]]:
    """Load every master file as text into ``raw_customer_master_rows``; how each was read.

    A file that cannot be read whole (or lacks a customer_id column) is passed to
    ``on_reject`` and left out; nothing of it is loaded.
    """
    mapping = master_header_mapping(source)
    create_raw_table(con, RAW_MASTER_TABLE, mapping.columns)
    read_as = {}
    file_order = 0
    for master in masters:
        report_progress(f"reading {master.name}")
        try:
            read_as[master.name] = load_export_file(
                con, master, file_order, source, scratch, RAW_MASTER_TABLE, mapping
            )
        except RejectedFileError as error:
            on_reject(master, error)
            continue
        file_order += 1
    return read_as


def staging_params(source: SourceConfig, day: date) -> dict[str, object]:
    return {
        "export_date": day,
        "timezone": source.timezone,
        "signup_date_formats": list(SIGNUP_DATE_FORMATS),
        "timestamp_formats": source.timestamp_formats,
    }


def _unique(headers: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for header in headers:
        key = normalize_header(header)
        if key not in seen:
            seen.add(key)
            kept.append(header)
    return kept
