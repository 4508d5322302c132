"""The OpenAI-compatible facade over the same local models (`/v1/...`), driven with plain HTTP
as OpenAI clients send it. Skipped when the default models are not installed."""
import json
import os
import pathlib
import urllib.error
import urllib.request

import pytest

MODEL_DIR = pathlib.Path(os.environ.get("BASALT_MODEL_DIR", pathlib.Path.home() / ".cache" / "basalt" / "models"))
pytestmark = pytest.mark.skipif(not (MODEL_DIR / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").exists(),
                                reason="default chat model not installed (basalt models pull)")


def post(endpoint, path, body, raw=False):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "authorization": "Bearer sk-local"})
    resp = urllib.request.urlopen(req, timeout=300)
    data = resp.read()
    return (resp, data) if raw else json.loads(data)


def test_models_list(endpoint):
    out = json.loads(urllib.request.urlopen(endpoint + "/v1/models", timeout=10).read())
    assert out["object"] == "list"
    assert {"qwen2.5-coder-0.5b-instruct", "all-minilm-l6-v2"} <= {m["id"] for m in out["data"]}


def test_chat_completion(endpoint):
    out = post(endpoint, "/v1/chat/completions", {
        "model": "qwen2.5-coder-0.5b-instruct", "temperature": 0, "max_tokens": 16,
        "messages": [{"role": "user", "content": "What is the capital of France? One word."}]})
    assert out["object"] == "chat.completion"
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and "Paris" in msg["content"]
    assert out["choices"][0]["finish_reason"] == "stop"
    u = out["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["completion_tokens"] > 0


def test_chat_completion_stream_matches(endpoint):
    body = {"model": "m", "temperature": 0, "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of Italy? One word."}]}
    whole = post(endpoint, "/v1/chat/completions", body)["choices"][0]["message"]["content"]
    resp, data = post(endpoint, "/v1/chat/completions", {**body, "stream": True, "stream_options": {"include_usage": True}}, raw=True)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [l[len("data: "):] for l in data.decode().split("\n") if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c.get("choices", []))
    assert text == whole and "Rome" in text
    assert any(c.get("usage", {}).get("completion_tokens", 0) > 0 for c in chunks)


def test_tool_call(endpoint):
    out = post(endpoint, "/v1/chat/completions", {
        "model": "m", "temperature": 0, "max_tokens": 60,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required"})
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert "Paris" in json.loads(call["function"]["arguments"])["city"]


def test_embeddings(endpoint):
    out = post(endpoint, "/v1/embeddings", {"model": "all-minilm-l6-v2", "input": ["a cat", "a kitten", "tax law"]})
    vecs = [d["embedding"] for d in out["data"]]
    assert [d["index"] for d in out["data"]] == [0, 1, 2] and all(len(v) == 384 for v in vecs)
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert dot(vecs[0], vecs[1]) > dot(vecs[0], vecs[2])
    assert out["usage"]["prompt_tokens"] > 0


def test_errors_are_openai_shaped(endpoint):
    for path, body, status in [("/v1/chat/completions", {"messages": []}, 400), ("/v1/nope", {}, 404),
                               ("/v1/embeddings", {"input": 5}, 400)]:
        with pytest.raises(urllib.error.HTTPError) as e:
            post(endpoint, path, body)
        assert e.value.code == status
        err = json.loads(e.value.read())["error"]
        assert err["message"] and err["type"]


def _post_guarded(endpoint, body, gid, version="DRAFT"):
    req = urllib.request.Request(endpoint + "/v1/chat/completions", data=json.dumps(body).encode(), headers={
        "content-type": "application/json", "x-basalt-guardrail-identifier": gid,
        "x-basalt-guardrail-version": version})
    resp = urllib.request.urlopen(req, timeout=300)
    return resp, resp.read()


def test_guardrail_header(endpoint, make_client):
    bedrock = make_client("bedrock")
    g = bedrock.create_guardrail(
        name="openai-facade-guard", blockedInputMessaging="no input", blockedOutputsMessaging="no output",
        wordPolicyConfig={"wordsConfig": [{"text": "pineapple"}, {"text": "Paris", "inputEnabled": False}]})
    gid = g["guardrailId"]
    try:
        body = {"model": "m", "temperature": 0, "max_tokens": 16,
                "messages": [{"role": "user", "content": "Tell me about a pineapple."}]}
        resp, data = _post_guarded(endpoint, body, gid)
        out = json.loads(data)
        assert out["choices"][0]["message"]["content"] == "no input"
        assert out["choices"][0]["finish_reason"] == "content_filter"
        assert resp.headers["x-basalt-guardrail-action"] == "INTERVENED"
        assert out["usage"]["completion_tokens"] == 0
        # The answer is judged too, streamed or not.
        body["messages"][0]["content"] = "What is the capital of France? One word."
        out = json.loads(_post_guarded(endpoint, body, gid)[1])
        assert out["choices"][0]["message"]["content"] == "no output"
        resp, data = _post_guarded(endpoint, {**body, "stream": True}, gid)
        events = [l[len("data: "):] for l in data.decode().split("\n") if l.startswith("data: ")]
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        assert text == "no output" and resp.headers["x-basalt-guardrail-action"] == "INTERVENED"
        # An unknown guardrail is an error in OpenAI's shape.
        with pytest.raises(urllib.error.HTTPError) as e:
            _post_guarded(endpoint, body, "nosuchguardrail")
        assert e.value.code == 404 and "error" in json.loads(e.value.read())
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)
