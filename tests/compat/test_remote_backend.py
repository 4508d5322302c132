"""Bedrock model ids routed to an external OpenAI-compatible server (`--model-route`).

The "remote" server is a second Basalt serving its OpenAI-compatible facade from the local
model; the front server has NO local model (an empty model directory), so every answer it
gives must have come over the route. Skipped when the default chat model is not installed.
"""
import json
import os
import pathlib
import tempfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import BasaltServer

MODEL_DIR = pathlib.Path(os.environ.get("BASALT_MODEL_DIR", pathlib.Path.home() / ".cache" / "basalt" / "models"))
pytestmark = pytest.mark.skipif(not (MODEL_DIR / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").exists(),
                                reason="default chat model not installed (basalt models pull)")
ROUTED = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def servers():
    remote = BasaltServer(extra_args=["--ephemeral", "--llm-context", "2048"], name="basalt-remote").start()
    empty = tempfile.TemporaryDirectory(prefix="basalt-no-models-")
    front = BasaltServer(extra_args=[
        "--ephemeral", "--model-dir", empty.name,
        "--model-route", f"anthropic.claude-3-haiku-*={remote.endpoint}#qwen2.5-coder-0.5b-instruct",
    ], name="basalt-front").start()
    yield front, remote
    front.stop()
    remote.stop()
    empty.cleanup()


def client(endpoint):
    return boto3.client("bedrock-runtime", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, read_timeout=300))


def ask(c, model, question, max_tokens=16):
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": question}]}
    return json.loads(c.invoke_model(modelId=model, body=json.dumps(body))["body"].read())


def test_routed_ids_are_answered_by_the_remote_server(servers):
    front, remote = servers
    q = "What is the capital of France? Answer in one word."
    via_route = ask(client(front.endpoint), ROUTED, q)
    direct = ask(client(remote.endpoint), ROUTED, q)
    assert "Paris" in via_route["content"][0]["text"]
    assert via_route["content"][0]["text"] == direct["content"][0]["text"]  # same model, greedy
    assert via_route["usage"]["output_tokens"] > 0 and via_route["usage"]["input_tokens"] > 0


def test_routed_stream_and_converse(servers):
    front, _ = servers
    c = client(front.endpoint)
    r = c.converse(modelId=ROUTED, messages=[{"role": "user", "content": [{"text": "What is 2 plus 2? Answer with the number."}]}],
                   inferenceConfig={"maxTokens": 10, "temperature": 0})
    assert "4" in r["output"]["message"]["content"][0]["text"]
    s = c.converse_stream(modelId=ROUTED, messages=[{"role": "user", "content": [{"text": "Say hello."}]}],
                          inferenceConfig={"maxTokens": 10, "temperature": 0})
    kinds = [list(e)[0] for e in s["stream"]]
    assert kinds[0] == "messageStart" and "contentBlockDelta" in kinds and kinds[-1] == "metadata"


def test_unrouted_ids_use_the_local_model_which_is_absent(servers):
    front, _ = servers
    with pytest.raises(ClientError) as e:
        ask(client(front.endpoint), "anthropic.claude-3-sonnet-20240229-v1:0", "hi")
    assert e.value.response["Error"]["Code"] == "ModelNotReadyException"
