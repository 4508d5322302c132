"""Model engines run in supervised worker processes: a worker that dies fails only its own
requests (with Bedrock's ServiceUnavailableException), is restarted, and every other service
keeps answering. Also: the CPU kernel level is chosen at run time, reported, and can be capped
(BASALT_CPU_FEATURES) without changing what greedy decoding answers.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from conftest import BASALT_BIN, REGION, BasaltServer, http_get

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
GREEDY = {"temperature": 0}


def _model_dir() -> Path:
    d = os.environ.get("BASALT_MODEL_DIR")
    return Path(d) if d else Path.home() / ".cache" / "basalt" / "models"


pytestmark = pytest.mark.skipif(
    not any(_model_dir().glob("*.gguf")),
    reason=f"no local chat model in {_model_dir()} (run `basalt models pull`)",
)


def _client(service, endpoint):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=300,
                      connect_timeout=5),
    )


def _health(server):
    return json.loads(http_get(server.endpoint + "/_basalt/health")[2])


def _wait_running(server, engine="chat", not_pid=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = _health(server)["engines"][engine]
        if e.get("state") == "running" and e.get("pid") and e["pid"] != not_pid:
            return e
        time.sleep(0.05)
    pytest.fail(f"{engine} worker not running again within {timeout}s: {_health(server)['engines']}")


@pytest.fixture(scope="module")
def srv():
    s = BasaltServer(name="workers").start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def brt(srv):
    return _client("bedrock-runtime", srv.endpoint)


@pytest.fixture(scope="module")
def s3c(srv):
    return _client("s3", srv.endpoint)


def _converse(brt, text, max_tokens=24):
    r = brt.converse(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": max_tokens, **GREEDY},
    )
    return r["output"]["message"]["content"][0]["text"]


def test_health_reports_the_worker_and_its_kernels(srv, brt):
    assert _converse(brt, "What is the capital of France? Answer in one word.")
    h = _health(srv)["engines"]
    assert h["isolation"] == "worker_process"
    chat = h["chat"]
    assert chat["state"] == "running" and chat["pid"] != srv.proc.pid
    info = chat["info"]
    assert info["llama_level"], info
    assert info["cpu"].startswith("llama.cpp CPU kernels: " + info["llama_level"]), info
    # The worker is a child of the server.
    ppid = int(Path(f"/proc/{chat['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid == srv.proc.pid


def test_sigkill_of_the_chat_worker_mid_stream(srv, brt, s3c):
    _converse(brt, "Say hi.", max_tokens=4)
    old = _wait_running(srv)
    stream = brt.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "Count from 1 to 200, one number per line."}]}],
        inferenceConfig={"maxTokens": 400, **GREEDY},
    )["stream"]
    seen = []
    with pytest.raises(EventStreamError) as err:
        for ev in stream:
            seen.append(ev)
            if "contentBlockDelta" in ev and len(seen) == 5:
                os.kill(old["pid"], signal.SIGKILL)
                # Every other service answers while the worker is dead and restarting.
                bucket = "workers-" + uuid.uuid4().hex[:8]
                s3c.create_bucket(Bucket=bucket)
                s3c.put_object(Bucket=bucket, Key="k", Body=b"still here")
                assert s3c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"still here"
    e = err.value.response["Error"]
    assert e["Code"] == "serviceUnavailableException", e
    assert "SIGKILL" in e["Message"] and "restarted" in e["Message"], e
    assert not any("messageStop" in ev for ev in seen)
    new = _wait_running(srv, not_pid=old["pid"])
    assert new["crashes"] >= 1 and new["failed_calls"] >= 1
    assert "SIGKILL" in new["last_failure"]
    # The next request is served by the restarted worker.
    assert "Paris" in _converse(brt, "What is the capital of France? Answer in one word.")
    metrics = http_get(srv.endpoint + "/_basalt/metrics")[2].decode()
    assert 'basalt_engine_worker_crashes_total{engine="chat"}' in metrics
    assert srv.panics() == []


def test_kill_during_load_leaves_held_requests_of_other_services_answered(srv, brt, s3c):
    _converse(brt, "Say hi.", max_tokens=4)
    old = _wait_running(srv)
    bucket = "held-" + uuid.uuid4().hex[:8]
    s3c.create_bucket(Bucket=bucket)
    sts = _client("sts", srv.endpoint)
    results, errors = [], []

    def chat(i):
        try:
            results.append(_converse(brt, f"Write a short poem about the number {i}.", max_tokens=64))
        except ClientError as e:
            errors.append(e.response["Error"]["Code"])

    def others():
        for i in range(60):
            s3c.put_object(Bucket=bucket, Key=f"k{i}", Body=str(i).encode())
            assert s3c.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == str(i).encode()
            assert sts.get_caller_identity()["Account"]

    chats = [threading.Thread(target=chat, args=(i,)) for i in range(3)]
    for t in chats:
        t.start()
    time.sleep(1.5)
    side = threading.Thread(target=others)
    side.start()
    os.kill(old["pid"], signal.SIGKILL)
    side.join(120)
    for t in chats:
        t.join(300)
    assert not side.is_alive()
    keys = s3c.list_objects_v2(Bucket=bucket)["KeyCount"]
    assert keys == 60
    # In-flight generations fail with 503 ServiceUnavailableException; none hangs or 500s.
    assert len(results) + len(errors) == 3
    assert set(errors) <= {"ServiceUnavailableException"}, errors
    _wait_running(srv, not_pid=old["pid"])
    assert _converse(brt, "Say hi.", max_tokens=4)


def test_embeddings_run_in_their_own_worker(srv):
    brt = _client("bedrock-runtime", srv.endpoint)
    r = brt.invoke_model(modelId="amazon.titan-embed-text-v2:0",
                         body=json.dumps({"inputText": "hello world", "dimensions": 256}))
    body = json.loads(r["body"].read())
    assert len(body["embedding"]) == 256
    emb = _health(srv)["engines"]["embeddings"]
    assert emb["state"] == "running" and emb["info"]["kernel"], emb
    os.kill(emb["pid"], signal.SIGKILL)
    _wait_running(srv, "embeddings", not_pid=emb["pid"])
    again = json.loads(brt.invoke_model(modelId="amazon.titan-embed-text-v2:0",
                                        body=json.dumps({"inputText": "hello world", "dimensions": 256}))["body"].read())
    assert again["embedding"] == body["embedding"]


def test_models_list_shows_the_kernel_level():
    out = subprocess.run([str(BASALT_BIN), "models", "list"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "llama.cpp CPU kernels: " in out.stdout, out.stdout
    assert "llama.cpp CPU module: " in out.stdout, out.stdout


def test_a_bad_cpu_cap_is_refused_at_start():
    out = subprocess.run([str(BASALT_BIN), "serve", "--ephemeral", "--port", "0",
                          "--cpu-features", "pentium"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "BASALT_CPU_FEATURES" in out.stderr and "haswell" in out.stderr


PROMPTS = [
    "What is the capital of France? Answer in one word.",
    "List three primary colors, comma separated.",
    "Write one sentence about the sea.",
    "What is 12 times 12? Answer with the number only.",
    "Name the largest planet in the solar system.",
    "Translate 'good morning' into French.",
]
ORDER = ["x64", "sse42", "sandybridge", "ivybridge", "piledriver", "haswell", "alderlake",
         "skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4", "sapphirerapids"]
AVX512 = ORDER.index("skylakex")


def _best_level():
    out = subprocess.run([str(BASALT_BIN), "models", "list"], capture_output=True, text=True, timeout=120).stdout
    return next(l for l in out.splitlines() if l.startswith("llama.cpp CPU kernels: ")).split()[3].rstrip(";")


def _answers(level):
    s = BasaltServer(extra_args=["--ephemeral", "--cpu-features", level], name=f"level-{level}").start()
    try:
        brt = _client("bedrock-runtime", s.endpoint)
        answers = [_converse(brt, p, max_tokens=24) for p in PROMPTS]
        assert _health(s)["engines"]["chat"]["info"]["llama_level"] == level
        return answers
    finally:
        s.close()


def test_every_kernel_level_gives_the_same_greedy_answers():
    """Each family of kernels forced in turn. Levels that share the best level's arithmetic
    (AVX-512: the same block sums in the same order) must answer identically. The AVX2 family
    accumulates the same integer dot products in another order, so greedy decoding flips on
    near-tie tokens: bench/kernel_levels.py measures 89.7 % token agreement for haswell
    against zen4 on 20 prompts x 32 tokens (x64 90.5 %), identical within each family; here
    most short answers must still be identical. (The scalar x64 level is in the bench only:
    it is slow.)"""
    best = _best_level()
    rank = ORDER.index(best)
    same_family = [l for l in ("icelake", "skylakex") if AVX512 <= ORDER.index(l) < rank]
    other_family = ["haswell"] if rank > ORDER.index("haswell") else []
    ref = _answers(best)
    for level in same_family:
        assert _answers(level) == ref, level
    for level in other_family:
        got = _answers(level)
        identical = sum(a == b for a, b in zip(ref, got))
        assert identical >= len(PROMPTS) - 2, (level, ref, got)
        assert got[0] == "Paris" and got[3] == "144", got
