"""Lambda and CloudWatch Logs: warm invoke latency and Basalt's own CPU per invoke (1 and 16
clients), cold start against its floor, and FilterLogEvents over 1M events.

    make bench-lambda
    BASALT_BIN=target/release/basalt python bench/lambda.py [--invokes 500] [--events 1000000]

- Warm invoke: RequestResponse of a trivial Python function (`return event`) through boto3.
  Latency is measured around each call; Basalt's CPU is Δ(utime+stime) of the server process
  alone (its threads, not the function's process nor the client) ÷ invokes.
- Cold start: the first invoke after the configuration changes (so no warm environment can
  serve it), end to end, next to `python -c "import awslambdaric, boto3"` run with the same
  interpreter: the floor any Python runtime with the SDK pays. Medians of --cold rounds.
- FilterLogEvents: --events events in 10 streams of one group, then every page of a filter
  that matches 1 % of them and of one that matches all; events examined per second.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers  # noqa: E402

REPO = HERE.parent
ROLE = "arn:aws:iam::000000000000:role/bench"


def own_cpu_seconds(pid):
    """utime+stime of the process itself (all its threads), not of its children."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(endpoint, service):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=32))


def zip_source(src):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", src)
    return buf.getvalue()


def warm(endpoint, pid, invokes, clients):
    lam = client(endpoint, "lambda")
    name = f"bench-warm-{clients}"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": zip_source("def handler(event, context):\n    return event\n")})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    per_client = max(invokes // clients, 1)
    lams = [client(endpoint, "lambda") for _ in range(clients)]
    payload = json.dumps({"hello": "world"}).encode()

    def loop(c, n, out):
        for _ in range(n):
            t = time.perf_counter()
            r = c.invoke(FunctionName=name, Payload=payload)
            r["Payload"].read()
            out.append(time.perf_counter() - t)

    def run(n):
        lat = []
        threads = [threading.Thread(target=loop, args=(c, n, lat)) for c in lams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return lat

    run(3)  # every client's environment started and warm
    cpu0, t0 = own_cpu_seconds(pid), time.perf_counter()
    lat = run(per_client)
    wall, cpu = time.perf_counter() - t0, own_cpu_seconds(pid) - cpu0
    lat.sort()
    return dict(clients=clients, invokes=len(lat), rps=len(lat) / wall, p50_ms=lat[len(lat) // 2] * 1e3,
                p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, server_cpu_us=cpu / len(lat) * 1e6)


def cold(endpoint, rounds, python):
    lam = client(endpoint, "lambda")
    name = "bench-cold"
    src = "import boto3\ns3 = boto3.client('s3')\n\ndef handler(event, context):\n    return 1\n"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": zip_source(src)})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    lam.invoke(FunctionName=name)  # the package unpacked, the role's credentials issued
    basalt, inits, floor = [], [], []
    for i in range(rounds):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"ROUND": str(i)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        t = time.perf_counter()
        r = lam.invoke(FunctionName=name, LogType="Tail")
        r["Payload"].read()
        basalt.append(time.perf_counter() - t)
        import base64
        log = base64.b64decode(r["LogResult"]).decode()
        inits.append(float(log.split("Init Duration: ")[1].split(" ms")[0]))
        t = time.perf_counter()
        subprocess.run([python, "-c", "import awslambdaric, boto3; boto3.client('s3')"], check=True)
        floor.append(time.perf_counter() - t)
    b, f = statistics.median(basalt) * 1e3, statistics.median(floor) * 1e3
    return dict(cold_ms=b, init_ms=statistics.median(inits), floor_ms=f, ratio=b / f)


def filter_events(endpoint, pid, total):
    logs = client(endpoint, "logs")
    group = "/bench/filter"
    logs.create_log_group(logGroupName=group)
    streams = 10
    for s in range(streams):
        logs.create_log_stream(logGroupName=group, logStreamName=f"s{s}")
    base = int(time.time() * 1000) - 3_600_000
    batch = 10_000
    t0 = time.perf_counter()
    for b in range(total // batch):
        events = [{"timestamp": base + b * batch + i,
                   "message": f"{'ERROR' if (b * batch + i) % 100 == 0 else 'INFO'} request {b * batch + i} took {i % 997} ms"}
                  for i in range(batch)]
        logs.put_log_events(logGroupName=group, logStreamName=f"s{b % streams}", logEvents=events)
    ingest = time.perf_counter() - t0
    out = dict(events=total, ingest_eps=total / ingest)
    for label, pattern in (("one_percent", "ERROR"), ("all", "")):
        cpu0, t0, found, token = own_cpu_seconds(pid), time.perf_counter(), 0, None
        while True:
            kw = dict(logGroupName=group, filterPattern=pattern)
            if token:
                kw["nextToken"] = token
            r = logs.filter_log_events(**kw)
            found += len(r["events"])
            token = r.get("nextToken")
            if not token:
                break
        wall = time.perf_counter() - t0
        out[label] = dict(found=found, scanned_eps=total / wall, seconds=wall,
                          server_cpu_s=own_cpu_seconds(pid) - cpu0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invokes", type=int, default=400)
    ap.add_argument("--cold", type=int, default=7)
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args()
    basalt = Path(os.environ.get("BASALT_BIN", REPO / "target" / "release" / "basalt"))
    data = tempfile.mkdtemp(prefix="bench-lambda-")
    spec = dict(cmd=lambda port: [str(basalt), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data],
                env={"RUST_LOG": "warn"}, health="/_basalt/health")
    srv = peers.Server("basalt", spec)
    srv.start()
    try:
        pid = srv.proc.pid
        runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
        python = str(sorted(runtimes.glob("python3.*/bin/python"))[-1])
        results = {"warm": [warm(srv.endpoint, pid, args.invokes, c) for c in (1, 16)],
                   "cold": cold(srv.endpoint, args.cold, python),
                   "filter": filter_events(srv.endpoint, pid, args.events)}
    finally:
        srv.stop()
    print(json.dumps(results, indent=2))
    print("\nwarm invoke (trivial Python function, boto3 clients)")
    print(f"{'clients':>8} {'invokes/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'Basalt CPU/invoke':>18}")
    for w in results["warm"]:
        print(f"{w['clients']:>8} {w['rps']:>10.1f} {w['p50_ms']:>8.2f} {w['p99_ms']:>8.2f} {w['server_cpu_us']:>15.0f} us")
    c = results["cold"]
    print(f"\ncold start {c['cold_ms']:.0f} ms end to end (Init Duration {c['init_ms']:.0f} ms) vs "
          f"`import awslambdaric, boto3` {c['floor_ms']:.0f} ms: {c['ratio']:.2f}x")
    f = results["filter"]
    print(f"\nFilterLogEvents over {f['events']:,} events (ingested at {f['ingest_eps']:,.0f} events/s)")
    for label in ("one_percent", "all"):
        r = f[label]
        print(f"  {label:>12}: {r['found']:,} found, {r['scanned_eps']:,.0f} events examined/s, "
              f"{r['seconds']:.1f} s, server CPU {r['server_cpu_s']:.1f} s")


if __name__ == "__main__":
    main()
