"""Publishing for BI tools: audited, atomic, on Parquet, a serving DuckDB file and PostgreSQL.

The package's names load lazily: the DAG files import `pipeline.publish.tables` for the
published tables' names, and parsing a DAG must not import DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.publish.run import PublishReport, publish_date

__all__ = ["PublishReport", "publish_date"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline.publish import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
