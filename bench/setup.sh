#!/usr/bin/env bash
# Creates the environments of the peers the model benchmarks compare against, on this machine:
#   bench/setup.sh llm         .venv-bench-llm: llama-cpp-python compiled here with exactly the
#                              CPU kernels Basalt's engine runs (the level `basalt models list`
#                              reports), so both sides run the same llama.cpp kernels
#   bench/setup.sh embeddings  .venv-bench-st: sentence-transformers (torch from PyPI)
# Idempotent: an environment that exists is kept. Needs target/release/basalt and the models.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BIN=${BASALT_BIN:-target/release/basalt}
LLAMA_CPP_PYTHON=${LLAMA_CPP_PYTHON:-llama-cpp-python==0.3.36}

# ggml's options for each of its CPU variants (ggml/src/CMakeLists.txt).
ggml_flags() {
  local base="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON -DGGML_AVX2=ON -DGGML_BMI2=ON"
  case "$1" in
    x64) echo "-DGGML_NATIVE=OFF" ;;
    sse42) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON" ;;
    sandybridge) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON" ;;
    ivybridge) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON" ;;
    piledriver) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON" ;;
    haswell) echo "$base" ;;
    alderlake) echo "$base -DGGML_AVX_VNNI=ON" ;;
    skylakex) echo "$base -DGGML_AVX512=ON" ;;
    cannonlake) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON" ;;
    cascadelake) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON" ;;
    icelake) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON" ;;
    cooperlake) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON" ;;
    zen4) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON" ;;
    sapphirerapids) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON" ;;
    *) echo "-DGGML_NATIVE=ON" ;;
  esac
}

llm() {
  local venv=.venv-bench-llm
  if [ -x $venv/bin/python ] && $venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    echo "$venv: present ($(cat $venv/.kernels 2>/dev/null))"; return
  fi
  local level flags
  level=$("$BIN" models list 2>/dev/null | sed -n 's/^llama.cpp CPU kernels: \([a-z0-9]*\).*/\1/p')
  flags=$(ggml_flags "${level:-native}")
  echo "building $LLAMA_CPP_PYTHON for the '$level' kernels ($flags): several minutes on 2 cores"
  $PY -m venv $venv
  CMAKE_ARGS="$flags -DGGML_OPENMP=ON" FORCE_CMAKE=1 \
    $venv/bin/pip install --quiet --disable-pip-version-check --no-binary llama-cpp-python "$LLAMA_CPP_PYTHON"
  echo "$level: $flags" > $venv/.kernels
}

embeddings() {
  local venv=.venv-bench-st
  if [ -x $venv/bin/python ] && $venv/bin/python -c 'import sentence_transformers' 2>/dev/null; then
    echo "$venv: present"; return
  fi
  $PY -m venv $venv
  $venv/bin/pip install --quiet --disable-pip-version-check sentence-transformers numpy tokenizers
}

case "${1:-}" in
  llm) llm ;;
  embeddings) embeddings ;;
  all) llm; embeddings ;;
  *) echo "usage: bench/setup.sh llm|embeddings|all" >&2; exit 2 ;;
esac
