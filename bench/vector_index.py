"""basalt-vector's HNSW search against hnswlib and faiss (IndexHNSWFlat) on the same vectors.

Two datasets, 384 dimensions, cosine:
  random   100k Gaussian vectors and 1000 queries (numpy, seeded): the hard case, no clusters.
  minilm   real all-MiniLM-L6-v2 sentence vectors of text from this repository (sentences and
           sliding word windows of bench/kb/docs, the docs, READMEs, the guardrail data and Rust
           doc comments), embedded by Basalt's own encoder (`embed_file`, the code the server
           embeds with; `--embedder numpy` uses bench/guardrails/minilm.py's numpy model
           instead, as many as fit in --minilm-budget-s), 1000 held-out texts as queries. Read
           from bench/kb/minilm_100k.f32 if present, else generated and cached in
           /tmp/basalt-vector-bench/minilm_100k.f32 (never in the tree: up to 150 MB).

Every system builds with M=16, ef_construction=100 on one thread, and is searched at a sweep of
ef values; the table shows, per system, the smallest ef whose recall@10 reaches 0.95 (or the
best reached) and its queries/s on 1 and 2 threads. Basalt's numbers come from
`cargo run --release --example ann_bench -p basalt-vector` (built under the shared cargo lock,
then run directly so the lock is not held while measuring).

    .venv/bin/pip install hnswlib faiss-cpu
    .venv/bin/python bench/vector_index.py [--datasets random,minilm] [--minilm-budget-s 600]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/tmp/basalt-vector-bench")
# Read from bench/kb when someone put it there; generated into /tmp, never into the tree.
MINILM_FILES = [ROOT / "bench/kb/minilm_100k.f32", DATA / "minilm_100k.f32"]
N, NQ, DIM, K = 100_000, 1000, 384, 10
M, EF_CONSTRUCTION = 16, 100
EFS = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
TARGET = 0.95


def write_f32(path: Path, a: np.ndarray) -> None:
    """The example's format: little-endian u32 count, u32 dimension, then the f32s."""
    a = np.ascontiguousarray(a, dtype="<f4")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(np.array(a.shape, dtype="<u4").tobytes())
        f.write(a.tobytes())


def read_f32(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    n, d = np.frombuffer(raw[:8], "<u4")
    return np.frombuffer(raw[8:], "<f4").reshape(int(n), int(d))


# ---------------------------------------------------------------------------------------- data


def random_dataset() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return (
        rng.standard_normal((N, DIM), dtype=np.float32),
        rng.standard_normal((NQ, DIM), dtype=np.float32),
    )


def repo_texts() -> list[str]:
    """Distinct texts from the repository's prose: sentences first, then sliding windows of
    words of several lengths (as a chunker's overlapping chunks would be)."""
    paths = sorted((ROOT / "bench/kb/docs").glob("*.txt"))
    for pattern in ("*.md", "docs/**/*.md", "bench/guardrails/*.txt", "bench/guardrails/data/*.jsonl",
                    "bench/kb/questions.jsonl", "crates/*/README.md"):
        paths += sorted(ROOT.glob(pattern))
    chunks: list[str] = []
    for p in paths:
        t = p.read_text(errors="ignore")
        if p.suffix == ".jsonl":
            t = " ".join(re.findall(r'"(?:text|question|answer|prompt)"\s*:\s*"((?:[^"\\]|\\.)*)"', t))
        chunks.append(t)
    # Rust doc comments: this repository's largest body of prose.
    for p in sorted(ROOT.glob("crates/*/src/**/*.rs")) + sorted(ROOT.glob("services/*/src/**/*.rs")):
        lines = [m.group(1) for m in re.finditer(r"^\s*//[/!]\s?(.*)$", p.read_text(errors="ignore"), re.M)]
        chunks.append(" ".join(lines))
    words_all: list[list[str]] = []
    seen: set[str] = set()
    out: list[str] = []

    def add(s: str) -> None:
        s = " ".join(s.split())
        # Chunk-sized texts (a sentence to a short paragraph): longer ones cost quadratic
        # attention time in numpy for nothing the index cares about.
        if len(s) >= 20 and len(s.split()) <= 48 and s not in seen:
            seen.add(s)
            out.append(s)

    for t in chunks:
        for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", t):
            add(s)
        words_all.append(t.split())
    for width, stride in ((12, 6), (24, 8), (16, 4), (32, 5), (20, 3), (40, 7), (10, 2)):
        for words in words_all:
            for i in range(0, max(len(words) - width, 0) + 1, stride):
                add(" ".join(words[i : i + width]))
    return out


def _gelu32(x: np.ndarray) -> np.ndarray:
    """minilm.py's exact-erf GELU (Abramowitz-Stegun 7.1.26, error below 1.5e-7) in float32:
    its float64 version took as long as the matrix products."""
    z = np.abs(x) * np.float32(1 / np.sqrt(2))
    t = np.float32(1) / (np.float32(1) + np.float32(0.3275911) * z)
    poly = ((((np.float32(1.061405429) * t - np.float32(1.453152027)) * t + np.float32(1.421413741)) * t
             - np.float32(0.284496736)) * t + np.float32(0.254829592)) * t
    erf = np.copysign(np.float32(1) - poly * np.exp(-z * z), x)
    return np.float32(0.5) * x * (np.float32(1) + erf)


class BatchedMiniLM:
    """minilm.py's model run on batches of texts of one token length: no padding, hence no
    attention mask, and the same numbers as its one-text-at-a-time `embed`."""

    def __init__(self):
        sys.path.insert(0, str(ROOT / "bench/guardrails"))
        import minilm  # noqa: E402

        self.m = minilm.MiniLM()
        self.gelu = _gelu32
        self.ln = minilm._layer_norm

    def _encode(self, ids: np.ndarray) -> np.ndarray:
        m, w, ln = self.m, self.m.w, self.ln
        b, n = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], m.eps)
        d = x.shape[-1]
        h = m.heads
        hd = d // h
        for i in range(m.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(name, t):
                # numpy's stacked (3-d) matmul skips BLAS: 25x slower than one 2-d product.
                flat = t.reshape(-1, t.shape[-1]) @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return flat.reshape(*t.shape[:-1], -1)

            q = lin("attention.self.query", x).reshape(b, n, h, hd).transpose(0, 2, 1, 3)
            k = lin("attention.self.key", x).reshape(b, n, h, hd).transpose(0, 2, 1, 3)
            v = lin("attention.self.value", x).reshape(b, n, h, hd).transpose(0, 2, 1, 3)
            s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd))
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            a = e / e.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
            x = ln(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                   w[p + "attention.output.LayerNorm.bias"], m.eps)
            hh = self.gelu(lin("intermediate.dense", x)).astype(np.float32)
            x = ln(lin("output.dense", hh) + x, w[p + "output.LayerNorm.weight"],
                   w[p + "output.LayerNorm.bias"], m.eps)
        pooled = x.mean(1)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def embed(self, texts: list[str], deadline: float | None = None, batch_tokens: int = 16384) -> np.ndarray:
        """Embeddings of `texts` in order; stops at `deadline` (time.time()) and returns the
        rows done so far (texts are batched by length within rounds of 5000, so the rows done
        at a deadline are always a prefix)."""
        out = np.zeros((len(texts), DIM), np.float32)
        done = 0
        for start in range(0, len(texts), 5000):
            part = texts[start : start + 5000]
            encs = self.m.tok.encode_batch(part)
            by_len: dict[int, list[int]] = {}
            for i, e in enumerate(encs):
                by_len.setdefault(len(e.ids), []).append(i)
            for n, idx in by_len.items():
                step = max(1, batch_tokens // n)
                for j in range(0, len(idx), step):
                    sel = idx[j : j + step]
                    ids = np.array([encs[i].ids for i in sel], dtype=np.int64)
                    out[[start + i for i in sel]] = self._encode(ids)
            done = start + len(part)
            if deadline is not None and time.time() > deadline:
                break
        return out[:done]


# sentence-transformers' published similarity of this pair under all-MiniLM-L6-v2.
REFERENCE = ("A man is eating food.", "A man is eating a piece of bread.", 0.7553)


def embed_with_basalt(texts: list[str]) -> np.ndarray:
    """The texts through Basalt's encoder (crates/basalt-models/examples/embed_file.rs), the
    reference pair first as a check."""
    subprocess.run(
        ["flock", "-x", "/tmp/basalt-cargo.lock", "cargo", "build", "--release", "--example", "embed_file",
         "-p", "basalt-models"],
        check=True, cwd=ROOT,
    )
    DATA.mkdir(parents=True, exist_ok=True)
    src, dst = DATA / "minilm_texts.json", DATA / "minilm_embedded.f32"
    src.write_text(json.dumps([REFERENCE[0], REFERENCE[1], *texts]))
    subprocess.run([str(ROOT / "target/release/examples/embed_file"), "--texts", str(src), "--out", str(dst)],
                   check=True)
    v = read_f32(dst)
    assert abs(float(v[0] @ v[1]) - REFERENCE[2]) < 5e-4, float(v[0] @ v[1])
    return v[2:]


def minilm_dataset(budget_s: float, embedder: str) -> tuple[np.ndarray, np.ndarray, str]:
    cached = next((p for p in MINILM_FILES if p.exists()), None)
    if cached:
        allv = read_f32(cached)
        note = f"{len(allv) - NQ} base vectors cached in {cached}"
    else:
        texts = repo_texts()
        rng = np.random.default_rng(7)
        order = rng.permutation(len(texts))
        texts = [texts[i] for i in order[: N + NQ]]
        print(f"minilm: {len(texts)} distinct texts from the repository", flush=True)
        if embedder == "basalt":
            t0 = time.time()
            allv = embed_with_basalt(texts)
            note = f"{len(allv) - NQ} base texts embedded by Basalt's encoder in {time.time() - t0:.0f} s"
            write_f32(MINILM_FILES[-1], allv)
            print(f"minilm: {note}", flush=True)
            return allv[:-NQ], allv[-NQ:], note
        model = BatchedMiniLM()
        # The reference pair from minilm.py checks the batched path against the published value.
        a, b = model.embed([REFERENCE[0], REFERENCE[1]])
        assert abs(float(a @ b) - REFERENCE[2]) < 5e-4, float(a @ b)
        t0 = time.time()
        model.embed(texts[:500])
        rate = 500 / (time.time() - t0)
        print(f"minilm: {rate:.0f} texts/s on this machine; budget {budget_s:.0f} s", flush=True)
        t0 = time.time()
        # Queries first, so that a short budget still leaves the full query set.
        allv = np.concatenate([model.embed(texts[-NQ:]), model.embed(texts[:-NQ], deadline=t0 + budget_s)])
        allv = np.concatenate([allv[NQ:], allv[:NQ]])
        note = f"{len(allv) - NQ} base texts embedded in {time.time() - t0:.0f} s"
        if len(allv) - NQ < min(N, len(texts) - NQ):
            note += f" (budget {budget_s:.0f} s reached; {len(texts) - NQ} texts available)"
        write_f32(MINILM_FILES[-1], allv)
    print(f"minilm: {note}", flush=True)
    return allv[:-NQ], allv[-NQ:], note


# ------------------------------------------------------------------------------------- systems


def truth(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    out = []
    for i in range(0, len(q), 100):
        s = q[i : i + 100] @ b.T
        top = np.argpartition(-s, K, axis=1)[:, :K]
        out.append(top)
    return np.concatenate(out)


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(w)) / K for g, w in zip(got, want)]))


def qps(fn, nq: int) -> float:
    """Queries/s, repeating the batch until a second has passed."""
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        fn()
        done += nq
    return done / (time.perf_counter() - t0)


def pick(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["recall"] >= TARGET]
    return min(ok, key=lambda r: r["ef"]) if ok else max(rows, key=lambda r: r["recall"])


def run_basalt(base_path: Path, query_path: Path) -> dict:
    exe = ROOT / "target/release/examples/ann_bench"
    out = subprocess.run(
        [str(exe), "--base", str(base_path), "--queries", str(query_path), "--ef", ",".join(map(str, EFS))],
        check=True, capture_output=True, text=True,
    ).stdout
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    build = next(e for e in events if e["event"] == "build")
    rows = [e for e in events if e["event"] == "search"]
    for r in rows:
        print(f"  basalt ef={r['ef']:5d} recall={r['recall']:.4f} qps1={r['qps_1']:.0f} qps2={r['qps_2']:.0f}", flush=True)
    best = pick(rows)
    filt = next(e for e in events if e["event"] == "filtered")
    exact = next(e for e in events if e["event"] == "exact")
    return {"build_s": build["build_s"], **best, "filtered": filt, "exact_qps_1": exact["qps_1"]}


def run_hnswlib(base: np.ndarray, queries: np.ndarray, gt: np.ndarray) -> dict | None:
    try:
        import hnswlib
    except ImportError as e:
        print(f"hnswlib unavailable: {e}")
        return None
    p = hnswlib.Index(space="cosine", dim=base.shape[1])
    p.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    p.set_num_threads(1)
    t0 = time.perf_counter()
    p.add_items(base, np.arange(len(base)))
    build = time.perf_counter() - t0
    rows = []
    for ef in EFS:
        p.set_ef(ef)
        p.set_num_threads(1)
        labels, _ = p.knn_query(queries, K)
        r = {"ef": ef, "recall": recall(labels, gt)}
        r["qps_1"] = qps(lambda: p.knn_query(queries, K), len(queries))
        p.set_num_threads(2)
        r["qps_2"] = qps(lambda: p.knn_query(queries, K), len(queries))
        print(f"  hnswlib ef={ef:5d} recall={r['recall']:.4f} qps1={r['qps_1']:.0f} qps2={r['qps_2']:.0f}", flush=True)
        rows.append(r)
        if r["recall"] >= 0.995:
            break
    return {"build_s": build, **pick(rows)}


def run_faiss(base: np.ndarray, queries: np.ndarray, gt: np.ndarray) -> dict | None:
    try:
        import faiss
    except ImportError as e:
        print(f"faiss unavailable: {e}")
        return None
    b = np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True), dtype=np.float32)
    q = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)
    idx = faiss.IndexHNSWFlat(b.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = EF_CONSTRUCTION
    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    idx.add(b)
    build = time.perf_counter() - t0
    rows = []
    for ef in EFS:
        idx.hnsw.efSearch = ef
        faiss.omp_set_num_threads(1)
        _, labels = idx.search(q, K)
        r = {"ef": ef, "recall": recall(labels, gt)}
        r["qps_1"] = qps(lambda: idx.search(q, K), len(q))
        faiss.omp_set_num_threads(2)
        r["qps_2"] = qps(lambda: idx.search(q, K), len(q))
        print(f"  faiss ef={ef:5d} recall={r['recall']:.4f} qps1={r['qps_1']:.0f} qps2={r['qps_2']:.0f}", flush=True)
        rows.append(r)
        if r["recall"] >= 0.995:
            break
    return {"build_s": build, **pick(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="random,minilm")
    ap.add_argument("--minilm-budget-s", type=float, default=600.0, help="with --embedder numpy")
    ap.add_argument("--embedder", choices=["basalt", "numpy"], default="basalt",
                    help="what embeds the minilm texts when no cached vectors exist")
    ap.add_argument("--systems", default="basalt,hnswlib,faiss")
    ap.add_argument("--efs", default=",".join(map(str, EFS)), help="ef values to sweep")
    args = ap.parse_args()
    EFS[:] = [int(e) for e in args.efs.split(",")]
    systems = args.systems.split(",")

    if "basalt" in systems:
        # The shared lock: one cargo build at a time on this machine.
        subprocess.run(
            ["flock", "-x", "/tmp/basalt-cargo.lock", "cargo", "build", "--release", "--example", "ann_bench",
             "-p", "basalt-vector"],
            check=True, cwd=ROOT,
        )

    table = []
    notes = []
    for name in args.datasets.split(","):
        if name == "random":
            base, queries = random_dataset()
        elif name == "minilm":
            base, queries, note = minilm_dataset(args.minilm_budget_s, args.embedder)
            notes.append(f"minilm: {note}")
        else:
            sys.exit(f"unknown dataset {name}")
        bp, qp = DATA / f"{name}_base.f32", DATA / f"{name}_queries.f32"
        write_f32(bp, base)
        write_f32(qp, queries)
        gt = truth(base, queries)
        print(f"{name}: {len(base)} x {base.shape[1]}, {len(queries)} queries", flush=True)
        results = {}
        if "basalt" in systems:
            results["basalt"] = run_basalt(bp, qp)
            f = results["basalt"]["filtered"]
            notes.append(
                f"{name}: basalt filtered (1% selectivity, exact fallback) recall@10 {f['recall']:.4f}, "
                f"{f['qps_1']:.0f} q/s on 1 thread, {f['qps_2']:.0f} on 2; exact scan "
                f"{results['basalt']['exact_qps_1']:.0f} q/s on 1 thread"
            )
        if "hnswlib" in systems and (r := run_hnswlib(base, queries, gt)):
            results["hnswlib"] = r
        if "faiss" in systems and (r := run_faiss(base, queries, gt)):
            results["faiss"] = r
        for system, r in results.items():
            table.append((system, name, {**r, "n": len(base)}))

    print()
    print(f"M={M}, ef_construction={EF_CONSTRUCTION}, k={K}; ef = smallest of {EFS} with recall@10 >= {TARGET}")
    head = f"{'system':8} {'dataset':8} {'n':>7} {'build s':>8} {'ef':>5} {'recall@10':>9} {'qps@1t':>8} {'qps@2t':>8} {'basalt/peer@1t':>15} {'basalt/peer@2t':>15}"
    print(head)
    print("-" * len(head))
    for system, name, r in table:
        ours = next((x for s, n, x in table if s == "basalt" and n == name), None)
        ratio1 = ratio2 = ""
        if ours and system != "basalt":
            ratio1 = f"{ours['qps_1'] / r['qps_1']:.2f}"
            ratio2 = f"{ours['qps_2'] / r['qps_2']:.2f}"
        print(f"{system:8} {name:8} {r['n']:>7} {r['build_s']:8.1f} {r['ef']:5d} {r['recall']:9.4f} "
              f"{r['qps_1']:8.0f} {r['qps_2']:8.0f} {ratio1:>15} {ratio2:>15}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
