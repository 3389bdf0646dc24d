"""The published tables, in the order they are built, and the lake partitions they read."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from pipeline.errors import NotScoredError
from pipeline.lake import AS_OF_KEY, Lake

if TYPE_CHECKING:
    import duckdb

# Each is sql/publish/<name>.sql with its contract sql/publish/<name>.toml.
PUBLISHED_TABLES = (
    "customer_segments",
    "segment_summary",
    "segment_changes",
    "cluster_profiles",
    "customer_lifecycle",
    "stage_counts",
    "stage_flows",
    "stage_transitions",
    "customer_stage_history",
    "danger_alerts",
    "risk_model",
)
# Views over the published tables (sql/publish/views/<name>.sql), in every target.
PUBLISHED_VIEWS = ("customer_stage_episodes",)

# Lake tables read for the date itself, and the step that writes each.
_DATE_INPUTS = {
    "customer_segments": "score",
    "segment_summary": "score",
    "customer_lifecycle": "lifecycle",
    "stage_counts": "lifecycle",
    "stage_flows": "lifecycle",
    "stage_transitions": "lifecycle",
    "customer_stage_history": "lifecycle",
    "danger_alerts": "lifecycle",
    "risk_model": "lifecycle",
}


def register_lake_inputs(con: duckdb.DuckDBPyConnection, lake: Lake, day: date) -> None:
    """Views ``lake_<table>`` over the date's partitions, the day before's segments and
    the cluster model the date used.

    Raises:
        NotScoredError: a step has not written the date yet.
    """
    for table, step in _DATE_INPUTS.items():
        partition = lake.partition_file(table, day, AS_OF_KEY)
        if not partition.is_file():
            raise NotScoredError(
                f"{day} has no {table} partition: run `rfm-pipeline {step} --date {day}` first"
            )
        con.read_parquet(str(partition), hive_partitioning=True).create_view(
            f"lake_{table}", replace=True
        )
    previous = lake.partition_file("customer_segments", day - timedelta(days=1), AS_OF_KEY)
    source = (
        previous if previous.is_file() else lake.partition_file("customer_segments", day, AS_OF_KEY)
    )
    relation = con.read_parquet(str(source), hive_partitioning=True)
    if not previous.is_file():
        relation = relation.limit(0)
    relation.create_view("lake_previous_customer_segments", replace=True)

    versions = con.execute(
        "select distinct model_version from lake_customer_segments where model_version is not null"
    ).fetchall()
    model_files = [
        str(path)
        for (version,) in versions
        if (path := lake.partition_file("cluster_profiles", version, "model_version")).is_file()
    ]
    if len(model_files) != len(versions) or not model_files:
        raise NotScoredError(f"{day}: the cluster model its segments name is not in the lake")
    con.read_parquet(model_files, hive_partitioning=True).create_view(
        "lake_cluster_profiles", replace=True
    )


def has_previous_segments(lake: Lake, day: date) -> bool:
    return lake.partition_file("customer_segments", day - timedelta(days=1), AS_OF_KEY).is_file()
