"""Shared pieces of the guardrail bench: the data, text segments as basalt-guardrails cuts
them, cached MiniLM embeddings, and the classifier heads' forward pass (the same arithmetic
as crates/basalt-guardrails/src/classify.rs)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parent.parent
MODELS = REPO / "crates/basalt-guardrails/models"
CATEGORIES = ["HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK"]
CACHE = Path.home() / ".cache/basalt/guardrails-embeddings"


def load_jsonl(name: str) -> list[dict]:
    return [json.loads(l) for l in (DATA / name).read_text().splitlines() if l.strip()]


def data_hash() -> str:
    h = hashlib.sha256()
    for name in ("content.jsonl", "topics.jsonl"):
        h.update((DATA / name).read_bytes())
    return h.hexdigest()[:16]


def sentences(text: str) -> list[str]:
    """text::sentences: split after . ! ? followed by white space (or the end), and at line
    breaks; trimmed; empty pieces dropped. Works on UTF-8 bytes like the Rust code."""
    b = text.encode("utf-8")
    out, start, i = [], 0, 0
    while i < len(b):
        c = b[i]
        end = None
        if c == 0x0A:
            end = i
        elif c in (0x2E, 0x21, 0x3F):
            nxt = b[i + 1] if i + 1 < len(b) else None
            if nxt is None or chr(nxt).isspace() and nxt < 128:
                end = i + 1
        if end is not None:
            piece = b[start:end].decode("utf-8").strip()
            if piece:
                out.append(piece)
            start = min(max(end, i + 1), len(b))
        i += 1
    tail = b[min(start, len(b)):].decode("utf-8").strip()
    if tail:
        out.append(tail)
    return out


def segments(text: str) -> list[str]:
    """The whole text, then its sentences when it has more than one: what the heads were
    trained on (train.py), each segment embedded on its own."""
    s = sentences(text)
    out = [text.strip()]
    if len(s) > 1:
        out.extend(s)
    return out


def segment_vectors(emb, text: str) -> np.ndarray:
    """The segments' vectors as the engine computes them (text::pieces and
    text::segment_vectors): only the sentences are embedded, and the whole text's vector is
    their normalised mean."""
    s = sentences(text)
    if len(s) <= 1:
        return emb([text.strip()])
    X = emb(s)
    whole = X.sum(axis=0)
    norm = float(np.linalg.norm(whole))
    if norm > 0:
        whole = whole / norm
    return np.vstack([whole[None, :], X])


class Embedder:
    """MiniLM embeddings with an on-disk cache keyed by text."""

    def __init__(self):
        CACHE.mkdir(parents=True, exist_ok=True)
        self.path = CACHE / "cache.npz"
        self.vecs: dict[str, np.ndarray] = {}
        if self.path.exists():
            z = np.load(self.path, allow_pickle=False)
            for k, v in zip(z["keys"], z["vecs"]):
                self.vecs[str(k)] = v
        self.dirty = False

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.vecs})
        if missing:
            from minilm import shared

            m = shared()
            for i in range(0, len(missing), 64):
                chunk = missing[i : i + 64]
                for t, v in zip(chunk, m.embed(chunk)):
                    self.vecs[t] = v
            self.dirty = True
            self.save()
        return np.stack([self.vecs[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def save(self):
        if self.dirty:
            keys = np.array(list(self.vecs.keys()))
            np.savez(self.path, keys=keys, vecs=np.stack(list(self.vecs.values())))
            self.dirty = False


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def mlp_forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Dense layers, ReLU between them, sigmoid at the end; x is (n, 384). Returns (n,)."""
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return sigmoid(h[:, 0])


def load_jailguard(path: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    d = json.loads((path or MODELS / "jailguard_neural_binary_200k.json").read_text())
    return [
        (np.array(d["w_h1"], np.float32), np.array(d["b_h1"], np.float32)),
        (np.array(d["w_h2"], np.float32), np.array(d["b_h2"], np.float32)),
        (np.array(d["w_out"], np.float32), np.array(d["b_out"], np.float32)),
    ]


class Heads:
    """The exported content.json: per category a score function and three thresholds."""

    def __init__(self, path: Path | None = None):
        self.doc = json.loads((path or MODELS / "content.json").read_text())
        self.jailguard = None
        self.heads = {}
        for cat, h in self.doc["categories"].items():
            layers = [(np.array(l["w"], np.float32), np.array(l["b"], np.float32)) for l in h["layers"]]
            self.heads[cat] = (layers, h)
            if h.get("jailguard_weight", 0) > 0 and self.jailguard is None:
                self.jailguard = load_jailguard()

    def score(self, cat: str, x: np.ndarray) -> np.ndarray:
        layers, h = self.heads[cat]
        p = mlp_forward(layers, x)
        wj = h.get("jailguard_weight", 0.0)
        if wj > 0:
            p = (1 - wj) * p + wj * mlp_forward(self.jailguard, x)
        return p

    def confidence(self, cat: str, s: float) -> str:
        t = self.heads[cat][1]["thresholds"]
        if s >= t["high"]:
            return "HIGH"
        if s >= t["medium"]:
            return "MEDIUM"
        if s >= t["low"]:
            return "LOW"
        return "NONE"
