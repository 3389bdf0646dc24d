#!/usr/bin/env bash
# Any `airflow` command against this project's Airflow (the one scripts/airflow-standalone.sh
# runs): the same AIRFLOW_HOME, DAGs folder and pipeline configuration. From any folder:
#
#   bash scripts/airflow.sh dags trigger rfm_daily -c '{"business_date": "2025-12-31"}'
#   bash scripts/airflow.sh dags list-runs rfm_daily
set -euo pipefail
# shellcheck source=scripts/airflow-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/airflow-env.sh"
exec airflow "$@"
