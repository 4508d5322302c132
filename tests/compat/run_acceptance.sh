#!/usr/bin/env bash
# Run the shared acceptance suite (../shared/acceptance) against a fresh Basalt server.
#
#   tests/compat/run_acceptance.sh s3,sts            # areas = acceptance markers
#   BASALT_BIN=/path/to/basalt PYTHON=.venv/bin/python tests/compat/run_acceptance.sh s3
#
# Exit status: pytest's, except 5 ("no test selected"), which is reported and counts as success.
set -euo pipefail

AREAS="${1:-${ACCEPTANCE_AREAS:-}}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="$REPO/../shared"
ACC="$SHARED/acceptance"
BIN="${BASALT_BIN:-$REPO/target/release/basalt}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi

if [[ ! -d "$ACC" ]]; then
  echo "skipped: ../shared absent"
  exit 0
fi
if [[ -z "$AREAS" ]]; then
  echo "usage: $0 AREAS   (comma-separated acceptance markers, e.g. s3,sts)" >&2
  exit 2
fi
if [[ ! -x "$BIN" ]]; then
  echo "error: server binary $BIN not found (cargo build --release)" >&2
  exit 2
fi

PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DATA="$(mktemp -d -t basalt-acceptance-XXXXXX)"
LOG="$DATA/server.log"
"$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA/data" >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  if grep -q "panicked at" "$LOG" 2>/dev/null; then
    echo "server panicked:" >&2
    grep -A5 "panicked at" "$LOG" >&2 || true
    rm -rf "$DATA"
    exit 3
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$PORT/_basalt/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "server exited at start:" >&2; cat "$LOG" >&2; exit 2; fi
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$PORT/_basalt/health" >/dev/null || { echo "server not healthy in 10 s" >&2; cat "$LOG" >&2; exit 2; }

set +e
AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  "$PYTHON" -m pytest "$ACC" --areas "$AREAS" "${@:2}"
RC=$?
set -e
if [[ $RC -eq 5 ]]; then
  echo "acceptance: no test selected for areas '$AREAS' (pytest exit 5) - nothing to run yet"
  RC=0
fi
exit $RC
