#!/usr/bin/env python3
"""Basalt's sentence embeddings (its own BERT encoder, crates/basalt-models/src/embed/) side by
side with sentence-transformers on all-MiniLM-L6-v2, the same sentences and the same thread count.

Ours: target/release/examples/embed_bench, which calls `EmbeddingModel::embed` as the server
does: `batched` = one call with all sentences (Cohere-style request; the encoder takes up to
4,096 tokens per pass, sentences end to end without padding), `single` = one call per sentence
(Titan-style request). `--precision f32` (the server's default) or `bf16`.
Peer: `SentenceTransformer(dir).encode(sentences, batch_size=32, normalize_embeddings=True)`
(and one sentence per call for the single column). If sentence-transformers (torch) is not
importable, the peer is the NumPy float64 reference of tests/compat/test_embeddings.py, clearly
labelled: it is a correctness reference, not a speed peer.

Prerequisites (installs nothing; `make bench-embeddings` does all of it):
  cargo build --release -p basalt-models --examples
  bash bench/setup.sh embeddings   # .venv-bench-st: sentence-transformers
      # torch from PyPI pulls CUDA runtime wheels (~5.8 GB venv) but runs on CPU

Usage:
  .venv-bench-st/bin/python bench/embeddings.py [--n 1000] [--threads 2] [--precision f32|bf16]
      [--model DIR] [--json OUT]
"""
import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_DIR = pathlib.Path.home() / ".cache/basalt/models/all-minilm-l6-v2"
BIN = ROOT / "target/release/examples/embed_bench"
WORDS = ("the a cloud service stores data securely while users upload photos videos and documents from phones laptops "
         "servers in many regions across the world every day with low latency high throughput and strong consistency "
         "guarantees for developers building modern applications that scale").split()
PROBE = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market crashed today."]


def sentences(n):
    rnd = random.Random(0)
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 20))) for _ in range(n)]


def run_ours(args, sents):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(sents, f)
    cmd = [str(BIN), "--model", str(args.model), "--sentences", f.name, "--reps", str(args.reps),
           "--threads", str(args.threads), "--precision", args.precision]
    print("$ " + " ".join(cmd), file=sys.stderr)
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])


def run_st(args, sents):
    import torch
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer
    import sentence_transformers
    m = SentenceTransformer(str(args.model), device="cpu")
    m.encode(sents[:64], batch_size=32)  # warm-up
    batched, single = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        m.encode(sents, batch_size=32, normalize_embeddings=True)
        batched.append(len(sents) / (time.perf_counter() - t0))
    sub = sents[: args.single_n]
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for s in sub:
            m.encode([s], normalize_embeddings=True)
        single.append(len(sub) / (time.perf_counter() - t0))
    e = m.encode(PROBE, normalize_embeddings=True)
    return {"peer": f"sentence-transformers {sentence_transformers.__version__} / torch {torch.__version__} (CPU)",
            "threads": torch.get_num_threads(),
            "batched_sent_s": [round(x, 1) for x in batched], "batched_median": round(statistics.median(batched), 1),
            "single_sent_s": [round(x, 1) for x in single], "single_median": round(statistics.median(single), 1),
            "single_n": len(sub),
            "cos_sim_related": round(float(e[0] @ e[1]), 4), "cos_sim_unrelated": round(float(e[0] @ e[2]), 4)}


def run_numpy(args, sents):
    sys.path.insert(0, str(ROOT / "tests/compat"))
    os.environ.setdefault("BASALT_MODEL_DIR", str(args.model.parent))
    import numpy as np
    from test_embeddings import Reference  # noqa: E402  (NumPy float64 reference)
    ref = Reference()
    sub = sents[: args.single_n]
    t0 = time.perf_counter()
    for s in sub:
        ref.embed(s)
    rate = len(sub) / (time.perf_counter() - t0)
    e = [ref.embed(s) for s in PROBE]
    return {"peer": "NumPy float64 reference (tests/compat/test_embeddings.py), NOT sentence-transformers",
            "single_sent_s": [round(rate, 1)], "single_median": round(rate, 1), "batched_median": None,
            "single_n": len(sub),
            "cos_sim_related": round(float(np.dot(e[0], e[1])), 4), "cos_sim_unrelated": round(float(np.dot(e[0], e[2])), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=pathlib.Path, default=DEFAULT_DIR)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--single-n", type=int, default=200, help="sentences for the peer's one-per-call column")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: cargo build --release -p basalt-models --examples")
    sents = sentences(args.n)
    mine = run_ours(args, sents)
    try:
        peer = run_st(args, sents)
    except ImportError as e:
        print(f"sentence-transformers not importable ({e}); comparing against the NumPy reference", file=sys.stderr)
        peer = run_numpy(args, sents)
    print(f"\nall-MiniLM-L6-v2, {len(sents)} sentences (avg {mine['avg_tokens']} tokens with [CLS]/[SEP]), "
          f"{args.threads} threads, sentences/s, median of {args.reps}")
    print(f"{'':36}{'basalt':>10}{'peer':>10}{'ratio':>8}")
    for key, label in (("batched_median", "one call (peer: batch_size=32)"), ("single_median", "one sentence per call")):
        a, b = mine.get(key), peer.get(key)
        ratio = round(a / b, 2) if a and b else "-"
        print(f"{label:36}{a if a is not None else '-':>10}{b if b is not None else '-':>10}{ratio:>8}")
    print(f"basalt: {mine['engine']}; peer: {peer['peer']}")
    print(f"cos(related) basalt {mine['cos_sim_related']} peer {peer['cos_sim_related']}; "
          f"cos(unrelated) basalt {mine['cos_sim_unrelated']} peer {peer['cos_sim_unrelated']}")
    if args.json:
        args.json.write_text(json.dumps({"basalt": mine, "peer": peer}, indent=1))


if __name__ == "__main__":
    main()
