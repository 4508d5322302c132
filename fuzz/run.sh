#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600). Needs cargo-fuzz; the stable
# toolchain runs it with RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly-only).
set -euo pipefail
SECONDS_EACH="${1:-600}"
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in $(cargo fuzz list); do
  echo "== $t ($SECONDS_EACH s)"
  mkdir -p "corpus/$t"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 2>&1 | tail -4
done
