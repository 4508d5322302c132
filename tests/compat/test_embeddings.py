"""Embeddings through Bedrock InvokeModel, checked against an independent reference.

The reference is a NumPy implementation of the sentence-transformers pipeline of
all-MiniLM-L6-v2 (BERT forward pass with exact erf GELU, mean pooling over the attention mask,
L2 normalisation), reading the same safetensors and tokenizer.json the server serves. The
server runs its own (candle) implementation; cosine similarities of 100 sentence pairs must
agree within 1e-4. Skipped when the model is not installed (`basalt models pull`).
"""
import json
import math
import os
import pathlib
import struct

import pytest

np = pytest.importorskip("numpy")
tokenizers = pytest.importorskip("tokenizers")

MODEL_DIR = pathlib.Path(os.environ.get("BASALT_MODEL_DIR", pathlib.Path.home() / ".cache" / "basalt" / "models")) / "all-minilm-l6-v2"
pytestmark = pytest.mark.skipif(not (MODEL_DIR / "model.safetensors").exists(), reason=f"{MODEL_DIR} not installed (basalt models pull)")

SUBJECTS = ["The cat", "A rocket", "My neighbour", "The committee", "A small boat", "The old library",
            "An engineer", "The river", "A violinist", "The database"]
PREDICATES = ["sleeps on the warm windowsill.", "launched into orbit this morning.",
              "is painting the fence blue.", "approved the annual budget.", "drifted slowly toward the harbour.",
              "opens early on Sundays.", "fixed the broken pipeline overnight.", "floods every spring.",
              "played a sonata by Bach.", "crashed during the backup."]
SENTENCES = [f"{s} {p}" for s in SUBJECTS for p in PREDICATES]  # 100 sentences


def load_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            continue  # e.g. the I64 position_ids buffer
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + start:base + end], dtype=np.float32).reshape(meta["shape"])
    return out


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class Reference:
    def __init__(self):
        self.w = load_safetensors(MODEL_DIR / "model.safetensors")
        self.cfg = json.loads((MODEL_DIR / "config.json").read_text())
        self.tok = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
        self.tok.enable_truncation(256)
        self.tok.no_padding()  # tokenizer.json pads to 128; sentence-transformers masks padding out
        self.prefix = "" if "embeddings.word_embeddings.weight" in self.w else "bert."

    def p(self, name):
        return self.w[self.prefix + name].astype(np.float64)

    def embed(self, text):
        ids = np.array(self.tok.encode(text).ids)
        n = len(ids)
        x = self.p("embeddings.word_embeddings.weight")[ids] + self.p("embeddings.position_embeddings.weight")[:n] \
            + self.p("embeddings.token_type_embeddings.weight")[np.zeros(n, dtype=int)]
        x = layer_norm(x, self.p("embeddings.LayerNorm.weight"), self.p("embeddings.LayerNorm.bias"))
        heads = self.cfg["num_attention_heads"]
        d = x.shape[1] // heads
        for i in range(self.cfg["num_hidden_layers"]):
            L = f"encoder.layer.{i}."
            lin = lambda t, name: t @ self.p(L + name + ".weight").T + self.p(L + name + ".bias")
            q, k, v = (lin(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2) for m in ("query", "key", "value"))
            att = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = layer_norm(lin(ctx, "attention.output.dense") + x, self.p(L + "attention.output.LayerNorm.weight"), self.p(L + "attention.output.LayerNorm.bias"))
            h = gelu(lin(x, "intermediate.dense"))
            x = layer_norm(lin(h, "output.dense") + x, self.p(L + "output.LayerNorm.weight"), self.p(L + "output.LayerNorm.bias"))
        e = x.mean(0)
        return e / np.linalg.norm(e)


@pytest.fixture(scope="module")
def bedrock_rt(make_client):
    return make_client("bedrock-runtime")


def server_embedding(client, text, model="amazon.titan-embed-text-v2:0", **extra):
    body = {"inputText": text, **extra}
    r = client.invoke_model(modelId=model, body=json.dumps(body))
    return json.loads(r["body"].read()), r


def test_cosine_similarity_matches_reference(bedrock_rt):
    ref = Reference()
    ours = [np.array(server_embedding(bedrock_rt, s)[0]["embedding"]) for s in SENTENCES]
    theirs = [ref.embed(s) for s in SENTENCES]
    worst = 0.0
    for i in range(0, 100, 2):
        a, b = ours[i], ours[i + 1]
        ra, rb = theirs[i], theirs[i + 1]
        ours_cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        ref_cos = float(ra @ rb)
        worst = max(worst, abs(ours_cos - ref_cos))
    # Each vector also agrees with the reference direction.
    for a, ra in zip(ours, theirs):
        assert abs(float(a[:len(ra)] @ ra) / float(np.linalg.norm(a)) - 1.0) < 1e-4
    assert worst < 1e-4, worst


def test_titan_dimensions_keep_cosine(bedrock_rt):
    v1, _ = server_embedding(bedrock_rt, "The cat sleeps.", model="amazon.titan-embed-text-v1")
    assert len(v1["embedding"]) == 1536 and v1["inputTextTokenCount"] > 0
    for dims in (256, 512, 1024):
        out, resp = server_embedding(bedrock_rt, "The cat sleeps.", dimensions=dims, normalize=True)
        assert len(out["embedding"]) == dims
        assert abs(np.linalg.norm(out["embedding"]) - 1.0) < 1e-5
        assert int(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"]) == out["inputTextTokenCount"]
    a, _ = server_embedding(bedrock_rt, "A rocket launched into orbit.")
    b, _ = server_embedding(bedrock_rt, "The spacecraft lifted off toward space.")
    c, _ = server_embedding(bedrock_rt, "The cat sleeps on the windowsill.")
    a, b, c = (np.array(x["embedding"]) for x in (a, b, c))
    assert a @ b > a @ c  # related sentences are closer


def test_cohere_embed_batch(bedrock_rt):
    texts = ["first document", "second document", "something else entirely"]
    r = bedrock_rt.invoke_model(modelId="cohere.embed-english-v3", body=json.dumps({"texts": texts, "input_type": "search_document"}))
    out = json.loads(r["body"].read())
    assert len(out["embeddings"]) == 3 and all(len(e) == 1024 for e in out["embeddings"])
    assert out["texts"] == texts
