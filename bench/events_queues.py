#!/usr/bin/env python3
"""SQS and EventBridge side by side: Basalt vs. moto server vs. MiniStack, one at a time.

For each server and each operation, with 1 and 16 concurrent clients for a fixed number of
requests: throughput, p50 latency, and the server's CPU time per request (utime+stime of its
process tree over the phase, from /proc: the clients' own cost is not on the server's books,
so the Python clients below make the throughput client-bound but leave CPU per request exact).

  SendMessage                 one 256-byte message per request
  ReceiveMessage+DeleteMessage  one message received (short poll) and deleted: two requests
  PutEvents                   one event matching a rule whose target is an SQS queue
  PutEvents -> receivable     end-to-end: from PutEvents' answer to the message arriving in a
                              long poll that was already waiting (median of the runs)

Requests are raw HTTP (JSON protocols, a static SigV4-shaped Authorization header): no SDK on
the client side.

  python bench/events_queues.py                           # all three peers
  python bench/events_queues.py --servers basalt,moto --requests 2000
  MINISTACK_BIN=~/.cache/basalt/peers/ministack/bin/ministack python bench/events_queues.py
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Server, cpu_seconds, peer_specs  # noqa: E402

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{svc}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
BODY = "x" * 256


class Client:
    """One keep-alive connection speaking the JSON protocols."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, svc, target, version, payload):
        body = json.dumps(payload)
        self.conn.request("POST", "/", body, {
            "Content-Type": f"application/x-amz-json-{version}",
            "X-Amz-Target": target,
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": AUTH.format(svc=svc),
        })
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{target}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else {}

    def sqs(self, op, **kw):
        return self.call("sqs", f"AmazonSQS.{op}", "1.0", kw)

    def events(self, op, **kw):
        return self.call("events", f"AWSEvents.{op}", "1.1", kw)


def setup(port):
    c = Client(port)
    url = c.sqs("CreateQueue", QueueName="bench")["QueueUrl"]
    arn = c.sqs("GetQueueAttributes", QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    target_url = c.sqs("CreateQueue", QueueName="bench-target")["QueueUrl"]
    target_arn = c.sqs("GetQueueAttributes", QueueUrl=target_url,
                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c.events("PutRule", Name="bench", EventPattern=json.dumps({"source": ["bench"]}))
    c.events("PutTargets", Rule="bench", Targets=[{"Id": "q", "Arn": target_arn}])
    return {"url": url, "arn": arn, "target_url": target_url}


def phase(server, clients, total, work):
    """Runs `work(client, i)` `total` times over `clients` threads; returns stats."""
    per = total // clients
    lat = []
    lock = threading.Lock()
    errors = []

    def run():
        c = Client(server.port)
        mine = []
        try:
            for i in range(per):
                t = time.perf_counter()
                work(c, i)
                mine.append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    cpu0 = cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(server.proc.pid) - cpu0
    if errors:
        raise errors[0]
    n = len(lat)
    return {"rps": n / wall, "p50_ms": statistics.median(lat) * 1000, "cpu_us": cpu / max(n, 1) * 1e6}


def end_to_end(server, runs):
    """PutEvents -> the message in a long poll that was already waiting (a queue of its own)."""
    c = Client(server.port)
    url = c.sqs("CreateQueue", QueueName="bench-e2e")["QueueUrl"]
    arn = c.sqs("GetQueueAttributes", QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c.events("PutRule", Name="bench-e2e", EventPattern=json.dumps({"source": ["bench-e2e"]}))
    c.events("PutTargets", Rule="bench-e2e", Targets=[{"Id": "q", "Arn": arn}])
    ctx = {"target_url": url}
    took = []
    for i in range(runs):
        got = {}

        def wait():
            c = Client(server.port)
            got["m"] = c.sqs("ReceiveMessage", QueueUrl=ctx["target_url"], WaitTimeSeconds=20,
                             MaxNumberOfMessages=1)
            got["t"] = time.perf_counter()
            for m in got["m"].get("Messages", []):
                c.sqs("DeleteMessage", QueueUrl=ctx["target_url"], ReceiptHandle=m["ReceiptHandle"])

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.05)
        c = Client(server.port)
        c.events("PutEvents", Entries=[{"Source": "bench-e2e", "DetailType": "t", "Detail": json.dumps({"i": i})}])
        sent = time.perf_counter()
        waiter.join()
        if got.get("m", {}).get("Messages"):
            took.append((got["t"] - sent) * 1000)
    return statistics.median(took) if took else None


def bench(name, spec, args):
    server = Server(name, spec).start()
    try:
        ctx = setup(server.port)
        out = {}
        for clients in (1, 16):
            total = args.requests
            out[f"SendMessage x{clients}"] = phase(
                server, clients, total,
                lambda c, i: c.sqs("SendMessage", QueueUrl=ctx["url"], MessageBody=BODY))

            def receive_delete(c, i):
                got = c.sqs("ReceiveMessage", QueueUrl=ctx["url"], MaxNumberOfMessages=1)
                for m in got.get("Messages", []):
                    c.sqs("DeleteMessage", QueueUrl=ctx["url"], ReceiptHandle=m["ReceiptHandle"])

            out[f"Receive+Delete x{clients}"] = phase(server, clients, total, receive_delete)
            out[f"PutEvents x{clients}"] = phase(
                server, clients, total,
                lambda c, i: c.events("PutEvents", Entries=[{
                    "Source": "bench", "DetailType": "t", "Detail": json.dumps({"i": i})}]))
            # Let the deliveries of this phase drain before the next one is timed.
            time.sleep(2)
        out["PutEvents->receivable ms"] = end_to_end(server, args.e2e_runs)
        return out
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="basalt,moto,ministack")
    ap.add_argument("--requests", type=int, default=1600)
    ap.add_argument("--e2e-runs", type=int, default=15)
    ap.add_argument("--json")
    args = ap.parse_args()
    args.servers = args.servers.split(",")
    results = {}
    for name, spec in peer_specs(args).items():
        if not spec["available"]:
            print(f"{name}: skipped ({spec['why']})")
            continue
        print(f"{name} ...", flush=True)
        results[name] = bench(name, spec, args)
    ops = [k for k in next(iter(results.values())) if k != "PutEvents->receivable ms"] if results else []
    print(f"\n{'operation':28}" + "".join(f"{n:>34}" for n in results))
    print(f"{'':28}" + "".join(f"{'req/s   p50 ms   CPU us/req':>34}" for _ in results))
    for op in ops:
        row = f"{op:28}"
        for n in results:
            r = results[n][op]
            row += f"{r['rps']:>12.0f}{r['p50_ms']:>9.2f}{r['cpu_us']:>13.0f}"
        print(row)
    print(f"{'PutEvents->receivable':28}" + "".join(
        f"{(results[n]['PutEvents->receivable ms'] or float('nan')):>31.1f} ms" for n in results))
    if "basalt" in results:
        for peer in (p for p in results if p != "basalt"):
            print(f"\nserver CPU per request, {peer} / basalt:")
            for op in ops:
                b, p = results["basalt"][op]["cpu_us"], results[peer][op]["cpu_us"]
                print(f"  {op:28} {p / b:8.1f}x" if b else f"  {op:28}      n/a")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
