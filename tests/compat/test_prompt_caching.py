"""Bedrock prompt caching through boto3: `cachePoint` blocks in Converse and ConverseStream
report `cacheWriteInputTokens` on the first call and `cacheReadInputTokens` on the next within
the TTL, with `inputTokens` leaving the cached part out and `totalTokens` counting it; the
rules Bedrock documents (minimum tokens per checkpoint, four checkpoints, TTLs per model,
no checkpoint in Nova's tools) hold. The speed-up behind the numbers is the engine's prefix
cache, measured in bench/prompt_cache.py.
"""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

# The model fixtures, and the skip when no local chat model is present.
from test_bedrock import brt, brt_stream, pytestmark, streamed  # noqa: F401

CLAUDE = "anthropic.claude-3-7-sonnet-20250219-v1:0"
NOVA = "amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"

# About 1,500 tokens of instructions: over Claude 3.7 Sonnet's 1,024-token minimum.
RULES = " ".join(
    f"Rule {i}: when a customer asks about order number {1000 + i}, answer with its status "
    f"and never reveal internal notes."
    for i in range(60)
)


def _ask(question, cache_point=True, ttl=None):
    system = [{"text": RULES}]
    if cache_point:
        cp = {"type": "default"}
        if ttl:
            cp["ttl"] = ttl
        system.append({"cachePoint": cp})
    return {
        "system": system,
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "inferenceConfig": {"maxTokens": 8, "temperature": 0},
    }


def test_first_call_writes_the_cache_and_the_next_reads_it(brt):
    # A system text no earlier test used: the first call writes.
    marker = os.urandom(4).hex()
    req = _ask(f"Order {marker}: what is rule 3 about?")
    req["system"][0]["text"] = f"Session {marker}. " + RULES
    first = brt.converse(modelId=CLAUDE, **req)["usage"]
    assert first["cacheReadInputTokens"] == 0
    assert first["cacheWriteInputTokens"] >= 1024
    assert first["totalTokens"] == (first["inputTokens"] + first["outputTokens"]
                                    + first["cacheWriteInputTokens"])
    assert first["cacheDetails"] == [{"ttl": "5m", "inputTokens": first["cacheWriteInputTokens"]}]
    # Same prefix, another question: read from the cache, nothing written.
    req["messages"][0]["content"][0]["text"] = "Which rule mentions order 1007?"
    second = brt.converse(modelId=CLAUDE, **req)["usage"]
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    assert second["cacheWriteInputTokens"] == 0
    assert "cacheDetails" not in second
    assert second["inputTokens"] < 100
    assert second["totalTokens"] == (second["inputTokens"] + second["outputTokens"]
                                     + second["cacheReadInputTokens"])


def test_converse_stream_reports_cache_usage_in_metadata(brt_stream):
    marker = os.urandom(4).hex()
    req = _ask("Summarize rule 1.")
    req["system"][0]["text"] = f"Stream {marker}. " + RULES
    usages = []
    for _ in range(2):
        resp = brt_stream.converse_stream(modelId=CLAUDE, **req)
        events = streamed(brt_stream, "ConverseStream", resp)
        usages.append(next(e["metadata"]["usage"] for e in events if "metadata" in e))
    assert usages[0]["cacheWriteInputTokens"] >= 1024
    assert usages[1]["cacheReadInputTokens"] == usages[0]["cacheWriteInputTokens"]


def test_a_second_checkpoint_reads_the_first_and_writes_the_rest(brt):
    marker = os.urandom(4).hex()
    doc = " ".join(f"Paragraph {i} of the manual {marker} explains step {i}." for i in range(50))
    req = _ask("What does paragraph 2 explain?")
    req["system"][0]["text"] = f"Manual {marker}. " + RULES
    first = brt.converse(modelId=CLAUDE, **req)["usage"]
    req["messages"][0]["content"] = [{"text": doc}, {"cachePoint": {"type": "default"}},
                                     {"text": "What does paragraph 2 explain?"}]
    second = brt.converse(modelId=CLAUDE, **req)["usage"]
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    assert second["cacheWriteInputTokens"] > 400


def test_a_prefix_under_the_minimum_caches_nothing(brt):
    req = _ask("Hello?")
    req["system"][0]["text"] = "You are brief."
    usage = brt.converse(modelId=CLAUDE, **req)["usage"]
    assert "cacheWriteInputTokens" not in usage and "cacheReadInputTokens" not in usage
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_models_without_prompt_caching_ignore_cache_points(brt):
    usage = brt.converse(modelId=LLAMA, **_ask("Hello?"))["usage"]
    assert "cacheWriteInputTokens" not in usage


def test_bedrock_rules_on_checkpoints(brt):
    # Nova: no checkpoint in tools, and no 1h TTL.
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}},
                       {"cachePoint": {"type": "default"}}]}
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=NOVA, toolConfig=tools, **_ask("Hi"))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=NOVA, **_ask("Hi", ttl="1h"))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Five checkpoints: one too many.
    req = _ask("Hi")
    req["system"] = [b for i in range(5) for b in ({"text": f"part {i}"}, {"cachePoint": {"type": "default"}})]
    with pytest.raises(ClientError) as e:
        brt.converse(modelId=CLAUDE, **req)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "maximum of 4" in e.value.response["Error"]["Message"]


def test_invoke_model_cache_control_reports_anthropic_usage(brt):
    import json
    marker = os.urandom(4).hex()
    body = {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "temperature": 0,
        "system": [{"type": "text", "text": f"Desk {marker}. " + RULES,
                    "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What is rule 2 about?"}],
    }
    usages = []
    for _ in range(2):
        resp = brt.invoke_model(modelId=CLAUDE, body=json.dumps(body))
        usages.append(json.loads(resp["body"].read())["usage"])
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert usages[0]["cache_creation_input_tokens"] >= 1024
    assert usages[0]["cache_read_input_tokens"] == 0
    assert usages[1]["cache_read_input_tokens"] == usages[0]["cache_creation_input_tokens"]
    assert usages[1]["input_tokens"] < 100
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == str(usages[1]["cache_read_input_tokens"])


def test_response_stream_reports_cache_usage_in_message_start(brt):
    import json
    marker = os.urandom(4).hex()
    body = {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 4, "temperature": 0,
        "system": [{"type": "text", "text": f"Stream desk {marker}. " + RULES,
                    "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Which rule mentions order 1004?"}],
    }
    starts = []
    for _ in range(2):
        resp = brt.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) for e in resp["body"] if "chunk" in e]
        starts.append(chunks[0]["message"]["usage"])
    assert starts[0]["cache_creation_input_tokens"] >= 1024
    assert starts[1]["cache_read_input_tokens"] == starts[0]["cache_creation_input_tokens"]
    assert starts[1]["input_tokens"] < 100
