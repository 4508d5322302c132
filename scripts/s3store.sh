#!/usr/bin/env bash
# A throwaway S3-compatible store for the tests: Garage (https://garagehq.deuxfleurs.fr), the
# distributed object store written in Rust, one node in a temporary directory on free loopback
# ports, fsync on, with one bucket and one key. Building Garage takes ~25 minutes on two cores,
# so it is built once (`install`, or `make garage`) and cached; where it is not, moto's server
# (pip, in-memory) stands in, which exercises the same client code against a different S3
# implementation (docs/deploy.md, "Which S3-compatible store the tests use").
#
#   scripts/s3store.sh install   # builds Garage once into ~/.cache/basalt/garage (cargo install)
#   scripts/s3store.sh start     # starts one (unless this checkout's is running); prints its URL
#   scripts/s3store.sh env       # `export BASALT_TEST_BLOBS=... BASALT_BLOBS_...=...`, for eval
#   scripts/s3store.sh stop      # stops it and removes its directory
#
# GARAGE_BIN overrides the binary; BASALT_S3_STORE=moto picks moto even where Garage is built;
# BASALT_BUILD_GARAGE=1 makes `start` build Garage when it is missing instead of using moto. The store's directory, ports and key are recorded in
# target/s3store-test (one per checkout).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_FILE="${BASALT_S3_STATE_FILE:-$ROOT/target/s3store-test}"
GARAGE_VERSION=2.5.0
CACHE="${BASALT_CACHE:-$HOME/.cache/basalt}/garage"
BUCKET=basalt-test
REGION=garage

die() { echo "s3store.sh: $*" >&2; exit 1; }

garage_bin() {
    if [[ -n ${GARAGE_BIN:-} ]]; then echo "$GARAGE_BIN"; return; fi
    if [[ -x $CACHE/bin/garage ]] && "$CACHE/bin/garage" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
        echo "$CACHE/bin/garage"; return
    fi
    command -v garage 2>/dev/null || true
}

install() {
    local bin
    bin=$(garage_bin)
    if [[ -n $bin ]]; then echo "$bin"; return; fi
    echo "s3store.sh: building Garage $GARAGE_VERSION into $CACHE (once; a few minutes)" >&2
    # Only what a single test node needs: the LMDB metadata engine, no metrics or K2V.
    cargo install garage --version "$GARAGE_VERSION" --locked --no-default-features \
        --features bundled-libs,lmdb --root "$CACHE" >&2 || die "cargo install garage failed"
    echo "$CACHE/bin/garage"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
    [[ -f $STATE_FILE ]] || return 1
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    [[ -n ${S3_PID:-} ]] && kill -0 "$S3_PID" 2>/dev/null
}

url() { echo "s3://$BUCKET/?endpoint=http://127.0.0.1:$S3_PORT&region=$REGION"; }

python_bin() {
    if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"; elif [[ -x $ROOT/.venv/bin/python ]]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

# moto's server, in this checkout's virtual environment (installed there when missing).
start_moto() {
    local py dir port pid
    py=$(python_bin)
    if ! "$py" -c "import moto.server" 2>/dev/null; then
        echo "s3store.sh: Garage not built (scripts/s3store.sh install); using moto's server" >&2
        "$py" -m pip install -q 'moto[server]>=5' >&2 || die "pip install moto[server] failed"
    fi
    dir=$(mktemp -d /tmp/basalt-moto-XXXXXX)
    port=$(free_port)
    "$py" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; die "moto exited at start"; }
        sleep 0.05
    done
    "$py" - "$port" "$BUCKET" <<'PY' || die "creating the bucket failed"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.create_bucket(Bucket=sys.argv[2])
PY
    REGION=us-east-1
    mkdir -p "$(dirname "$STATE_FILE")"
    printf 'S3_KIND=moto\nS3_DIR=%q\nS3_PORT=%q\nS3_PID=%q\nS3_KEY_ID=test\nS3_SECRET=test\nREGION=us-east-1\n' \
        "$dir" "$port" "$pid" >"$STATE_FILE"
    S3_PORT=$port
    url
}

env_lines() {
    echo "export BASALT_TEST_BLOBS='$(url)'"
    echo "export BASALT_BLOBS_ACCESS_KEY_ID=$S3_KEY_ID"
    echo "export BASALT_BLOBS_SECRET_ACCESS_KEY=$S3_SECRET"
}

start() {
    if running; then url; return; fi
    local bin
    if [[ ${BASALT_S3_STORE:-} == moto ]]; then start_moto; return; fi
    bin=$(garage_bin)
    if [[ -z $bin && -z ${BASALT_BUILD_GARAGE:-} ]]; then start_moto; return; fi
    [[ -n $bin ]] || bin=$(install)
    start_garage "$bin"
}

start_garage() {
    local bin=$1 dir rpc s3 admin
    dir=$(mktemp -d /tmp/basalt-garage-XXXXXX)
    rpc=$(free_port); s3=$(free_port); admin=$(free_port)
    cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
metadata_fsync = true
data_fsync = true
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(openssl rand -hex 16)"
EOF
    local g=("$bin" -c "$dir/garage.toml")
    "${g[@]}" server >"$dir/server.log" 2>&1 &
    local pid=$!
    local node=
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; die "Garage exited at start"; }
        if "${g[@]}" status >/dev/null 2>&1; then
            node=$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1) && [[ -n $node ]] && break
        fi
        sleep 0.05
    done
    [[ -n $node ]] || { cat "$dir/server.log" >&2; die "Garage did not answer"; }
    "${g[@]}" layout assign -z dc1 -c 1G "$node" >/dev/null
    "${g[@]}" layout apply --version 1 >/dev/null
    # A key of Garage's format (GK + 24 hex digits, 64 hex digits of secret), imported so
    # that its secret is known without parsing the CLI's output.
    local key_id secret
    key_id="GK$(openssl rand -hex 12)"
    secret=$(openssl rand -hex 32)
    "${g[@]}" key import --yes -n basalt-test "$key_id" "$secret" >/dev/null
    for _ in $(seq 1 100); do
        "${g[@]}" bucket create "$BUCKET" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key basalt-test >/dev/null
    mkdir -p "$(dirname "$STATE_FILE")"
    printf 'S3_KIND=garage\nS3_DIR=%q\nS3_PORT=%q\nS3_PID=%q\nS3_KEY_ID=%q\nS3_SECRET=%q\n' \
        "$dir" "$s3" "$pid" "$key_id" "$secret" >"$STATE_FILE"
    S3_PORT=$s3
    url
}

stop() {
    [[ -f $STATE_FILE ]] || return 0
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    if [[ -n ${S3_PID:-} ]] && kill -0 "$S3_PID" 2>/dev/null; then
        kill "$S3_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$S3_PID" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$S3_PID" 2>/dev/null || true
    fi
    if [[ ${S3_DIR:-} == /tmp/basalt-garage-* || ${S3_DIR:-} == /tmp/basalt-moto-* ]]; then rm -rf "$S3_DIR"; fi
    rm -f "$STATE_FILE"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
kind) running || die "not running"; echo "$S3_KIND" ;;
url) running || die "not running (scripts/s3store.sh start)"; url ;;
env) running || die "not running (scripts/s3store.sh start)"; env_lines ;;
*) die "usage: $0 install|start|stop|url|env" ;;
esac
