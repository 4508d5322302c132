#!/usr/bin/env bash
# Ceph's s3-tests (the suite RGW, MinIO and Garage are measured by) against a fresh Basalt:
# `make s3-tests`. Fetches a pinned revision of the suite once, runs test_s3.py's tests that are
# not marked fails_on_aws, prints the pass count and checks the failures against
# tests/s3-tests/known-failures.txt (each listed there with its reason).
#
#   scripts/s3-tests.sh                 the whole suite
#   scripts/s3-tests.sh -k acl          extra arguments go to pytest
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=8f0ae7b404a3a2fcf7038bf1e6bf29544fe9b6a3
WORK=${S3TESTS_DIR:-$ROOT/target/s3-tests}
BIN=${BASALT_BIN:-$ROOT/target/release/basalt}
PY=${PYTHON:-python3}
SRC=$WORK/s3-tests-$COMMIT
mkdir -p "$WORK"

if [ ! -f "$SRC/s3tests/functional/test_s3.py" ]; then
  echo "fetching ceph/s3-tests@${COMMIT:0:12}"
  mkdir -p "$SRC"
  # S3TESTS_GIT: a local clone of ceph/s3-tests to take the revision from (offline machines).
  if [ -n "${S3TESTS_GIT:-}" ]; then
    git --git-dir="$S3TESTS_GIT" archive "$COMMIT" | tar -x -C "$SRC"
  else
    curl -fsSL "https://codeload.github.com/ceph/s3-tests/tar.gz/$COMMIT" | tar -xz -C "$SRC" --strip-components=1
  fi
fi
VENV=$WORK/venv
if ! cmp -s "$ROOT/tests/s3-tests/requirements.txt" "$VENV/requirements.txt" 2>/dev/null; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/tests/s3-tests/requirements.txt"
  cp "$ROOT/tests/s3-tests/requirements.txt" "$VENV/requirements.txt"
fi
[ -x "$BIN" ] || { echo "no $BIN: build it first (make build)"; exit 1; }

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$WORK/basalt.log
# The suite's key pairs: main and the iam user share one account, alt and tenant each have
# their own, so that ACLs, policies and ownership are tested across accounts.
# A lifecycle day lasts lc_debug_interval (10 s), as the suite's RGW runs use.
BASALT_S3_LIFECYCLE_DAY_SECS=10 "$BIN" serve --host 127.0.0.1 --port "$PORT" --ephemeral --auth sigv4 \
  --access-key '0555b35654ad1656d804:h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==:000000000000' \
  --access-key 'ABCDEFGHIJKLMNOPQRST:abcdefghijklmnopqrstuvwxyzabcdefghijklmn:000000000000' \
  --access-key 'NOPQRSTUVWXYZABCDEFG:nopqrstuvwxyzabcdefghijklmnabcdefghijklm:111111111111' \
  --access-key 'HIJKLMNOPQRSTUVWXYZA:opqrstuvwxyzabcdefghijklmnopqrstuvwxyzab:222222222222' \
  >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/_basalt/health" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done

CONF=$WORK/s3tests.conf
"$VENV/bin/python" "$ROOT/tests/s3-tests/configure.py" "$ROOT/tests/s3-tests/s3tests.conf.in" "$CONF" "$PORT"

cd "$SRC"
set +e
S3TEST_CONF=$CONF "$VENV/bin/python" -m pytest s3tests/functional/test_s3.py \
  -m 'not fails_on_aws' -p no:cacheprovider -q -o addopts= --tb=line -rN \
  --junitxml="$WORK/results.xml" "$@" >"$WORK/pytest.log" 2>&1
set -e
tail -n 1 "$WORK/pytest.log"
"$VENV/bin/python" "$ROOT/tests/s3-tests/summary.py" "$WORK/results.xml" "$ROOT/tests/s3-tests/known-failures.txt" "$#"
