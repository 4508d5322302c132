"""Calibrates basalt-guardrails' grounding and relevance score mapping (src/grounding.rs).

Cases: authored_grounding.txt (source, query, answer, grounded, relevant), split by source
passage (seeded) into train and test. Scores are computed as grounding.rs computes them
(grounding: the weakest answer sentence's best cosine to a source segment; relevance: the
whole answer's cosine to the query), then mapped by a logistic curve through two points: the
train split's best cut (highest accuracy; the midpoint between neighbouring scores) maps to
0.5, and a cosine of 1 (the answer restates the source) maps to 0.99. A plain Platt fit was
tried first: with classes this mixed its slope is shallow and a verbatim answer scored only
0.89, which would make every threshold above 0.89 block everything.

    .venv/bin/python bench/guardrails/calibrate_grounding.py
"""
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Embedder, segments  # noqa: E402

HERE = Path(__file__).resolve().parent


def load():
    rows = []
    for line in (HERE / "authored_grounding.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            s, q, a, g, r = [x.strip() for x in line.split("||")]
            rows.append(dict(source=s, query=q, answer=a, grounded=int(g), relevant=int(r)))
    passages = sorted({r["source"] for r in rows})
    random.Random(5).shuffle(passages)
    test = set(passages[: len(passages) * 4 // 11 or 1])
    for r in rows:
        r["split"] = "test" if r["source"] in test else "train"
    return rows


def raw_scores(rows, emb):
    g, rel = [], []
    for r in rows:
        ans = emb(segments(r["answer"]))
        src = emb(segments(r["source"]))
        q = emb([r["query"]])[0]
        sents = ans[1:] if len(ans) > 1 else ans
        g.append(float((sents @ src.T).max(1).min()))
        rel.append(float(ans[0] @ q))
    return np.array(g), np.array(rel)


def main():
    rows = load()
    g, rel = raw_scores(rows, Embedder())
    tr = np.array([r["split"] == "train" for r in rows])
    for name, x, key in (("grounding", g, "grounded"), ("relevance", rel, "relevant")):
        y = np.array([r[key] for r in rows])
        xs = np.sort(np.unique(x[tr]))
        cuts = (xs[1:] + xs[:-1]) / 2
        acc = [((x[tr] >= c) == (y[tr] == 1)).mean() for c in cuts]
        best = max(acc)
        # Among equally good cuts, the middle one.
        good = [c for c, a_ in zip(cuts, acc) if a_ == best]
        mid = float(good[len(good) // 2])
        a = float(np.log(99) / (1 - mid))
        b = -a * mid
        p = 1 / (1 + np.exp(-(a * x + b)))
        for split, m in (("train", tr), ("test", ~tr)):
            pred = p[m] >= 0.5
            acc = (pred == (y[m] == 1)).mean()
            tp = (pred & (y[m] == 1)).sum()
            print(f"{name:9s} {split:5s} n={m.sum():2d} accuracy at 0.5 {acc:.3f}  "
                  f"flagged-as-{'ungrounded' if name == 'grounding' else 'irrelevant'} recall "
                  f"{((~pred) & (y[m] == 0)).sum() / max((y[m] == 0).sum(), 1):.3f}  kept-good {tp / max((y[m] == 1).sum(), 1):.3f}")
        print(f"  raw cosine: positives {np.round(np.sort(x[y == 1]), 2)}\n              negatives {np.round(np.sort(x[y == 0]), 2)}")
        print(f"  mapping: score = 1 / (1 + exp(-({a:.3f} * cos + {b:.3f})))   (0.5 at cos {mid:.3f})")


if __name__ == "__main__":
    main()
