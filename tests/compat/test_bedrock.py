"""Bedrock runtime against the real local model (Qwen2.5-Coder-0.5B via llama.cpp).

Every generation is greedy (temperature 0) and short (max_tokens <= 100): the model is small
and runs on a few CPU cores, so each call takes seconds. Factual checks use questions a 0.5B
model answers reliably ("capital of France"); everything else asserts protocol behaviour
(stop reasons, token accounting, event order, errors) that does not depend on model quality.

Calls that several tests share are made once in module-scoped fixtures; those fixtures check
their own responses' shapes (the autouse shape fixture only sees calls made inside a test).
"""
from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from shapecheck import check_parsed

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
AV = "bedrock-2023-05-31"
CAPITAL_Q = "What is the capital of France? Answer in one word."
WEATHER_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "inputSchema": {"json": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }},
    }
}
TIME_TOOL = {
    "toolSpec": {
        "name": "get_time",
        "description": "Get the current local time in a timezone.",
        "inputSchema": {"json": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        }},
    }
}
GREEDY = {"temperature": 0}


def _model_dir() -> Path:
    d = os.environ.get("BASALT_MODEL_DIR")
    return Path(d) if d else Path.home() / ".cache" / "basalt" / "models"


pytestmark = pytest.mark.skipif(
    not os.environ.get("BASALT_ENDPOINT") and not any(_model_dir().glob("*.gguf")),
    reason=f"no local chat model in {_model_dir()} (run `basalt models pull`)",
)


# ---------------------------------------------------------------------------------------
# helpers and fixtures

@pytest.fixture(scope="module")
def brt(make_client):
    # Generation is slow on CPU (and slower still while something else compiles): long reads.
    return make_client("bedrock-runtime", read_timeout=300)


@pytest.fixture(scope="module")
def brt_stream(make_client):
    """For the event-stream operations. The generic validator reports their EventStream member
    as "expected structure (dict), got EventStream", so these responses are checked by
    `streamed()` instead: every event against the stream's union shape."""
    return make_client("bedrock-runtime", read_timeout=300, check=False)


def streamed(client, operation, resp):
    """Consumes an event-stream response: the events, each checked against botocore's shape."""
    shape = client.meta.service_model.operation_model(operation).output_shape
    member = next(n for n, m in shape.members.items() if m.serialization.get("eventstream"))
    problems = []
    assert resp["ResponseMetadata"].get("RequestId"), "no request id"
    for k, v in resp.items():
        if k not in (member, "ResponseMetadata"):
            check_parsed(shape.members[k], v, k, problems) if k in shape.members else problems.append(f"unknown {k}")
    events = []
    for i, ev in enumerate(resp[member]):
        check_parsed(shape.members[member], ev, f"{member}[{i}]", problems)
        events.append(ev)
    assert not problems, f"{operation} violates botocore's shapes:\n  " + "\n  ".join(problems)
    return events


@pytest.fixture(scope="module")
def checked(shape_checker):
    """For module fixtures: call fn, then fail if its responses violated botocore's shapes."""
    def run(fn):
        shape_checker.take()
        out = fn()
        v = shape_checker.take()
        assert not v, "responses that violate botocore's shapes:\n  " + "\n  ".join(v)
        return out
    return run


def anthropic_body(content, max_tokens=30, **kw):
    if isinstance(content, str):
        messages = [{"role": "user", "content": content}]
    else:
        messages = content
    return {"anthropic_version": AV, "max_tokens": max_tokens, "messages": messages, **GREEDY, **kw}


class Invocation:
    def __init__(self, resp, elapsed_s):
        self.raw = resp
        self.body = json.loads(resp["body"].read())
        self.headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.content_type = resp["contentType"]
        self.elapsed_ms = elapsed_s * 1000

    @property
    def text(self):
        return "".join(b["text"] for b in self.body["content"] if b["type"] == "text")


def invoke(brt, body, model=MODEL) -> Invocation:
    t = time.monotonic()
    resp = brt.invoke_model(modelId=model, body=json.dumps(body),
                            contentType="application/json", accept="application/json")
    return Invocation(resp, time.monotonic() - t)


def validation_error(excinfo):
    err = excinfo.value.response
    assert err["Error"]["Code"] == "ValidationException", err["Error"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err["Error"]["Message"]


def converse_text(resp):
    return "".join(b.get("text", "") for b in resp["output"]["message"]["content"])


def stream_chunks(client, resp):
    """InvokeModelWithResponseStream events -> decoded chunk JSON (any other event fails)."""
    out = []
    for event in streamed(client, "InvokeModelWithResponseStream", resp):
        assert set(event) == {"chunk"}, f"unexpected stream event {event}"
        out.append(json.loads(event["chunk"]["bytes"]))
    return out


@pytest.fixture(scope="module")
def paris(brt, checked):
    """InvokeModel (Anthropic Messages) with the capital-of-France question."""
    return checked(lambda: invoke(brt, anthropic_body(CAPITAL_Q)))


@pytest.fixture(scope="module")
def weather_call(brt, checked):
    """Converse with the weather tool: the first leg of the tool round trip."""
    messages = [{"role": "user", "content": [{"text": "What is the weather in Paris?"}]}]
    resp = checked(lambda: brt.converse(
        modelId=MODEL, messages=messages, toolConfig={"tools": [WEATHER_TOOL]},
        inferenceConfig={"maxTokens": 100, **GREEDY},
    ))
    return messages, resp


def metric_value(endpoint, name, **labels):
    with urllib.request.urlopen(endpoint + "/_basalt/metrics", timeout=5) as r:
        text = r.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


# ---------------------------------------------------------------------------------------
# InvokeModel, Anthropic Messages

def test_anthropic_factual_answer_usage_and_stop_reason(paris):
    b = paris.body
    assert paris.content_type == "application/json"
    assert b["type"] == "message" and b["role"] == "assistant"
    assert b["id"].startswith("msg_")
    assert "Paris" in paris.text
    assert b["stop_reason"] == "end_turn"
    assert b["stop_sequence"] is None
    assert b["usage"]["input_tokens"] > 0
    assert b["usage"]["output_tokens"] > 0


def test_anthropic_headers_match_usage(paris):
    h = paris.headers
    u = paris.body["usage"]
    assert int(h["x-amzn-bedrock-input-token-count"]) == u["input_tokens"]
    assert int(h["x-amzn-bedrock-output-token-count"]) == u["output_tokens"]
    latency = h["x-amzn-bedrock-invocation-latency"]
    assert re.fullmatch(r"\d+", latency), latency
    # the server's own measurement cannot exceed what the client waited (small clock slack)
    assert 0 <= int(latency) <= paris.elapsed_ms + 50


def test_anthropic_max_tokens_stops_generation(brt):
    inv = invoke(brt, anthropic_body("Count from 1 to 20 separated by spaces.", max_tokens=3))
    assert inv.body["stop_reason"] == "max_tokens"
    assert inv.body["stop_sequence"] is None
    assert inv.body["usage"]["output_tokens"] == 3
    assert int(inv.headers["x-amzn-bedrock-output-token-count"]) == 3
    assert inv.text.strip(), "three tokens of a count should not be empty"


def test_anthropic_stop_sequence(brt):
    inv = invoke(brt, anthropic_body("Count from 1 to 10 separated by commas.", max_tokens=60,
                                     stop_sequences=["5"]))
    b = inv.body
    assert b["stop_reason"] == "stop_sequence", b
    assert b["stop_sequence"] == "5"
    assert "5" not in inv.text
    assert "4" in inv.text, f"generation stopped before reaching the sequence: {inv.text!r}"
    assert 0 < b["usage"]["output_tokens"] < 60


def test_anthropic_greedy_is_deterministic(brt, paris):
    again = invoke(brt, anthropic_body(CAPITAL_Q))
    assert again.text == paris.text
    assert again.body["usage"] == paris.body["usage"]
    assert again.body["id"] != paris.body["id"]


def test_anthropic_system_prompt(brt):
    inv = invoke(brt, anthropic_body("Hello", system="Reply with exactly the word BANANA and nothing else."))
    assert "BANANA" in inv.text.upper(), inv.text


def test_anthropic_missing_anthropic_version(brt):
    body = anthropic_body(CAPITAL_Q)
    del body["anthropic_version"]
    with pytest.raises(ClientError) as e:
        invoke(brt, body)
    assert "anthropic_version" in validation_error(e)


def test_anthropic_missing_max_tokens(brt):
    body = anthropic_body(CAPITAL_Q)
    del body["max_tokens"]
    with pytest.raises(ClientError) as e:
        invoke(brt, body)
    assert "max_tokens" in validation_error(e)


def test_anthropic_malformed_json_body(brt):
    with pytest.raises(ClientError) as e:
        brt.invoke_model(modelId=MODEL, body=b"{not json", contentType="application/json")
    assert "Malformed input request" in validation_error(e)


@pytest.mark.parametrize("change, needle", [
    ({"temperature": 1.5}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"bogus_field": 1}, "bogus_field"),
    ({"anthropic_version": "bedrock-2099-01-01"}, "bedrock-2099-01-01"),
    ({"messages": []}, "message"),
])
def test_anthropic_invalid_parameters(brt, change, needle):
    with pytest.raises(ClientError) as e:
        invoke(brt, {**anthropic_body(CAPITAL_Q), **change})
    assert needle in validation_error(e)


def test_anthropic_assistant_prefill_is_continued(brt):
    # Anthropic Messages: when the last message is the assistant's, the model continues that
    # text and the response holds only the continuation.
    prefill = "The capital of France is"
    inv = invoke(brt, anthropic_body([
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": prefill},
    ], max_tokens=10))
    assert not inv.text.strip().startswith(prefill), inv.text
    assert "Paris" in inv.text


def test_anthropic_tool_use(brt):
    body = anthropic_body("What is the weather in Paris?", max_tokens=100, tools=[{
        "name": "get_weather", "description": "Get the current weather for a city.",
        "input_schema": WEATHER_TOOL["toolSpec"]["inputSchema"]["json"],
    }])
    b = invoke(brt, body).body
    assert b["stop_reason"] == "tool_use"
    uses = [c for c in b["content"] if c["type"] == "tool_use"]
    assert len(uses) == 1
    assert uses[0]["name"] == "get_weather" and uses[0]["id"]
    assert "Paris" in uses[0]["input"]["city"]


def test_concurrent_greedy_requests_agree(brt, paris):
    # continuous batching must not change what a greedy request generates
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as ex:
        texts = list(ex.map(lambda _: invoke(brt, anthropic_body(CAPITAL_Q)).text, range(4)))
    assert texts == [paris.text] * 4


# Ids of a known provider with a plausible family name (anthropic.claude-<anything>) are accepted on
# purpose (any newer model id works against the local model), so only impossible ids are tested.
@pytest.mark.parametrize("model", ["foo.bar", "anthropic.gpt-4", "arn:aws:bedrock:us-east-1::bucket/x"])
def test_invalid_model_id(brt, model):
    with pytest.raises(ClientError) as e:
        invoke(brt, anthropic_body(CAPITAL_Q), model=model)
    msg = validation_error(e)
    if model.startswith("arn:"):  # fails the modelId pattern before any lookup
        assert "failed to satisfy constraint" in msg and "'modelId'" in msg, msg
    else:
        assert msg == "The provided model identifier is invalid."


@pytest.mark.parametrize("model", [
    "us.anthropic.claude-3-haiku-20240307-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
])
def test_cross_region_ids_and_arns(brt, paris, model):
    inv = invoke(brt, anthropic_body(CAPITAL_Q), model=model)
    assert inv.text == paris.text  # same local model, same greedy answer
    assert inv.body["usage"] == paris.body["usage"]


# ---------------------------------------------------------------------------------------
# InvokeModel, other providers' bodies

def test_titan_text(brt):
    inv = invoke(brt, {"inputText": f"User: {CAPITAL_Q}\nBot:",
                       "textGenerationConfig": {"maxTokenCount": 20, **GREEDY}},
                 model="amazon.titan-text-express-v1")
    b = inv.body
    assert b["inputTextTokenCount"] > 0
    assert len(b["results"]) == 1
    r = b["results"][0]
    assert "Paris" in r["outputText"]
    assert r["tokenCount"] > 0
    assert r["completionReason"] == "FINISH"
    assert int(inv.headers["x-amzn-bedrock-input-token-count"]) == b["inputTextTokenCount"]
    assert int(inv.headers["x-amzn-bedrock-output-token-count"]) == r["tokenCount"]


def test_titan_max_token_count(brt):
    inv = invoke(brt, {"inputText": "User: Count from 1 to 20 separated by spaces.\nBot:",
                       "textGenerationConfig": {"maxTokenCount": 4, **GREEDY}},
                 model="amazon.titan-text-lite-v1")
    r = inv.body["results"][0]
    assert r["tokenCount"] == 4
    assert r["completionReason"] == "LENGTH"


def test_nova(brt):
    inv = invoke(brt, {"messages": [{"role": "user", "content": [{"text": CAPITAL_Q}]}],
                       "inferenceConfig": {"maxTokens": 20, **GREEDY}},
                 model="amazon.nova-micro-v1:0")
    b = inv.body
    assert b["output"]["message"]["role"] == "assistant"
    assert "Paris" in b["output"]["message"]["content"][0]["text"]
    assert b["stopReason"] == "end_turn"
    u = b["usage"]
    assert u["inputTokens"] > 0 and u["outputTokens"] > 0
    assert u["totalTokens"] == u["inputTokens"] + u["outputTokens"]


def test_llama_chat_template(brt):
    prompt = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
              f"{CAPITAL_Q}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    inv = invoke(brt, {"prompt": prompt, "max_gen_len": 20, **GREEDY},
                 model="meta.llama3-8b-instruct-v1:0")
    b = inv.body
    assert "Paris" in b["generation"]
    assert b["prompt_token_count"] > 0
    assert b["generation_token_count"] > 0
    assert b["stop_reason"] == "stop"


def test_llama_raw_prompt_length(brt):
    inv = invoke(brt, {"prompt": "The capital of France is", "max_gen_len": 5, **GREEDY},
                 model="meta.llama3-1-8b-instruct-v1:0")
    b = inv.body
    assert b["generation_token_count"] == 5
    assert b["stop_reason"] == "length"
    assert "Paris" in b["generation"]  # a raw prompt is continued as text


def test_mistral(brt):
    inv = invoke(brt, {"prompt": f"<s>[INST] {CAPITAL_Q} [/INST]", "max_tokens": 20, **GREEDY},
                 model="mistral.mistral-7b-instruct-v0:2")
    outs = inv.body["outputs"]
    assert len(outs) == 1
    assert "Paris" in outs[0]["text"]
    assert outs[0]["stop_reason"] == "stop"


def test_cohere_command_r(brt):
    inv = invoke(brt, {"message": CAPITAL_Q, "max_tokens": 20, **GREEDY},
                 model="cohere.command-r-v1:0")
    b = inv.body
    assert "Paris" in b["text"]
    assert b["finish_reason"] == "COMPLETE"


# ---------------------------------------------------------------------------------------
# InvokeModelWithResponseStream

def test_anthropic_stream_sequence_and_text(brt_stream, paris):
    resp = brt_stream.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(anthropic_body(CAPITAL_Q)))
    assert resp["contentType"] == "application/json"
    chunks = stream_chunks(brt_stream, resp)
    types = [c["type"] for c in chunks]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    n_deltas = types.count("content_block_delta")
    assert n_deltas >= 1
    assert types[2:2 + n_deltas] == ["content_block_delta"] * n_deltas
    assert types[2 + n_deltas:] == ["content_block_stop", "message_delta", "message_stop"]

    start = chunks[0]["message"]
    assert start["role"] == "assistant" and start["content"] == []
    assert start["usage"]["input_tokens"] == paris.body["usage"]["input_tokens"]
    assert chunks[1]["index"] == 0 and chunks[1]["content_block"]["type"] == "text"
    deltas = [c for c in chunks if c["type"] == "content_block_delta"]
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    assert "".join(d["delta"]["text"] for d in deltas) == paris.text

    md = chunks[-2]
    assert md["delta"]["stop_reason"] == "end_turn"
    assert md["usage"]["output_tokens"] == paris.body["usage"]["output_tokens"]

    m = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert m["inputTokenCount"] == paris.body["usage"]["input_tokens"]
    assert m["outputTokenCount"] == paris.body["usage"]["output_tokens"]
    assert isinstance(m["invocationLatency"], int) and isinstance(m["firstByteLatency"], int)
    assert 0 <= m["firstByteLatency"] <= m["invocationLatency"]


def test_anthropic_stream_max_tokens(brt_stream):
    resp = brt_stream.invoke_model_with_response_stream(
        modelId=MODEL, body=json.dumps(anthropic_body("Count from 1 to 20 separated by spaces.", max_tokens=3)))
    chunks = stream_chunks(brt_stream, resp)
    md = [c for c in chunks if c["type"] == "message_delta"]
    assert len(md) == 1
    assert md[0]["delta"]["stop_reason"] == "max_tokens"
    assert md[0]["usage"]["output_tokens"] == 3
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 3


def test_anthropic_stream_stop_sequence(brt_stream):
    chunks = stream_chunks(brt_stream, brt_stream.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(
        anthropic_body("Count from 1 to 10 separated by commas.", max_tokens=60, stop_sequences=["5"]))))
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    md = next(c for c in chunks if c["type"] == "message_delta")
    assert md["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "5"}
    assert "5" not in text and "4" in text, text


def test_titan_stream(brt, brt_stream):
    body = {"inputText": f"User: {CAPITAL_Q}\nBot:", "textGenerationConfig": {"maxTokenCount": 20, **GREEDY}}
    whole = invoke(brt, body, model="amazon.titan-text-express-v1").body
    chunks = stream_chunks(brt_stream, brt_stream.invoke_model_with_response_stream(
        modelId="amazon.titan-text-express-v1", body=json.dumps(body)))
    assert "".join(c["outputText"] for c in chunks) == whole["results"][0]["outputText"]
    assert chunks[0]["inputTextTokenCount"] == whole["inputTextTokenCount"]
    assert chunks[-1]["completionReason"] == "FINISH"
    m = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert m["outputTokenCount"] == whole["results"][0]["tokenCount"]


def test_stream_invalid_model(brt):
    with pytest.raises(ClientError) as e:
        brt.invoke_model_with_response_stream(modelId="foo.bar", body=json.dumps(anthropic_body(CAPITAL_Q)))
    assert validation_error(e) == "The provided model identifier is invalid."


# ---------------------------------------------------------------------------------------
# Converse

def test_converse_answer_usage_metrics(brt):
    resp = brt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": CAPITAL_Q}]}],
                        inferenceConfig={"maxTokens": 20, **GREEDY})
    assert resp["output"]["message"]["role"] == "assistant"
    assert "Paris" in converse_text(resp)
    assert resp["stopReason"] == "end_turn"
    u = resp["usage"]
    assert u["inputTokens"] > 0 and u["outputTokens"] > 0
    assert u["totalTokens"] == u["inputTokens"] + u["outputTokens"]
    assert isinstance(resp["metrics"]["latencyMs"], int) and resp["metrics"]["latencyMs"] >= 0


def test_converse_max_tokens(brt):
    resp = brt.converse(modelId=MODEL,
                        messages=[{"role": "user", "content": [{"text": "Count from 1 to 20 separated by spaces."}]}],
                        inferenceConfig={"maxTokens": 3, **GREEDY})
    assert resp["stopReason"] == "max_tokens"
    assert resp["usage"]["outputTokens"] == 3


def test_converse_stop_sequence(brt):
    resp = brt.converse(modelId=MODEL,
                        messages=[{"role": "user", "content": [{"text": "Count from 1 to 10 separated by commas."}]}],
                        inferenceConfig={"maxTokens": 60, "stopSequences": ["5"], **GREEDY})
    assert resp["stopReason"] == "stop_sequence"
    text = converse_text(resp)
    assert "5" not in text and "4" in text, text


def test_converse_system_prompt(brt):
    messages = [{"role": "user", "content": [{"text": "Hello"}]}]
    resp = brt.converse(modelId=MODEL, messages=messages,
                        system=[{"text": "Reply with exactly the word BANANA and nothing else."}],
                        inferenceConfig={"maxTokens": 20, **GREEDY})
    assert "BANANA" in converse_text(resp).upper()


def test_converse_multi_turn(brt):
    messages = [
        {"role": "user", "content": [{"text": "My name is Zorblax."}]},
        {"role": "assistant", "content": [{"text": "Nice to meet you, Zorblax!"}]},
        {"role": "user", "content": [{"text": "What is my name? Answer with the name only."}]},
    ]
    resp = brt.converse(modelId=MODEL, messages=messages, inferenceConfig={"maxTokens": 20, **GREEDY})
    assert "Zorblax" in converse_text(resp)
    assert resp["stopReason"] == "end_turn"


DOC = b"Basalt release notes. The code name of release 7 is Zorblax Peak. It ships on a Tuesday."


def test_converse_reads_text_documents(brt):
    resp = brt.converse(modelId=MODEL, inferenceConfig={"maxTokens": 40, **GREEDY}, messages=[{
        "role": "user", "content": [
            {"text": "What is the code name of release 7? Answer with the name only."},
            {"document": {"format": "txt", "name": "release notes", "source": {"bytes": DOC}}},
        ]}])
    assert "Zorblax" in converse_text(resp)
    # The document's tokens are counted as input.
    plain = brt.converse(modelId=MODEL, inferenceConfig={"maxTokens": 1, **GREEDY},
                         messages=[{"role": "user", "content": [{"text": "What is the code name of release 7? Answer with the name only."}]}])
    assert resp["usage"]["inputTokens"] > plain["usage"]["inputTokens"] + 10


def test_nova_invoke_reads_documents(brt):
    inv = invoke(brt, {"messages": [{"role": "user", "content": [
        {"document": {"format": "md", "name": "notes", "source": {"bytes": base64.b64encode(DOC).decode()}}},
        {"text": "What is the code name of release 7? Answer with the name only."}]}],
        "inferenceConfig": {"maxTokens": 40, **GREEDY}}, model="amazon.nova-micro-v1:0")
    assert "Zorblax" in inv.body["output"]["message"]["content"][0]["text"]


def test_anthropic_invoke_reads_documents(brt):
    inv = invoke(brt, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 40, "temperature": 0,
                       "messages": [{"role": "user", "content": [
                           {"type": "document", "title": "Release notes",
                            "source": {"type": "text", "media_type": "text/plain", "data": DOC.decode()}},
                           {"type": "text", "text": "What is the code name of release 7? Answer with the name only."}]}]})
    assert "Zorblax" in inv.body["content"][0]["text"]
    with pytest.raises(ClientError) as e:
        invoke(brt, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]})
    assert e.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("doc,message", [
    ({"format": "pdf", "name": "a", "source": {"bytes": b"%PDF-1.4"}}, "pdf documents are not supported"),
    ({"format": "txt", "name": "bad/name.txt", "source": {"bytes": b"x"}}, "document file name"),
    ({"format": "txt", "name": "two  spaces", "source": {"bytes": b"x"}}, "document file name"),
    ({"format": "txt", "name": "latin1", "source": {"bytes": b"caf\xe9"}}, "not valid UTF-8"),
])
def test_converse_document_errors(brt, doc, message):
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}, {"document": doc}]}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert message in e.value.response["Error"]["Message"]


def test_converse_invalid_model(brt):
    with pytest.raises(ClientError) as e:
        brt.converse(modelId="foo.bar", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert validation_error(e) == "The provided model identifier is invalid."


# ---------------------------------------------------------------------------------------
# Request validation: Bedrock's ValidationExceptions, answered before any model runs

def _user(text):
    return {"role": "user", "content": [{"text": text}]}


def _assistant(*blocks):
    return {"role": "assistant", "content": list(blocks)}


def _tool_use(tid):
    return {"toolUse": {"toolUseId": tid, "name": "get_weather", "input": {"city": "Paris"}}}


def _tool_result(tid):
    return {"toolResult": {"toolUseId": tid, "content": [{"text": "sunny"}]}}


_START = ("A conversation must start with a user message. "
          "Try again with a conversation that starts with a user message.")
_ALTERNATE = ("A conversation must alternate between user and assistant roles. "
              "Make sure the conversation alternates between user and assistant roles and try again.")


@pytest.mark.parametrize("messages, message", [
    ([], _START),
    ([_assistant({"text": "Hi"}), _user("Hello")], _START),
    ([_user("a"), _user("b")], _ALTERNATE),
    ([_user("a"), _assistant({"text": "b"}), _assistant({"text": "c"})], _ALTERNATE),
    ([_user("")], "The text field in the ContentBlock object at messages.0.content.0 is blank. "
                  "Add text to the text field, and try again."),
    ([_user("a"), {"role": "assistant", "content": []}],
     "The content field in the Message object at messages.1 is empty. "
     "Add a ContentBlock object to the content field and try again."),
    ([_user("a"), _assistant({"text": "b"}), {"role": "user", "content": [_tool_result("t1")]}],
     "The number of toolResult blocks at messages.2.content exceeds the number of toolUse blocks of previous turn."),
    ([_user("a"), _assistant(_tool_use("t1"), _tool_use("t2")), {"role": "user", "content": [_tool_result("t1")]}],
     "Expected toolResult blocks at messages.2.content for the following Ids: t2"),
    ([_user("a"), _assistant(_tool_use("t1")),
      {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [], "status": "error"}}]}],
     "The content field at messages.2.content.0.toolResult cannot be empty when status value is error."),
], ids=["empty", "assistant-first", "two-users", "two-assistants", "blank-text", "empty-content",
        "orphan-result", "missing-result", "empty-error-result"])
def test_converse_conversation_rules(brt, messages, message):
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=messages, toolConfig={"tools": [WEATHER_TOOL]},
                     inferenceConfig={"maxTokens": 10, **GREEDY})
    assert validation_error(e) == message


def test_converse_max_tokens_over_the_model_limit(brt):
    # Claude 3 Haiku writes at most 4096 tokens.
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=[_user("hi")], inferenceConfig={"maxTokens": 4097})
    assert validation_error(e) == ("The maximum tokens you requested exceeds the model limit of 4096. "
                                   "Try again with a maximum tokens value that is lower than 4096.")


def test_converse_document_limits(brt):
    doc = lambda name: {"document": {"format": "txt", "name": name, "source": {"bytes": b"x"}}}
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=[{"role": "user", "content": [
            *(doc(f"d{i}") for i in range(6)), {"text": "summarize"}]}])
    assert validation_error(e) == "You can't include more than 5 documents in a request."
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=[{"role": "user", "content": [
            doc("notes"), doc("notes"), {"text": "summarize"}]}])
    assert validation_error(e) == ("Messages can't contain duplicate document names. "
                                   "Rename the document and retry your request.")


@pytest.mark.parametrize("messages, message", [
    ([{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Hello"}],
     'messages: first message must use the "user" role'),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
     'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row'),
    ([{"role": "user", "content": []}],
     "messages.0: all messages must have non-empty content except for the optional final assistant message"),
    ([{"role": "user", "content": [{"type": "text", "text": ""}]}],
     "messages: text content blocks must be non-empty"),
    ([{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "It is "}],
     "messages: final assistant content cannot end with trailing whitespace"),
    ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}],
     "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
     "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."),
], ids=["assistant-first", "two-users", "empty-content", "empty-text", "trailing-space", "orphan-result"])
def test_anthropic_conversation_rules(brt, messages, message):
    with pytest.raises(ClientError) as e:
        invoke(brt, anthropic_body(messages))
    assert validation_error(e) == message


def test_anthropic_tool_result_round_trip(brt):
    # The Anthropic Messages leg of the tool round trip: the result goes back as a tool_result
    # (string content) and the model answers from it instead of calling the tool again.
    tools = [{"name": "get_weather", "description": "Get the current weather for a city.",
              "input_schema": WEATHER_TOOL["toolSpec"]["inputSchema"]["json"]}]
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = invoke(brt, anthropic_body(question, max_tokens=100, tools=tools)).body
    assert first["stop_reason"] == "tool_use", first
    use = next(c for c in first["content"] if c["type"] == "tool_use")
    follow = question + [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                      "content": json.dumps({"temperature_c": 23, "sky": "sunny"})}]},
    ]
    second = invoke(brt, anthropic_body(follow, max_tokens=100, tools=tools)).body
    assert second["stop_reason"] == "end_turn", second
    assert all(c["type"] == "text" for c in second["content"]), second
    answer = "".join(c["text"] for c in second["content"])
    assert "23" in answer or "sunny" in answer.lower(), answer


# ---------------------------------------------------------------------------------------
# Converse tool use

def test_converse_tool_use_round_trip(brt, weather_call):
    messages, resp = weather_call
    assert resp["stopReason"] == "tool_use"
    msg = resp["output"]["message"]
    assert msg["role"] == "assistant"
    uses = [b["toolUse"] for b in msg["content"] if "toolUse" in b]
    assert len(uses) == 1, msg
    tu = uses[0]
    assert tu["name"] == "get_weather"
    assert tu["toolUseId"]
    assert isinstance(tu["input"], dict) and set(tu["input"]) == {"city"}
    assert "Paris" in tu["input"]["city"]

    follow = messages + [
        msg,
        {"role": "user", "content": [{"toolResult": {
            "toolUseId": tu["toolUseId"],
            "content": [{"json": {"temperature_c": 23, "sky": "sunny"}}],
        }}]},
    ]
    resp2 = brt.converse(modelId=MODEL, messages=follow, toolConfig={"tools": [WEATHER_TOOL]},
                         inferenceConfig={"maxTokens": 100, **GREEDY})
    assert resp2["stopReason"] == "end_turn", resp2["output"]
    assert not any("toolUse" in b for b in resp2["output"]["message"]["content"])
    answer = converse_text(resp2)
    assert "23" in answer or "sunny" in answer.lower(), answer


def test_converse_tool_choice_any(brt):
    resp = brt.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hello there."}]}],
        toolConfig={"tools": [WEATHER_TOOL], "toolChoice": {"any": {}}},
        inferenceConfig={"maxTokens": 100, **GREEDY},
    )
    assert resp["stopReason"] == "tool_use"
    uses = [b["toolUse"] for b in resp["output"]["message"]["content"] if "toolUse" in b]
    assert len(uses) == 1
    assert uses[0]["name"] == "get_weather"
    assert isinstance(uses[0]["input"].get("city"), str)  # the schema's required member


def test_converse_tool_choice_specific_tool(brt):
    # The question is about weather, but toolChoice names get_time: that tool must be called.
    resp = brt.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "What is the weather in Paris?"}]}],
        toolConfig={"tools": [WEATHER_TOOL, TIME_TOOL], "toolChoice": {"tool": {"name": "get_time"}}},
        inferenceConfig={"maxTokens": 100, **GREEDY},
    )
    assert resp["stopReason"] == "tool_use"
    uses = [b["toolUse"] for b in resp["output"]["message"]["content"] if "toolUse" in b]
    assert len(uses) == 1
    assert uses[0]["name"] == "get_time"
    assert isinstance(uses[0]["input"].get("timezone"), str)


# ---------------------------------------------------------------------------------------
# ConverseStream

def test_converse_stream_text(brt, brt_stream):
    messages = [{"role": "user", "content": [{"text": CAPITAL_Q}]}]
    cfg = {"maxTokens": 20, **GREEDY}
    whole = brt.converse(modelId=MODEL, messages=messages, inferenceConfig=cfg)
    events = streamed(brt_stream, "ConverseStream",
                      brt_stream.converse_stream(modelId=MODEL, messages=messages, inferenceConfig=cfg))
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and events[0]["messageStart"]["role"] == "assistant"
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert deltas and all(d["contentBlockIndex"] == 0 for d in deltas)
    assert "".join(d["delta"]["text"] for d in deltas) == converse_text(whole)
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    md = events[-1]["metadata"]
    assert md["usage"] == whole["usage"]
    assert md["usage"]["totalTokens"] == md["usage"]["inputTokens"] + md["usage"]["outputTokens"]
    assert isinstance(md["metrics"]["latencyMs"], int)


def test_converse_stream_max_tokens(brt_stream):
    events = streamed(brt_stream, "ConverseStream", brt_stream.converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Count from 1 to 20 separated by spaces."}]}],
        inferenceConfig={"maxTokens": 3, **GREEDY}))
    assert [e["messageStop"] for e in events if "messageStop" in e] == [{"stopReason": "max_tokens"}]
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 3


def test_converse_stream_tool_use(brt_stream, weather_call):
    messages, whole = weather_call
    events = streamed(brt_stream, "ConverseStream", brt_stream.converse_stream(
        modelId=MODEL, messages=messages, toolConfig={"tools": [WEATHER_TOOL]},
        inferenceConfig={"maxTokens": 100, **GREEDY},
    ))
    starts = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert len(starts) == 1
    tu = starts[0]["start"]["toolUse"]
    assert tu["name"] == "get_weather" and tu["toolUseId"]
    idx = starts[0]["contentBlockIndex"]
    parts = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events
             if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == idx]
    assert json.loads("".join(parts)) == [b["toolUse"] for b in whole["output"]["message"]["content"]
                                          if "toolUse" in b][0]["input"]
    assert {"contentBlockStop": {"contentBlockIndex": idx}} in events
    stops = [e["messageStop"] for e in events if "messageStop" in e]
    assert stops == [{"stopReason": "tool_use"}]
    assert "metadata" in events[-1]


# ---------------------------------------------------------------------------------------
# CountTokens

def test_count_tokens_invoke_model_body(brt, paris):
    resp = brt.count_tokens(modelId=MODEL, input={"invokeModel": {"body": json.dumps(anthropic_body(CAPITAL_Q))}})
    assert resp["inputTokens"] == paris.body["usage"]["input_tokens"]


def test_count_tokens_converse(brt):
    messages = [{"role": "user", "content": [{"text": "Name three primary colors."}]}]
    system = [{"text": "You are terse."}]
    conv = brt.converse(modelId=MODEL, messages=messages, system=system,
                        inferenceConfig={"maxTokens": 5, **GREEDY})
    count = brt.count_tokens(modelId=MODEL, input={"converse": {"messages": messages, "system": system}})
    assert count["inputTokens"] == conv["usage"]["inputTokens"]
    longer = [{"text": "You are terse. Never use more than five words in an answer, ever."}]
    with_longer = brt.count_tokens(modelId=MODEL, input={"converse": {"messages": messages, "system": longer}})
    assert with_longer["inputTokens"] > count["inputTokens"]  # the system prompt is counted


def test_count_tokens_converse_with_tools(brt, weather_call):
    messages, resp = weather_call
    count = brt.count_tokens(modelId=MODEL, input={"converse": {
        "messages": messages, "toolConfig": {"tools": [WEATHER_TOOL]}}})
    assert count["inputTokens"] == resp["usage"]["inputTokens"]


def test_count_tokens_invalid_model(brt):
    with pytest.raises(ClientError) as e:
        brt.count_tokens(modelId="foo.bar", input={"invokeModel": {"body": json.dumps(anthropic_body("hi"))}})
    assert validation_error(e) == "The provided model identifier is invalid."


# ---------------------------------------------------------------------------------------
# Limits, accounting, auth

LONG = "word " * 30000


def test_input_too_long_invoke_model(brt):
    t = time.monotonic()
    with pytest.raises(ClientError) as e:
        invoke(brt, anthropic_body(LONG, max_tokens=10))
    assert validation_error(e) == "Input is too long for requested model."
    assert time.monotonic() - t < 5


def test_input_too_long_converse(brt):
    t = time.monotonic()
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": LONG}]}],
                     inferenceConfig={"maxTokens": 10})
    assert validation_error(e) == "Input is too long for requested model."
    assert time.monotonic() - t < 5


def test_input_too_long_stream(brt):
    t = time.monotonic()
    with pytest.raises(ClientError) as e:
        brt.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(anthropic_body(LONG, max_tokens=10)))
    assert validation_error(e) == "Input is too long for requested model."
    assert time.monotonic() - t < 5


def test_invocation_metrics(brt, endpoint):
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"  # used by no other test
    before = metric_value(endpoint, "basalt_bedrock_invocations_total", model_id=model) or 0
    tokens_before = metric_value(endpoint, "basalt_bedrock_output_tokens_total", model_id=model) or 0
    inv = invoke(brt, anthropic_body("Count from 1 to 20 separated by spaces.", max_tokens=2), model=model)
    assert metric_value(endpoint, "basalt_bedrock_invocations_total", model_id=model) == before + 1
    assert (metric_value(endpoint, "basalt_bedrock_output_tokens_total", model_id=model)
            == tokens_before + inv.body["usage"]["output_tokens"])
    with pytest.raises(ClientError):
        invoke(brt, {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, model=model)
    # a request rejected before generation is not an invocation
    assert metric_value(endpoint, "basalt_bedrock_invocations_total", model_id=model) == before + 1


def test_bearer_token_auth_raw_http(endpoint):
    body = json.dumps(anthropic_body(CAPITAL_Q)).encode()
    req = urllib.request.Request(
        f"{endpoint}/model/{MODEL}/invoke", data=body, method="POST",
        headers={"Authorization": "Bearer anything", "Content-Type": "application/json",
                 "Accept": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        assert r.status == 200
        headers = {k.lower(): v for k, v in r.headers.items()}
        out = json.loads(r.read())
    assert headers["content-type"].startswith("application/json")
    assert headers.get("x-amzn-requestid")
    assert "Paris" in out["content"][0]["text"]
    assert int(headers["x-amzn-bedrock-output-token-count"]) == out["usage"]["output_tokens"]
