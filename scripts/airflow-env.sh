# Sourced by scripts/airflow-standalone.sh and scripts/airflow.sh: the environment of this
# project's Airflow, the same for the server and for every `airflow` command run beside
# it (a command without this AIRFLOW_HOME would look at another, empty database).
#
# AIRFLOW_HOME       Airflow's database, logs and config (default: <repo>/.cache/airflow)
# AIRFLOW__API__PORT the UI's port (default 8080)
# AIRFLOW__CORE__PARALLELISM  task slots, each one idle worker process (default: the cores)
# RFM_CONFIG         the pipeline's settings (default: <repo>/pipeline.toml if it exists);
#                    RFM_* variables override them as usual (README, "Running it")

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/.cache/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Only this machine reaches the UI unless told otherwise (Airflow's default is 0.0.0.0).
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
# Tasks report to the api-server's execution API: follow the port if it is not 8080.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://localhost:$AIRFLOW__API__PORT/execution/}"
# The LocalExecutor starts one worker process per slot (Airflow's default: 32, about
# 35 MB each); one per core, at least 2 (publish and the alerts run side by side).
if [ -z "${AIRFLOW__CORE__PARALLELISM:-}" ]; then
    cores="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
    export AIRFLOW__CORE__PARALLELISM="$(( cores > 2 ? cores : 2 ))"
fi
# SQLite lets one writer in at a time: on a busy machine an execution API call may wait
# well beyond Airflow's default timeout for its turn (and the task then fails).
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-120}"
if [ -z "${RFM_CONFIG:-}" ] && [ -f "$REPO/pipeline.toml" ]; then
    export RFM_CONFIG="$REPO/pipeline.toml"
fi
# standalone starts its components as `airflow ...` subprocesses, found on PATH.
export PATH="$REPO/.venv/bin:$PATH"
