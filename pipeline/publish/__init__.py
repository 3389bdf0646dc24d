"""Publishing for BI tools: audited, atomic, on Parquet, a serving DuckDB file and PostgreSQL."""

from pipeline.publish.run import PublishReport, publish_date

__all__ = ["PublishReport", "publish_date"]
