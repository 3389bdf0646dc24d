#!/usr/bin/env bash
# Airflow on this machine, without Docker: `airflow standalone` (api-server, scheduler,
# dag-processor and triggerer in one command, SQLite, LocalExecutor) with this project's
# DAGs and pipeline configuration. Stop it with Ctrl-C.
#
#   bash scripts/airflow-standalone.sh
#
# AIRFLOW_HOME       Airflow's database, logs and config (default: <repo>/.cache/airflow)
# AIRFLOW__API__PORT the UI's port (default 8080)
# RFM_CONFIG         the pipeline's settings (default: <repo>/pipeline.toml if it exists);
#                    RFM_* variables override them as usual (README, "Running it")
# RFM_SKIP_BOOTSTRAP=1 skips scripts/bootstrap.sh (the tests, which already ran it)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
[ "${RFM_SKIP_BOOTSTRAP:-}" = 1 ] || bash scripts/bootstrap.sh

export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/.cache/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Only this machine reaches the UI unless told otherwise (Airflow's default is 0.0.0.0).
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
# Tasks report to the api-server's execution API: follow the port if it is not 8080.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://localhost:$AIRFLOW__API__PORT/execution/}"
if [ -z "${RFM_CONFIG:-}" ] && [ -f "$REPO/pipeline.toml" ]; then
    export RFM_CONFIG="$REPO/pipeline.toml"
fi
# standalone starts its components as `airflow ...` subprocesses, found on PATH.
export PATH="$REPO/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"

password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat >&2 <<INFO
Airflow UI:     http://localhost:$AIRFLOW__API__PORT (ready in 20 s to a minute: the first start creates the database)
Login:          admin; the password is in $password_file
                (written on the first start; also printed below as "Password for user 'admin'")
DAGs:           $AIRFLOW__CORE__DAGS_FOLDER
Pipeline config: ${RFM_CONFIG:-defaults and RFM_* variables (no pipeline.toml)}
AIRFLOW_HOME:   $AIRFLOW_HOME
INFO
exec airflow standalone
