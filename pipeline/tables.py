"""The names of the tables the steps write, each defined once.

Every one of them is declared beside its SQL (``sql/<layer>/<table>.toml``,
pipeline/declarations.py); this module only names them for the Python that reads them,
and imports nothing, so that any module (the CLI's status, a DAG) can.
"""

from __future__ import annotations

# ingest (sql/lake): the lake, partitioned by export date
ORDER_LINES = "order_lines"
QUARANTINE = "quarantined_order_lines"
CUSTOMER_MASTER = "customer_master"
CUSTOMER_MASTER_QUARANTINE = "quarantined_customer_master"
# The file ledger: one row per path a pattern matched, with its outcome. Written by every
# attempt at a date, a failed one included (it then describes that attempt).
FILES = "ingest_files"
LEDGER = "ingest_ledger"

# scoring (sql/scoring): partitioned by as-of date
CUSTOMER_DAYS = "customer_days"
CUSTOMER_STATE = "customer_state"  # under paths.state; see scoring/customer_state.py
CUSTOMER_SEGMENTS = "customer_segments"
SEGMENT_SUMMARY = "segment_summary"
CLUSTER_PROFILES = "cluster_profiles"  # a model's profile, keyed by its version:
MODEL_KEY = "model_version"

# lifecycle (sql/lifecycle): partitioned by as-of date
CUSTOMER_LIFECYCLE = "customer_lifecycle"
RECENT_ACTIVITY = "recent_activity"  # under paths.state; see lifecycle/recent.py
STAGE_TRANSITIONS = "stage_transitions"
CUSTOMER_STAGE_HISTORY = "customer_stage_history"
DANGER_ALERTS = "danger_alerts"
RISK_MODEL = "risk_model"
STAGE_COUNTS = "stage_counts"
STAGE_FLOWS = "stage_flows"
