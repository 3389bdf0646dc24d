#!/usr/bin/env bash
# A private PostgreSQL server for the tests: installs the server (Debian/Ubuntu, as root) if
# it is missing, creates a cluster in .cache/postgres and starts it on 127.0.0.1 only.
#
#   bash scripts/postgres.sh start   # idempotent; last stdout line is the admin URL
#   bash scripts/postgres.sh stop    # fast shutdown, if running
#   bash scripts/postgres.sh url     # the admin URL
#
# RFM_PG_DIR  data directory (default: <repo>/.cache/postgres, see data_dir below)
# RFM_PG_PORT TCP port (default: the cluster's last port if still free, else the first free
#             one from 55432 up: another checkout's server may hold 55432)
#
# The superuser is rfm_admin with password rfm_admin. Test-only: the server listens on
# 127.0.0.1 alone and its Unix socket lives inside the (mode 700) data directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PORT="${RFM_PG_PORT:-}"
FIRST_PORT=55432
ADMIN="rfm_admin"
PASSWORD="rfm_admin"

url() { echo "postgresql://$ADMIN:$PASSWORD@127.0.0.1:$1/postgres"; }

info() { echo "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

case "$PORT" in
    *[!0-9]*) die "RFM_PG_PORT must be a port number, not '$PORT'" ;;
esac

# Does anything accept TCP connections on 127.0.0.1:$1?
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The port for a server about to start: RFM_PG_PORT, else the one this cluster used last
# (kept in $DATA_DIR.port, so the URL stays stable), else the first free one from 55432.
choose_port() {
    local port saved=""
    if [ -n "$PORT" ]; then
        echo "$PORT"
        return
    fi
    [ ! -f "$DATA_DIR.port" ] || saved="$(cat "$DATA_DIR.port")"
    if [ -n "$saved" ] && ! port_in_use "$saved"; then
        echo "$saved"
        return
    fi
    for port in $(seq "$FIRST_PORT" $((FIRST_PORT + 100))); do
        if ! port_in_use "$port"; then
            echo "$port"
            return
        fi
    done
    die "no free port in $FIRST_PORT-$((FIRST_PORT + 100)); set RFM_PG_PORT"
}

# The port of this cluster's running server (postmaster.pid line 4).
running_port() {
    sed -n 4p "$DATA_DIR/postmaster.pid"
}

# The server refuses to run as root: as root, every server command runs as the `postgres`
# OS user that Debian's package creates; otherwise as the calling user. `9>&-`: the server
# must not inherit the lock (below), or it would hold it for as long as it runs.
as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@" 9>&-
    else
        "$@" 9>&-
    fi
}

# Can the server's OS user reach (search) this directory, and so everything in it?
server_user_reaches() {
    [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$1"
}

# The data directory, absolute. As root the server runs as `postgres`, which must be able
# to traverse every parent of the data directory. A checkout under /root (mode 700) is not
# traversable, and opening up /root is not ours to do, so the default then moves to
# /var/tmp/rfm-postgres-<hash of the repo path>: one cluster per checkout, kept across
# reboots (unlike /tmp). An explicit RFM_PG_DIR is never moved: it fails with an error.
data_dir() {
    if [ -n "${RFM_PG_DIR:-}" ]; then
        case "$RFM_PG_DIR" in
            /*) echo "$RFM_PG_DIR" ;;
            *) echo "$PWD/$RFM_PG_DIR" ;;
        esac
        return
    fi
    mkdir -p "$REPO/.cache"
    if server_user_reaches "$REPO/.cache"; then
        echo "$REPO/.cache/postgres"
    else
        echo "/var/tmp/rfm-postgres-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"
    fi
}

# The newest installed server's bin directory (Debian's layout), or nothing. PATH is not
# searched: other tools may be called pg_ctl (this project's dev machine has one).
newest_bindir() {
    local newest
    # An unmatched glob stays literal and fails the -x test.
    newest="$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)"
    [ ! -x "$newest" ] || dirname "$newest"
}

install_server() {
    if [ "$(id -u)" != 0 ]; then
        die "no PostgreSQL server found in /usr/lib/postgresql/*/bin; install it first" \
            "(Debian/Ubuntu: sudo apt-get install postgresql), or run this script as root"
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "no PostgreSQL server found in /usr/lib/postgresql/*/bin and no apt-get to install one"
    info "Installing PostgreSQL with apt-get"
    # Debian's package also creates (and may start) its own `main` cluster on port 5432;
    # it is not used here. Output goes to stderr: stdout carries only the URL.
    {
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    } >&2
}

# Binaries matching an existing cluster's major version (PG_VERSION), else the newest.
pick_bindir() {
    local version
    if [ -f "$DATA_DIR/PG_VERSION" ]; then
        version="$(cat "$DATA_DIR/PG_VERSION")"
        [ -x "/usr/lib/postgresql/$version/bin/postgres" ] \
            || die "$DATA_DIR holds a PostgreSQL $version cluster but its server is not installed;" \
                "install postgresql-$version, or stop and delete $DATA_DIR to start afresh"
        echo "/usr/lib/postgresql/$version/bin"
    else
        newest_bindir
    fi
}

# pg_ctl status trusts kill(pid, 0), which also succeeds for a zombie: a postmaster killed
# by SIGKILL stays one until PID 1 reaps it, which in containers takes seconds, or forever.
postmaster_is_zombie() {
    local pid
    [ -f "$DATA_DIR/postmaster.pid" ] || return 1
    pid="$(head -n 1 "$DATA_DIR/postmaster.pid")"
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    # The state follows the command name, which is in parentheses.
    case "$(sed 's/.*) //' "/proc/$pid/stat" | cut -c1)" in
        Z | X) return 0 ;;
        *) return 1 ;;
    esac
}

is_running() {
    [ -f "$DATA_DIR/PG_VERSION" ] && ! postmaster_is_zombie \
        && as_server_user "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

# initdb into a scratch directory, then rename it into place: a run killed half-way
# leaves no half-made cluster behind (the scratch directory is cleared on the next run).
init_cluster() {
    local scratch="$DATA_DIR.initdb-tmp" pwfile
    if [ -d "$DATA_DIR" ]; then
        [ -z "$(ls -A "$DATA_DIR")" ] \
            || die "$DATA_DIR is not empty but holds no cluster (no PG_VERSION); delete it or set RFM_PG_DIR"
        rmdir "$DATA_DIR"
    fi
    rm -rf "$scratch"
    mkdir -m 700 "$scratch"
    pwfile="$scratch.pw"
    printf '%s\n' "$PASSWORD" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$scratch" "$pwfile"
    fi
    info "Creating a PostgreSQL $(basename "$(dirname "$BIN")") cluster in $DATA_DIR"
    # Host (TCP) logins need the password (SCRAM); the socket, which only the server's OS
    # user can reach, trusts. C.UTF-8: Unicode-aware ctype, code-point collation.
    if ! as_server_user "$BIN/initdb" -D "$scratch" --username="$ADMIN" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$scratch.log" 2>&1; then
        cat "$scratch.log" >&2
        rm -rf "$scratch" "$pwfile" "$scratch.log"
        die "initdb failed"
    fi
    rm -f "$pwfile" "$scratch.log"
    # Settings that depend on this run (port, socket path) go to rfm.conf, rewritten at
    # every start; postgresql.conf keeps initdb's defaults (fsync and all: tests check
    # crash safety).
    printf '\n# scripts/postgres.sh\ninclude_if_exists = '"'"'rfm.conf'"'"'\n' \
        >>"$scratch/postgresql.conf"
    mv "$scratch" "$DATA_DIR"
}

write_settings() {
    local socket_dir="$DATA_DIR" quote="'"
    # A Unix socket path is limited to 107 bytes; a deep checkout can exceed that. The tests
    # use TCP, so then the server simply has no socket.
    if [ $((${#socket_dir} + ${#PORT} + 10)) -gt 107 ]; then
        info "note: $DATA_DIR is too long a path for a Unix socket; TCP only"
        socket_dir=""
    fi
    as_server_user tee "$DATA_DIR/rfm.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh at every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '${socket_dir//$quote/$quote$quote}'
max_connections = 200
EOF
}

start() {
    local running_port
    if [ -z "$(newest_bindir)" ]; then
        install_server
        [ -n "$(newest_bindir)" ] || die "apt-get installed no server into /usr/lib/postgresql"
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        die "running as root, but there is no 'postgres' OS user to run the server as"
    fi
    BIN="$(pick_bindir)"
    server_user_reaches "$(dirname "$DATA_DIR")" \
        || die "the postgres OS user cannot reach $(dirname "$DATA_DIR"); choose another RFM_PG_DIR"

    if is_running; then
        running_port="$(running_port)"
        [ -z "$PORT" ] || [ "$running_port" = "$PORT" ] \
            || die "the server in $DATA_DIR runs on port $running_port, not $PORT; stop it first"
        info "PostgreSQL already running in $DATA_DIR"
        url "$running_port"
        return
    fi
    [ -f "$DATA_DIR/PG_VERSION" ] || init_cluster
    PORT="$(choose_port)"
    echo "$PORT" >"$DATA_DIR.port"
    write_settings
    # The server removes the lock files of a dead predecessor itself, but takes a zombie's
    # for a live one ("lock file postmaster.pid already exists").
    if postmaster_is_zombie; then
        info "Removing the lock files of a killed server"
        rm -f "$DATA_DIR/postmaster.pid" "$DATA_DIR"/.s.PGSQL.*.lock
    fi
    start_server
    url "$PORT"
}

# pg_ctl start -w: returns once the server accepts connections (after crash recovery, if
# it was killed). Processes of a killed server may outlive it for a while (a busy backend
# notices late) and keep its shared memory, which makes the new server refuse to start:
# that alone is retried, for up to 20 seconds.
start_server() {
    local attempt log="$DATA_DIR/server.log" log_size new_log
    info "Starting PostgreSQL on 127.0.0.1:$PORT (log: $log)"
    for attempt in $(seq 20); do
        log_size=0
        [ ! -f "$log" ] || log_size="$(wc -c <"$log")"
        if as_server_user "$BIN/pg_ctl" start -w -t 120 -D "$DATA_DIR" -l "$log" >&2; then
            return
        fi
        new_log="$(tail -c +$((log_size + 1)) "$log" 2>/dev/null || true)"
        if [ "$attempt" -lt 20 ] && [[ "$new_log" == *"pre-existing shared memory block"* ]]; then
            info "Processes of a killed server are still exiting; retrying in a second"
            sleep 1
            continue
        fi
        printf '%s\n' "$new_log" | tail -n 30 >&2
        die "PostgreSQL did not start; see $log"
    done
}

stop() {
    if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
        info "No PostgreSQL cluster in $DATA_DIR"
        return
    fi
    BIN="$(pick_bindir)"
    if is_running; then
        as_server_user "$BIN/pg_ctl" stop -w -m fast -D "$DATA_DIR" >&2
    else
        info "PostgreSQL is not running in $DATA_DIR"
    fi
}

case "${1:-}" in
    start | stop)
        DATA_DIR="$(data_dir)"
        # One start or stop at a time (pytest-xdist workers may race): the lock sits beside
        # the data directory, in a directory the caller can write.
        mkdir -p "$(dirname "$DATA_DIR")"
        exec 9>"$DATA_DIR.lock"
        flock 9
        # Server commands run as `postgres`, which may not be allowed into the caller's
        # working directory (initdb and pg_ctl would complain).
        cd /
        "$1"
        ;;
    url)
        DATA_DIR="$(data_dir)"
        if [ -f "$DATA_DIR/postmaster.pid" ]; then
            url "$(running_port)"
        elif [ -n "$PORT" ] || [ -f "$DATA_DIR.port" ]; then
            url "${PORT:-$(cat "$DATA_DIR.port")}"
        else
            die "no server has run from $DATA_DIR yet: run '$0 start'"
        fi
        ;;
    *) die "usage: $0 start|stop|url" ;;
esac
