"""S3 on each storage backend: server CPU per request, latency and throughput of PutObject and
GetObject (1 KiB) with Basalt on SQLite + files (one node), on PostgreSQL (+ files), on
PostgreSQL + an S3-compatible store, and two nodes on PostgreSQL + the store behind nginx.

Two load generators: `wrk` replaying presigned URLs (1 and 16 connections; the client's cost
stays off the server's books) and boto3 itself (one client, sequential calls: what users send,
SigV4 headers and, for PutObject, an aws-chunked body with a CRC32 trailer).

    make bench-storage      # starts a throwaway PostgreSQL and S3-compatible store
    BASALT_TEST_POSTGRES=postgres://... BASALT_TEST_BLOBS=s3://... python bench/storage.py

Server CPU is Δ(utime+stime) of the node processes over the phase ÷ requests; latency
percentiles are wrk's (wrk) or measured around each boto3 call (boto3).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "cluster"))
import peers  # noqa: E402
from cluster import Balancer, fresh_blobs, fresh_database as fresh_db  # noqa: E402

KIB = peers.KIB
# wrk when installed; otherwise a Python thread pool, which measures the client more than the
# server (as bench/peers.py says when it falls back).
LOAD = peers.run_wrk if shutil.which("wrk") else peers.run_python


def node_spec(extra):
    basalt = Path(os.environ.get("BASALT_BIN", REPO / "target" / "release" / "basalt"))

    def cmd(port):
        where = [] if "--ephemeral" in extra else ["--data-dir", tempfile.mkdtemp(prefix="bench-node-")]
        return [str(basalt), "serve", "--host", "127.0.0.1", "--port", str(port), *where, *extra]
    return dict(cmd=cmd, env={"RUST_LOG": "warn"}, health="/_basalt/health")


def boto3_phase(endpoint, pids, n):
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test",
                      config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="bench-boto3")
    out = {}
    for op in ("put", "get"):
        for i in range(50):  # warm up connections and caches
            if op == "put":
                s3.put_object(Bucket="bench-boto3", Key=f"w{i}", Body=KIB)
            else:
                s3.get_object(Bucket="bench-boto3", Key="w0")["Body"].read()
        lat = []
        cpu0 = sum(peers.cpu_seconds(p) for p in pids)
        for i in range(n):
            t = time.perf_counter()
            if op == "put":
                s3.put_object(Bucket="bench-boto3", Key=f"k{i}", Body=KIB)
            else:
                s3.get_object(Bucket="bench-boto3", Key="w0")["Body"].read()
            lat.append((time.perf_counter() - t) * 1000)
        cpu = sum(peers.cpu_seconds(p) for p in pids) - cpu0
        lat.sort()
        out[f"boto3_{op}"] = dict(cpu_us=cpu / n * 1e6, p50_ms=statistics.median(lat),
                                  p99_ms=lat[int(len(lat) * 0.99) - 1], rps=n / (sum(lat) / 1000))
    return out


def wrk_phases(endpoint, pids, conns, duration):
    targets = peers.make_targets(endpoint)
    out = {}
    for name in ("s3_put_1k", "s3_get_1k"):
        method, url, body, headers, _ = targets[name][0]
        for c in conns:
            cpu0 = sum(peers.cpu_seconds(p) for p in pids)
            r = LOAD(method, url, body, headers, c, duration)
            cpu = sum(peers.cpu_seconds(p) for p in pids) - cpu0
            r["cpu_us"] = cpu / max(r["requests"], 1) * 1e6
            out[f"wrk_{name}_c{c}"] = r
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk phase")
    ap.add_argument("--boto3-calls", type=int, default=2000)
    ap.add_argument("--json")
    ap.add_argument("--memory", action="store_true",
                    help="also run Basalt with --ephemeral (state in memory), the reference")
    args = ap.parse_args()
    if LOAD is peers.run_python:
        print("load generator: python threads (client-bound!): apt-get install -y wrk", flush=True)
    have_pg = bool(os.environ.get("BASALT_TEST_POSTGRES"))
    have_s3 = bool(os.environ.get("BASALT_TEST_BLOBS"))
    configs = [("sqlite+files", lambda: [])]
    if args.memory:
        configs.insert(0, ("memory", lambda: ["--ephemeral"]))
    if have_pg:
        configs.append(("postgres+files", lambda: ["--state", fresh_db()]))
    if have_pg and have_s3:
        configs.append(("postgres+s3", lambda: ["--state", fresh_db(), "--blobs", fresh_blobs()]))
    results = {}
    for name, extra in configs:
        srv = peers.Server(name, node_spec(extra())).start()
        try:
            pids = [srv.proc.pid]
            r = wrk_phases(srv.endpoint, pids, [1, 16], args.duration)
            r.update(boto3_phase(srv.endpoint, pids, args.boto3_calls))
            results[name] = r
            print(name, json.dumps(r), flush=True)
        finally:
            srv.stop()
    if have_pg and have_s3:
        state, blobs = fresh_db(), fresh_blobs()
        nodes = [peers.Server(f"node{i}", node_spec(["--state", state, "--blobs", blobs])).start()
                 for i in range(2)]
        lb = Balancer([n.port for n in nodes])
        try:
            pids = [n.proc.pid for n in nodes]
            r = wrk_phases(lb.endpoint, pids, [16], args.duration)
            results["2 nodes, nginx"] = r
            print("2 nodes", json.dumps(r), flush=True)
        finally:
            lb.stop()
            for n in nodes:
                n.stop()
    print()
    cols = list(results)
    rows = []
    for key in ("wrk_s3_put_1k_c1", "wrk_s3_put_1k_c16", "wrk_s3_get_1k_c1", "wrk_s3_get_1k_c16",
                "boto3_put", "boto3_get"):
        for metric in ("rps", "p50_ms", "p99_ms", "cpu_us"):
            vals = [results[c].get(key, {}).get(metric) for c in cols]
            if any(v is not None for v in vals):
                rows.append((f"{key} {metric}", vals))
    print("| | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for label, vals in rows:
        print(f"| {label} | " + " | ".join("" if v is None else f"{v:.3g}" for v in vals) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
