#!/usr/bin/env python3
"""DynamoDB side by side: Basalt vs. moto server vs. MiniStack, one at a time.

Part 1, per operation with 1 and 16 concurrent clients for a fixed number of requests:
throughput, p50 latency, and the server's CPU time per request (utime+stime of its process
tree over the phase, from /proc: the Python clients make throughput client-bound but leave
CPU per request exact).

  PutItem              one ~200-byte item, a new key each time
  GetItem              one of 1,000 preloaded items
  Query 100            all 100 items of one partition (one page)
  TransactWrite 4      TransactWriteItems putting 4 new items

Part 2, Query latency against a growing table: the table is loaded with BatchWriteItem
(25 items a request, 16 loaders) to 10k, 100k and 1M items in partitions of 100, and at each
size one client times the same Query of one 100-item partition (p50 and p99 of --size-queries
runs, once the server has gone idle). Query reads only its partition, so the latency must not
grow with the table. Basalt runs with --ephemeral like the peers (all in memory);
--basalt-disk puts it on SQLite in a temporary data dir, as deployed. The 1M
load runs for Basalt only unless --peer-max-items says otherwise (moto and MiniStack load
~1-5k items/s).

Requests are raw HTTP with awsJson1_0 bodies and a static SigV4-shaped Authorization header
(no SDK on the client side).

  python bench/dynamodb.py                                 # all three peers
  python bench/dynamodb.py --servers basalt,moto --requests 2000 --sizes 10000,100000
  python bench/dynamodb.py --peer-max-items 1000000        # load peers to 1M too (slow)
  python bench/dynamodb.py --servers basalt --basalt-disk  # Basalt on SQLite in a temp dir
  MINISTACK_BIN=~/.cache/basalt/peers/ministack/bin/ministack python bench/dynamodb.py
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Server, cpu_seconds, peer_specs, rss_kib  # noqa: E402

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64)
PAYLOAD = "x" * 150
HOT = "hot"


class Client:
    """One keep-alive connection speaking awsJson1_0 to DynamoDB."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, op, payload):
        body = json.dumps(payload)
        for attempt in range(2):
            try:
                self.conn.request("POST", "/", body, {
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": f"DynamoDB_20120810.{op}",
                    "X-Amz-Date": "20260101T000000Z",
                    "Authorization": AUTH,
                })
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A server may close an idle keep-alive connection; one reconnect is fair.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        if r.status >= 300:
            raise RuntimeError(f"{op}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else {}


def item(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}, "payload": {"S": PAYLOAD}, "n": {"N": "12345"}}


def create_table(c, name):
    c.call("CreateTable", {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]})
    deadline = time.monotonic() + 60
    while c.call("DescribeTable", {"TableName": name})["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ACTIVE")
        time.sleep(0.05)


def batch_put(c, table, items):
    req = {table: [{"PutRequest": {"Item": it}} for it in items]}
    while req:
        out = c.call("BatchWriteItem", {"RequestItems": req})
        req = out.get("UnprocessedItems") or {}


def setup(port):
    c = Client(port)
    create_table(c, "bench")
    for start in range(0, 1000, 25):
        batch_put(c, "bench", [item(f"get-{i}", "0") for i in range(start, start + 25)])
    for start in range(0, 100, 25):
        batch_put(c, "bench", [item(HOT, f"{i:03d}") for i in range(start, start + 25)])
    got = c.call("Query", {"TableName": "bench", "KeyConditionExpression": "pk = :p",
                           "ExpressionAttributeValues": {":p": {"S": HOT}}})
    if got["Count"] != 100:
        raise RuntimeError(f"the hot partition holds {got['Count']} items, not 100")


def phase(server, clients, total, work, cap_s):
    """Runs `work(client, worker, i)` `total` times over `clients` threads, or until `cap_s`
    seconds have passed; a failed request is counted and the worker goes on (moto's server
    fails concurrent TransactWriteItems with "dictionary changed size during iteration").
    Throughput and latency count the requests that succeeded, CPU is shared over all."""
    per = max(1, total // clients)
    lat = []
    lock = threading.Lock()
    errors = []
    stop_at = time.perf_counter() + cap_s

    def run(w):
        c = Client(server.port)
        mine = []
        for i in range(per):
            if time.perf_counter() > stop_at:
                break
            t = time.perf_counter()
            try:
                work(c, w, i)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(e)
                c = Client(server.port)
                continue
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(clients)]
    cpu0 = cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(server.proc.pid) - cpu0
    n = len(lat)
    if not n:
        raise RuntimeError(f"every request failed: {errors[0]!r}")
    return {"requests": n, "errors": len(errors), "first_error": repr(errors[0])[:300] if errors else None,
            "capped": time.perf_counter() > stop_at, "rps": n / wall, "p50_ms": statistics.median(lat) * 1000,
            "cpu_us": cpu / (n + len(errors)) * 1e6}


def operations(tag):
    def put(c, w, i):
        c.call("PutItem", {"TableName": "bench", "Item": item(f"put-{tag}-{w}-{i}", "0")})

    def get(c, w, i):
        out = c.call("GetItem", {"TableName": "bench", "Key": {"pk": {"S": f"get-{(w * 37 + i) % 1000}"},
                                                               "sk": {"S": "0"}}})
        if "Item" not in out:
            raise RuntimeError("GetItem found nothing")

    def query(c, w, i):
        out = c.call("Query", {"TableName": "bench", "KeyConditionExpression": "pk = :p",
                               "ExpressionAttributeValues": {":p": {"S": HOT}}})
        if out["Count"] != 100:
            raise RuntimeError(f"Query returned {out['Count']} items")

    def transact(c, w, i):
        c.call("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "bench", "Item": item(f"tx-{tag}-{w}-{i}", str(k))}} for k in range(4)]})

    return [("PutItem", put, 1), ("GetItem", get, 1), ("Query 100", query, 4), ("TransactWrite 4", transact, 1)]


def load_to(server, table, have, want, loaders=16):
    """Adds items have..want-1 as partitions of 100 (`p-<n>`), 25 per BatchWriteItem."""
    batches = [(s, min(s + 25, want)) for s in range(have, want, 25)]
    nxt = [0]
    lock = threading.Lock()
    errors = []

    def run():
        c = Client(server.port)
        try:
            while True:
                with lock:
                    if nxt[0] >= len(batches):
                        return
                    lo, hi = batches[nxt[0]]
                    nxt[0] += 1
                batch_put(c, table, [item(f"p-{i // 100}", f"{i % 100:03d}") for i in range(lo, hi)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(loaders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def settle(server, idle_share=0.05, window_s=0.5, max_s=60.0):
    """Waits until the server's process tree uses under `idle_share` of a core over a window,
    so that work left from the load (index or count maintenance, compaction) is not timed as
    query latency. Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        c0 = cpu_seconds(server.proc.pid)
        time.sleep(window_s)
        if cpu_seconds(server.proc.pid) - c0 < idle_share * window_s:
            break
    return time.perf_counter() - t0


def size_latency(server, name, args):
    c = Client(server.port)
    table = "bench-size"
    create_table(c, table)
    cap = None if name == "basalt" else args.peer_max_items
    out, have = {}, 0
    for size in args.sizes:
        if cap is not None and size > cap:
            out[size] = None
            continue
        t0 = time.perf_counter()
        load_to(server, table, have, size)
        rate = (size - have) / (time.perf_counter() - t0)
        waited = settle(server)
        print(f"  {name}: loaded {size} items ({rate:.0f} items/s), idle after {waited:.1f} s", flush=True)
        have = size
        probe = {"TableName": table, "KeyConditionExpression": "pk = :p",
                 "ExpressionAttributeValues": {":p": {"S": f"p-{(size // 100) // 2}"}}}
        for _ in range(5):  # warm
            c.call("Query", probe)
        lat = []
        for _ in range(args.size_queries):
            t = time.perf_counter()
            got = c.call("Query", probe)
            lat.append((time.perf_counter() - t) * 1000)
            if got["Count"] != 100:
                raise RuntimeError(f"size {size}: Query returned {got['Count']} items")
        lat.sort()
        out[size] = {"p50_ms": statistics.median(lat), "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
                     "load_items_per_s": rate, "settle_s": waited, "rss_mib": rss_kib(server.proc.pid) / 1024}
    return out


def bench(name, spec, args):
    server = Server(name, spec).start(timeout=120)
    try:
        setup(server.port)
        out = {}
        for clients in (1, 16):
            for label, work, divisor in operations(f"c{clients}"):
                try:
                    r = phase(server, clients, max(clients, args.requests // divisor), work, args.phase_cap_s)
                except RuntimeError as e:
                    r = {"failed": str(e)[:300]}
                    print(f"  {name} {label} x{clients}: failed: {e}", flush=True)
                    out[f"{label} x{clients}"] = r
                    continue
                out[f"{label} x{clients}"] = r
                print(f"  {name} {label} x{clients}: {r['requests']} requests, {r['rps']:.0f} req/s "
                      f"p50 {r['p50_ms']:.2f} ms cpu {r['cpu_us']:.0f} us/req"
                      + (f", {r['errors']} errors (first: {r['first_error'][:120]})" if r["errors"] else "")
                      + (" [time cap]" if r["capped"] else ""), flush=True)
        sizes = size_latency(server, name, args) if args.sizes else {}
        return {"ops": out, "sizes": sizes}
    finally:
        server.stop()


def report(results, args):
    ops = next((list(r["ops"]) for r in results.values()), [])
    print(f"\n{'operation':22}" + "".join(f"{n:>40}" for n in results))
    print(f"{'':22}" + "".join(f"{'req/s   p50 ms   CPU us/req  errors':>40}" for _ in results))
    for op in ops:
        row = f"{op:22}"
        for n in results:
            r = results[n]["ops"].get(op, {})
            if "rps" in r:
                row += f"{r['rps']:>12.0f}{r['p50_ms']:>9.2f}{r['cpu_us']:>13.0f}{r['errors']:>6}"
            else:
                row += f"{'failed':>40}"
        print(row)
    print("(errors: requests the server failed: not in req/s and p50, in CPU per request; --json has the first)")

    def cpu(n, op):
        return results[n]["ops"].get(op, {}).get("cpu_us")

    if "basalt" in results:
        for peer in (p for p in results if p != "basalt"):
            target = " (target: >= 20)" if peer == "moto" else ""
            print(f"\nserver CPU per request, {peer} / basalt{target}:")
            for op in ops:
                b, p = cpu("basalt", op), cpu(peer, op)
                print(f"  {op:22} {p / b:8.1f}x" if b and p else f"  {op:22}      n/a")
        print("\nBasalt server CPU for PutItem/GetItem against fakecloud's measured 0.13 ms (130 us):")
        for op in ops:
            us = cpu("basalt", op)
            if op.startswith(("PutItem", "GetItem")) and us:
                print(f"  {op:22} {us:8.0f} us  {'below' if us < 130 else 'NOT below'}")
    if args.sizes:
        print("\nQuery of one 100-item partition, p50 / p99 ms, by table size (must not grow with size):")
        print(f"{'items':>10}" + "".join(f"{n:>24}" for n in results))
        for size in args.sizes:
            row = f"{size:>10}"
            for n in results:
                s = results[n]["sizes"].get(size)
                row += f"{s['p50_ms']:>13.2f} / {s['p99_ms']:>8.2f}" if s else f"{'not loaded':>24}"
            print(row)
        for n in results:
            measured = [(k, v) for k, v in results[n]["sizes"].items() if v]
            if len(measured) >= 2:
                (k0, v0), (k1, v1) = measured[0], measured[-1]
                ratio = v1["p50_ms"] / v0["p50_ms"]
                verdict = "flat" if ratio < 1.5 else "GROWS with table size"
                print(f"  {n}: p50 at {k1} items / at {k0} items = {ratio:.2f} ({verdict})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="basalt,moto,ministack")
    ap.add_argument("--requests", type=int, default=1600, help="requests per phase (Query: a quarter)")
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    type=lambda s: [int(x) for x in s.split(",") if x], help="table sizes for part 2; empty skips it")
    ap.add_argument("--peer-max-items", type=int, default=100000,
                    help="load moto and MiniStack only up to this many items (default 100000)")
    ap.add_argument("--size-queries", type=int, default=200)
    ap.add_argument("--phase-cap-s", type=float, default=30.0,
                    help="stop a phase after this many seconds (moto's TransactWriteItems copies its tables)")
    ap.add_argument("--basalt-disk", action="store_true",
                    help="run Basalt on a temporary data dir (SQLite on disk) instead of --ephemeral")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.servers = args.servers.split(",")
    results, skipped = {}, {}
    specs = peer_specs(args)
    data = None
    if args.basalt_disk and "basalt" in specs:
        data = tempfile.mkdtemp(prefix="bench-ddb-basalt-")
        base = specs["basalt"]["cmd"]

        def disk_cmd(port):
            out = []
            for a in base(port):
                out += ["--data-dir", data] if a == "--ephemeral" else [a]
            return out

        specs["basalt"] = {**specs["basalt"], "cmd": disk_cmd}
    for name, spec in specs.items():
        if not spec["available"]:
            skipped[name] = spec["why"]
            print(f"{name}: skipped ({spec['why']})")
            continue
        print(f"{name} ...", flush=True)
        try:
            results[name] = bench(name, spec, args)
        except Exception as e:  # keep going with the other peers
            skipped[name] = repr(e)
            print(f"  {name} failed: {e!r}", flush=True)
    if data:
        shutil.rmtree(data, ignore_errors=True)
    if results:
        report(results, args)
    if skipped:
        print("\nskipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "skipped": skipped}, indent=2, default=str))


if __name__ == "__main__":
    main()
