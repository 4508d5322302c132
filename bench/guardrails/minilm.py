"""all-MiniLM-L6-v2 sentence embeddings in numpy, as Basalt computes them.

BERT (6 layers, 384 wide, 12 heads, exact-erf GELU, LayerNorm eps 1e-12) read from the model
folder's safetensors (parsed here: numpy and tokenizers are the only packages needed), tokenized with `tokenizers` from tokenizer.json (truncated at
sentence_bert_config.json's max_seq_length, 256, no padding), mean pooling over the tokens,
L2 normalisation. Used to train and evaluate the guardrail heads without compiling Basalt.

    .venv/bin/python bench/guardrails/minilm.py          # checks the published reference pair
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

MODEL_DIR = Path(
    os.environ.get(
        "BASALT_MINILM_DIR",
        Path.home() / ".cache/basalt/models/all-minilm-l6-v2",
    )
)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, float32's level)."""
    x = x.astype(np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU with the exact erf, as BERT's "gelu" activation."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors format read directly (no package): a little-endian u64 header length,
    a JSON header of name -> dtype, shape, data_offsets, then the raw tensors."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dt = dtypes[meta["dtype"]]
        if dt is None:  # bf16: the high half of an f32
            u = np.frombuffer(body[start:end], np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(body[start:end], dt)
        out[name] = arr.reshape(meta["shape"]).astype(np.float32) if dt is not np.int64 else arr.reshape(meta["shape"])
    return out


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class MiniLM:
    def __init__(self, model_dir: Path = MODEL_DIR):
        from tokenizers import Tokenizer

        self.cfg = json.loads((model_dir / "config.json").read_text())
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_tokens = min(st["max_seq_length"], self.cfg["max_position_embeddings"])
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.enable_truncation(self.max_tokens)
        self.tok.no_padding()
        self.w = read_safetensors(model_dir / "model.safetensors")
        self.heads = self.cfg["num_attention_heads"]
        self.eps = self.cfg["layer_norm_eps"]

    def _encode_one(self, ids: list[int]) -> np.ndarray:
        w, eps = self.w, self.eps
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        d = x.shape[1]
        hd = d // self.heads
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(name, t):
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin("attention.self.query", x).reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, self.heads, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            a = e / e.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, d)
            x = _layer_norm(
                lin("attention.output.dense", ctx) + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            h = _gelu(lin("intermediate.dense", x)).astype(np.float32)
            x = _layer_norm(
                lin("output.dense", h) + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                eps,
            )
        pooled = x.mean(0)
        return (pooled / max(np.linalg.norm(pooled), 1e-12)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        encs = self.tok.encode_batch(list(texts))
        return np.stack([self._encode_one(e.ids) for e in encs]) if encs else np.zeros((0, 384), np.float32)


_SHARED: MiniLM | None = None


def shared() -> MiniLM:
    global _SHARED
    if _SHARED is None:
        _SHARED = MiniLM()
    return _SHARED


if __name__ == "__main__":
    m = shared()
    a, b = m.embed(["A man is eating food.", "A man is eating a piece of bread."])
    cos = float(a @ b)
    print(f"cos = {cos:.4f} (published reference 0.7553)")
    sys.exit(0 if abs(cos - 0.7553) < 5e-4 else 1)
