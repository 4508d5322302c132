"""Trains the content-filter heads of basalt-guardrails on MiniLM embeddings (numpy only) and
exports crates/basalt-guardrails/models/content.json.

    .venv/bin/python bench/guardrails/train.py            # train, choose, export
    .venv/bin/python bench/guardrails/train.py --report   # also print the candidates' scores

Only the `train` split of data/content.jsonl is read. Per category:
- candidates: class-weighted L2 logistic regression at a few regularisation strengths, a
  small MLP (384-32-1, early-stopped on an inner fold), and for PROMPT_ATTACK the vendored
  jailguard MLP alone and averaged with our own head;
- each candidate is scored by 5-fold cross-validation inside train: out-of-fold scores, each
  text scored as basalt-guardrails does (max over text::segments); the candidate with the
  best out-of-fold F1 wins (ties: average precision);
- the thresholds come from the winner's out-of-fold scores: t_low is the F1-best threshold,
  lowered if needed until out-of-fold recall >= 0.85; t_medium the lowest threshold >= t_low
  whose predictions have precision >= 0.90, t_high >= 0.95 (each at least a step above the
  previous one so that the three confidences stay distinct);
- the winner is refitted on all of train and exported with its thresholds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import CATEGORIES, MODELS, Embedder, data_hash, load_jailguard, load_jsonl, mlp_forward, segments  # noqa: E402

SEED = 7
FOLDS = 5


# ---------- models ----------

def fit_logreg(X, y, lam, iters=30):
    """Class-weighted L2 logistic regression by Newton's method. Returns (w, b)."""
    n, d = X.shape
    pos = y.sum()
    sw = np.where(y == 1, n / (2 * max(pos, 1)), n / (2 * max(n - pos, 1)))
    A = np.hstack([X.astype(np.float64), np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(A @ theta)))
        g = A.T @ (sw * (p - y)) / n + reg * theta
        H = (A * (sw * p * (1 - p))[:, None]).T @ A / n + np.diag(reg + 1e-9)
        step = np.linalg.solve(H, g)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return [(theta[None, :d].astype(np.float32), theta[d:].astype(np.float32))]


def fit_mlp(X, y, hidden=32, lam=1e-3, epochs=400, lr=0.01, seed=SEED):
    """384-hidden-1 MLP, class-weighted BCE, Adam, early stopping on a 20% inner fold."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    idx = rng.permutation(n)
    nv = max(n // 5, 1)
    vi, ti = idx[:nv], idx[nv:]
    pos = y[ti].sum()
    sw_all = np.where(y == 1, len(ti) / (2 * max(pos, 1)), len(ti) / (2 * max(len(ti) - pos, 1)))
    W1 = rng.normal(0, np.sqrt(2 / d), (hidden, d))
    b1 = np.zeros(hidden)
    W2 = rng.normal(0, np.sqrt(1 / hidden), (1, hidden))
    b2 = np.zeros(1)
    params = [W1, b1, W2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    best, best_params, bad = np.inf, None, 0
    Xt, yt, swt = X[ti].astype(np.float64), y[ti], sw_all[ti]
    Xv, yv, swv = X[vi].astype(np.float64), y[vi], sw_all[vi]
    for ep in range(1, epochs + 1):
        h = np.maximum(Xt @ W1.T + b1, 0)
        z = (h @ W2.T + b2)[:, 0]
        p = 1 / (1 + np.exp(-z))
        dz = swt * (p - yt) / len(ti)
        gW2 = dz[None, :] @ h + lam * W2
        gb2 = np.array([dz.sum()])
        dh = dz[:, None] * W2 * (h > 0)
        gW1 = dh.T @ Xt + lam * W1
        gb1 = dh.sum(0)
        for k, (p_, g) in enumerate(zip(params, [gW1, gb1, gW2, gb2])):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            p_ -= lr * (m[k] / (1 - 0.9**ep)) / (np.sqrt(v[k] / (1 - 0.999**ep)) + 1e-8)
        hv = np.maximum(Xv @ W1.T + b1, 0)
        pv = 1 / (1 + np.exp(-(hv @ W2.T + b2)[:, 0]))
        pv = np.clip(pv, 1e-7, 1 - 1e-7)
        loss = -np.mean(swv * (yv * np.log(pv) + (1 - yv) * np.log(1 - pv)))
        if loss < best - 1e-5:
            best, bad = loss, 0
            best_params = [p_.copy() for p_ in params]
        else:
            bad += 1
            if bad >= 30:
                break
    W1, b1, W2, b2 = best_params
    return [(W1.astype(np.float32), b1.astype(np.float32)), (W2.astype(np.float32), b2.astype(np.float32))]


# ---------- evaluation helpers ----------

def text_scores(score_fn, seg_index, Xseg):
    """Max over each text's segments of score_fn on the segment embeddings."""
    s = score_fn(Xseg)
    return np.array([s[ix].max() for ix in seg_index])


def pr_at(scores, y, t):
    pred = scores >= t
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return prec, rec


def best_f1(scores, y):
    best = (0.0, 0.5)
    for t in np.unique(scores):
        p, r = pr_at(scores, y, t)
        f = 2 * p * r / (p + r) if p + r else 0
        if f > best[0] + 1e-12:
            best = (f, float(t))
    return best


def average_precision(scores, y):
    order = np.argsort(-scores)
    ys = y[order]
    tp = np.cumsum(ys)
    prec = tp / np.arange(1, len(ys) + 1)
    return float((prec * ys).sum() / max(ys.sum(), 1))


def choose_thresholds(scores, y):
    f1, t_low = best_f1(scores, y)
    cands = np.unique(scores)
    # Lower t_low until recall >= 0.85 on the out-of-fold scores.
    while pr_at(scores, y, t_low)[1] < 0.85:
        lower = cands[cands < t_low]
        if not len(lower):
            break
        t_low = float(lower.max())

    def first_with_precision(target, floor):
        for t in np.sort(cands[cands >= floor]):
            p, _ = pr_at(scores, y, t)
            if p >= target and (scores >= t).sum() >= 3:
                return float(t)
        return float(min(1.0, max(floor, cands.max())))

    t_med = first_with_precision(0.90, t_low)
    t_med = max(t_med, t_low + 0.1 * (1 - t_low))
    t_high = first_with_precision(0.95, t_med)
    t_high = max(t_high, t_med + 0.2 * (1 - t_med))
    # Rounded down: a threshold equal to a validation score must still include that text.
    def floor6(t):
        return math.floor(t * 1e6) / 1e6

    return {"low": floor6(t_low), "medium": floor6(t_med), "high": floor6(t_high)}, f1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()

    rows = [r for r in load_jsonl("content.jsonl") if r["split"] == "train"]
    emb = Embedder()
    segs = [segments(r["text"]) for r in rows]
    flat = [s for ss in segs for s in ss]
    Xseg = emb(flat)
    seg_index, k = [], 0
    for ss in segs:
        seg_index.append(np.arange(k, k + len(ss)))
        k += len(ss)
    Xtext = Xseg[[ix[0] for ix in seg_index]]
    n = len(rows)
    rng = np.random.default_rng(SEED)
    # Stratified folds on the label set.
    keys = [",".join(sorted(r["labels"])) or "BENIGN" for r in rows]
    fold = np.zeros(n, int)
    for key in sorted(set(keys)):
        ix = [i for i in range(n) if keys[i] == key]
        ix = rng.permutation(ix)
        for j, i in enumerate(ix):
            fold[i] = j % FOLDS
    benign = np.array([not r["labels"] for r in rows])
    jg = load_jailguard()

    candidates = {
        "logreg(l2=1e-4)": lambda X, y: fit_logreg(X, y, 1e-4),
        "logreg(l2=1e-3)": lambda X, y: fit_logreg(X, y, 1e-3),
        "logreg(l2=1e-2)": lambda X, y: fit_logreg(X, y, 1e-2),
        "mlp(32)": lambda X, y: fit_mlp(X, y),
    }

    out = {
        "embedding": "all-MiniLM-L6-v2, mean pooled over tokens, L2-normalised (384)",
        "scoring": "max over text::segments (the whole text, then each sentence)",
        "forward": "dense layers, ReLU between them, sigmoid at the end; "
                   "score = (1 - jailguard_weight) * head + jailguard_weight * jailguard",
        "trained": datetime.date.today().isoformat(),
        "command": ".venv/bin/python bench/guardrails/train.py",
        "data": "bench/guardrails/data/content.jsonl, split=train only",
        "data_sha256_16": data_hash(),
        "categories": {},
    }
    oof_pred_low = {}
    for cat in CATEGORIES:
        y = np.array([cat in r["labels"] for r in rows], int)
        results = {}
        for name, fit in candidates.items():
            oof = np.zeros(n)
            for f in range(FOLDS):
                tr = fold != f
                layers = fit(Xtext[tr], y[tr])
                te = np.where(fold == f)[0]
                for i in te:
                    oof[i] = mlp_forward(layers, Xseg[seg_index[i]]).max()
            results[name] = oof
        if cat == "PROMPT_ATTACK":
            jg_oof = text_scores(lambda X: mlp_forward(jg, X), seg_index, Xseg)
            results["jailguard"] = jg_oof
            base = max((k for k in results if k != "jailguard"), key=lambda k: best_f1(results[k], y)[0])
            for w in (0.25, 0.5, 0.75):
                results[f"{w}*jailguard+{1 - w}*{base}"] = (1 - w) * results[base] + w * jg_oof
        table = {k: (best_f1(v, y)[0], average_precision(v, y)) for k, v in results.items()}
        winner = max(table, key=lambda k: (round(table[k][0], 4), table[k][1]))
        if args.report:
            print(f"\n{cat}: {y.sum()} positive / {n} train texts (out-of-fold, max over segments)")
            for k, (f1, ap_) in sorted(table.items(), key=lambda kv: -kv[1][0]):
                print(f"  {k:40s} F1 {f1:.3f}  AP {ap_:.3f}{'   <- chosen' if k == winner else ''}")
        oof = results[winner]
        thr, f1 = choose_thresholds(oof, y)
        p_low, r_low = pr_at(oof, y, thr["low"])
        p_med, r_med = pr_at(oof, y, thr["medium"])
        p_high, r_high = pr_at(oof, y, thr["high"])
        oof_pred_low[cat] = oof >= thr["low"]
        # Refit the winner on all of train.
        wj = 0.0
        if winner == "jailguard":
            layers, wj = [(np.zeros((1, 384), np.float32), np.zeros(1, np.float32))], 1.0
        elif "*jailguard+" in winner:
            wj = float(winner.split("*")[0])
            base = winner.split("+", 1)[1].split("*", 1)[1]
            layers = candidates[base](Xtext, y)
        else:
            layers = candidates[winner](Xtext, y)
        out["categories"][cat] = {
            "method": winner,
            "jailguard_weight": wj,
            "thresholds": thr,
            "validation": {
                "positives": int(y.sum()), "texts": n,
                "f1_best": round(f1, 4),
                "low": {"precision": round(p_low, 4), "recall": round(r_low, 4)},
                "medium": {"precision": round(p_med, 4), "recall": round(r_med, 4)},
                "high": {"precision": round(p_high, 4), "recall": round(r_high, 4)},
                "candidates": {k: {"f1": round(v[0], 4), "ap": round(v[1], 4)} for k, v in table.items()},
            },
            "layers": [
                {"w": [[float(f"{x:.6g}") for x in row] for row in w], "b": [float(f"{x:.6g}") for x in b]}
                for w, b in layers
            ],
        }
        print(f"{cat:14s} {winner:36s} thresholds {thr}  OOF low P/R {p_low:.3f}/{r_low:.3f}  "
              f"med P {p_med:.3f}  high P {p_high:.3f}")
    any_low = np.zeros(n, bool)
    for v in oof_pred_low.values():
        any_low |= v
    fb = any_low[benign].mean()
    out["validation_benign_false_block_rate"] = round(float(fb), 4)
    print(f"out-of-fold benign false-block rate at HIGH strength (any filter): {fb:.3f} ({any_low[benign].sum()}/{benign.sum()})")
    MODELS.mkdir(parents=True, exist_ok=True)
    (MODELS / "content.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {MODELS / 'content.json'}")
    write_test_vectors(emb)


def write_test_vectors(emb):
    """models/test_vectors.json for classify.rs's tests: the seed's cases with their segments'
    embeddings and the scores the exported heads give them (computed here in float32 from
    the stored, rounded vectors, as the Rust test reads them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from common import Heads
    from guardrails import SEED_CASES, TOPIC_DEFS, topic_anchors

    heads = Heads()

    def r7(v):
        return [float(f"{x:.7g}") for x in v]

    cases = []
    for text, expect in SEED_CASES:
        vecs = [r7(v) for v in emb(segments(text))]
        X = np.array(vecs, np.float32)
        scores = {c: float(heads.score(c, X).max()) for c in CATEGORIES}
        cases.append({"text": text, "expect": expect, "segments": vecs,
                      "scores": {c: round(s, 7) for c, s in scores.items()},
                      "confidences": {c: heads.confidence(c, s) for c, s in scores.items()}})
    anchors = {n: [r7(v) for v in emb(topic_anchors(n, TOPIC_DEFS[n], False))]
               for n in ("Violence", "FinancialAdvice")}
    (MODELS / "test_vectors.json").write_text(
        json.dumps({"note": "written by bench/guardrails/train.py", "cases": cases, "anchors": anchors},
                   separators=(",", ":")) + "\n")
    print(f"wrote {MODELS / 'test_vectors.json'}")


if __name__ == "__main__":
    main()
