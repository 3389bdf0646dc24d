#!/usr/bin/env bash
# Airflow on this machine, without Docker: `airflow standalone` (api-server, scheduler,
# dag-processor and triggerer in one command, SQLite, LocalExecutor) with this project's
# DAGs and pipeline configuration. Stop it with Ctrl-C (or SIGTERM): every process it
# started is stopped, the stragglers killed after a grace period.
#
#   bash scripts/airflow-standalone.sh
#
# Environment: see scripts/airflow-env.sh (AIRFLOW_HOME, AIRFLOW__API__PORT,
# AIRFLOW__CORE__PARALLELISM, RFM_CONFIG), and
# RFM_AIRFLOW_UNPAUSE  the DAGs to unpause once registered (default "rfm_daily rfm_refit";
#                      empty: leave them paused)
# RFM_SKIP_BOOTSTRAP=1 skips scripts/bootstrap.sh (the tests, which already ran it)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "${RFM_SKIP_BOOTSTRAP:-}" = 1 ] || bash scripts/bootstrap.sh
# shellcheck source=scripts/airflow-env.sh
source scripts/airflow-env.sh
mkdir -p "$AIRFLOW_HOME"
UNPAUSE="${RFM_AIRFLOW_UNPAUSE-rfm_daily rfm_refit}"
STOP_GRACE_SECONDS=30

password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat >&2 <<INFO
Airflow UI:     http://localhost:$AIRFLOW__API__PORT (ready in 20 s to a minute: the first start creates the database)
Login:          admin; the password is in $password_file
                (written on the first start; also printed below as "Password for user 'admin'")
DAGs:           $AIRFLOW__CORE__DAGS_FOLDER (unpaused once registered: ${UNPAUSE:-none})
Pipeline config: ${RFM_CONFIG:-defaults and RFM_* variables (no pipeline.toml)}
AIRFLOW_HOME:   $AIRFLOW_HOME
Task slots:     $AIRFLOW__CORE__PARALLELISM (AIRFLOW__CORE__PARALLELISM)
Commands:       bash scripts/airflow.sh ... (this AIRFLOW_HOME), e.g.
                bash scripts/airflow.sh dags trigger rfm_daily -c '{"business_date": "YYYY-MM-DD"}'
Stop:           Ctrl-C
INFO

# Each background job in a process group of its own (job control): stopping Airflow
# signals its whole group, whatever its components started, and never this script.
set -m
airflow standalone &
airflow_pid=$!
unpause_pid=
if [ -n "$UNPAUSE" ]; then
    (
        # Not before the api-server answers: a task started earlier cannot reach the
        # execution API, fails and waits for its retry.
        health="http://127.0.0.1:$AIRFLOW__API__PORT/api/v2/monitor/health"
        until python3 -c "import urllib.request as u; u.urlopen('$health', timeout=5)" 2>/dev/null; do
            sleep 3
        done
        # The DAG processor registers the DAGs some seconds after the start; a DAG it
        # registers for the first time starts paused, so unpause twice, a while apart.
        for dag_id in $UNPAUSE; do
            for _ in $(seq 60); do
                if airflow dags unpause "$dag_id" >/dev/null 2>&1; then
                    continue 2
                fi
                sleep 5
            done
            echo "standalone | could not unpause $dag_id (not registered after 5 minutes)" >&2
        done
        sleep 20
        for dag_id in $UNPAUSE; do
            if airflow dags unpause "$dag_id" >/dev/null 2>&1; then
                echo "standalone | unpaused $dag_id" >&2
            fi
        done
    ) &
    unpause_pid=$!
fi
set +m

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

wait_group() {  # wait_group PGID SECONDS: true once no process of the group is left
    local deadline=$((SECONDS + $2))
    while group_alive "$1"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

stop() {
    trap '' INT TERM
    echo "standalone | stopping Airflow (process group $airflow_pid)" >&2
    [ -z "$unpause_pid" ] || kill -TERM -- "-$unpause_pid" 2>/dev/null || true
    # standalone stops its components on SIGINT; whatever is left gets SIGTERM, then SIGKILL.
    kill -INT "$airflow_pid" 2>/dev/null || true
    if ! wait_group "$airflow_pid" "$STOP_GRACE_SECONDS"; then
        kill -TERM -- "-$airflow_pid" 2>/dev/null || true
        if ! wait_group "$airflow_pid" 10; then
            echo "standalone | killing what did not stop in time" >&2
            kill -KILL -- "-$airflow_pid" 2>/dev/null || true
            wait_group "$airflow_pid" 10 || true
        fi
    fi
    echo "standalone | stopped" >&2
}

trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
status=0
wait "$airflow_pid" || status=$?
stop
exit "$status"
