#!/usr/bin/env python3
"""The cost of running the chat engine in a supervised worker process (the default) instead of
inside the server (`--in-process-engines`): the same 128-token greedy Converse and
ConverseStream calls against two servers on the same model, alternating round by round, and
the median of per-round ratios of wall time as the client sees it.

Usage (idle machine; the servers use the installed default models):
  make build && .venv/bin/python bench/worker_overhead.py [--rounds 7] [--json OUT.json]
"""
import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(os.environ.get("BASALT_BIN", ROOT / "target/release/basalt"))
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PROMPT = "Write a long story about a lighthouse keeper and a storm."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(extra):
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--ephemeral", "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            urllib.request.urlopen(url + "/_basalt/health", timeout=1)
            break
        except Exception:
            time.sleep(0.02)
    client = boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test",
                          config=Config(read_timeout=600, retries={"max_attempts": 1}))
    return proc, client


def converse(client, n):
    t = time.perf_counter()
    r = client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": PROMPT}]}],
                        inferenceConfig={"maxTokens": n, "temperature": 0})
    wall = time.perf_counter() - t
    assert r["usage"]["outputTokens"] == n, r["usage"]
    return wall, r["output"]["message"]["content"][0]["text"]


def stream(client, n):
    t = time.perf_counter()
    r = client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": PROMPT}]}],
                               inferenceConfig={"maxTokens": n, "temperature": 0})
    text, first = [], None
    for ev in r["stream"]:
        if "contentBlockDelta" in ev:
            first = first or time.perf_counter() - t
            text.append(ev["contentBlockDelta"]["delta"]["text"])
    return time.perf_counter() - t, first, "".join(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--json")
    args = ap.parse_args()
    worker, wc = start([])
    inproc, ic = start(["--in-process-engines"])
    try:
        for c in (wc, ic):  # load the model, warm the caches
            converse(c, 8)
        rows = {"worker": [], "in_process": [], "worker_stream": [], "in_process_stream": [],
                "worker_ttft": [], "in_process_ttft": []}
        texts = set()
        for i in range(args.rounds):
            order = [("worker", wc), ("in_process", ic)]
            if i % 2:
                order.reverse()
            for name, c in order:
                wall, text = converse(c, args.tokens)
                rows[name].append(wall)
                texts.add(text)
                wall, first, text = stream(c, args.tokens)
                rows[name + "_stream"].append(wall)
                rows[name + "_ttft"].append(first)
                texts.add(text)
        ratio = statistics.median(w / p for w, p in zip(rows["worker"], rows["in_process"]))
        ratio_s = statistics.median(w / p for w, p in zip(rows["worker_stream"], rows["in_process_stream"]))
        out = {k: statistics.median(v) for k, v in rows.items()}
        out.update(converse_ratio=ratio, stream_ratio=ratio_s, identical_text=len(texts) == 1,
                   rounds=args.rounds, tokens=args.tokens)
        print(f"{args.tokens}-token greedy Converse, median of {args.rounds} alternating rounds:")
        print(f"  worker process {out['worker']*1000:8.1f} ms   in process {out['in_process']*1000:8.1f} ms   "
              f"ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f} %)")
        print(f"  ConverseStream {out['worker_stream']*1000:8.1f} ms   in process {out['in_process_stream']*1000:8.1f} ms   "
              f"ratio {ratio_s:.4f} ({(ratio_s - 1) * 100:+.2f} %)")
        print(f"  time to first token: worker {out['worker_ttft']*1000:.1f} ms, in process {out['in_process_ttft']*1000:.1f} ms")
        print(f"  same text from both: {out['identical_text']}")
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(out, indent=2))
    finally:
        for p in (worker, inproc):
            p.terminate()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
