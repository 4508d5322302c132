#!/usr/bin/env python3
"""CloudWatch metrics side by side: Basalt vs. moto server vs. MiniStack, one at a time.

For each server:
  PutMetricData   1,000,000 data points (by default) of one metric, sent as requests of 1000
                  MetricData members with a value and a timestamp each (CloudWatch's maximum),
                  spread evenly over the last 1000 minutes: latency p50/p99 per request and
                  server CPU per request;
  GetMetricData   the whole range at a 1-minute period (1000 periods of 1000 points each),
                  one query per request: Sum, Average and p99 in turn, then all three in one
                  request, each repeated: latency p50 and server CPU per request; the values are
                  checked against what was put (Sum and Average exactly, p99 within the bounds
                  of its period's values).

Server CPU is utime+stime of the server's process tree over the phase (from /proc), so the
client's own cost (building query-protocol bodies, parsing XML) is not on the server's books.
Requests are raw HTTP in the query protocol (form-encoded, XML answers) that every peer speaks,
with a static SigV4-shaped Authorization header: no SDK on the client side.

  python bench/cloudwatch.py                                 # all three peers, 1M points
  python bench/cloudwatch.py --servers basalt --points 100000
  python bench/cloudwatch.py --servers basalt --basalt-disk  # Basalt on SQLite in a temp dir
  MINISTACK_BIN=~/.cache/basalt/peers/ministack/bin/ministack python bench/cloudwatch.py
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import tempfile
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Server, cpu_seconds, peer_specs, rss_kib  # noqa: E402

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/monitoring/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
NAMESPACE = "Bench"
METRIC = "Latency"
BATCH = 1000
STATS = ("Sum", "Average", "p99")


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Client:
    """One keep-alive connection speaking CloudWatch's query protocol."""

    def __init__(self, port, timeout=600):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, action, params):
        body = urllib.parse.urlencode({"Action": action, "Version": "2010-08-01", **params})
        self.conn.request("POST", "/", body, {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": AUTH,
        })
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{action}: {r.status} {data[:400]!r}")
        return data.decode()


def value(i):
    """The value of point i: a spread that makes Sum, Average and p99 all different."""
    return float((i * 7919) % 1000)


def put_body(start, first, n, step_ms):
    p = {"Namespace": NAMESPACE}
    for j in range(n):
        i = first + j
        k = f"MetricData.member.{j + 1}."
        p[k + "MetricName"] = METRIC
        p[k + "Value"] = repr(value(i))
        p[k + "Unit"] = "Milliseconds"
        p[k + "Timestamp"] = iso(start + timedelta(milliseconds=i * step_ms))
    return p


def expected(points, step_ms, start_ms):
    """Sum, Average and (min, max) per minute of what was put, keyed by period start (ms)."""
    by_minute = {}
    for i in range(points):
        t = start_ms + i * step_ms
        m = t - t % 60_000
        by_minute.setdefault(m, []).append(value(i))
    return by_minute


def query_params(stats, start, end):
    p = {"StartTime": iso(start), "EndTime": iso(end), "ScanBy": "TimestampAscending"}
    for n, stat in enumerate(stats, 1):
        k = f"MetricDataQueries.member.{n}."
        p[k + "Id"] = f"q{n}"
        p[k + "MetricStat.Metric.Namespace"] = NAMESPACE
        p[k + "MetricStat.Metric.MetricName"] = METRIC
        p[k + "MetricStat.Period"] = "60"
        p[k + "MetricStat.Stat"] = stat
    return p


def parse_results(xml):
    """[(timestamps, values)] per MetricDataResult, in order."""
    block = xml.split("<MetricDataResults>", 1)[1].split("</MetricDataResults>", 1)[0]
    out = []
    for part in re.split(r"<member>\s*<", block)[1:]:
        ts = re.search(r"<Timestamps>(.*?)</Timestamps>", part, re.S)
        vs = re.search(r"<Values>(.*?)</Values>", part, re.S)
        times = re.findall(r"<member>(.*?)</member>", ts.group(1), re.S) if ts else []
        vals = [float(v) for v in re.findall(r"<member>(.*?)</member>", vs.group(1), re.S)] if vs else []
        out.append((times, vals))
    return out


def check(stat, times, vals, truth):
    """Compares one returned series with what was put; returns the number of mismatches."""
    bad = 0
    if len(vals) != len(truth):
        return abs(len(vals) - len(truth)) or 1
    for (_, vs), got in zip(sorted(truth.items()), vals):
        if stat == "Sum":
            ok = abs(got - sum(vs)) <= 1e-6 * max(1.0, abs(sum(vs)))
        elif stat == "Average":
            ok = abs(got - sum(vs) / len(vs)) <= 1e-6 * max(1.0, abs(sum(vs) / len(vs)))
        else:
            ok = min(vs) <= got <= max(vs)
        bad += not ok
    return bad


def bench(name, spec, args):
    server = Server(name, spec).start()
    try:
        c = Client(server.port)
        step_ms = args.minutes * 60_000 // args.points
        # Whole minutes, ending a minute ago: every period is complete and in the past.
        end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
        start = end - timedelta(minutes=args.minutes)
        start_ms = int(start.timestamp() * 1000)
        out = {}

        lat = []
        cpu0 = cpu_seconds(server.proc.pid)
        t_put = time.perf_counter()
        for first in range(0, args.points, BATCH):
            body = put_body(start, first, min(BATCH, args.points - first), step_ms)
            t = time.perf_counter()
            c.call("PutMetricData", body)
            lat.append(time.perf_counter() - t)
            if time.perf_counter() - t_put > args.put_budget_s:
                print(f"  {name}: PutMetricData budget of {args.put_budget_s}s spent after "
                      f"{first + BATCH} points", flush=True)
                break
        put_wall = time.perf_counter() - t_put
        put_cpu = cpu_seconds(server.proc.pid) - cpu0
        stored = min(args.points, len(lat) * BATCH)
        lat.sort()
        out["PutMetricData x1000"] = {
            "requests": len(lat), "points": stored,
            "p50_ms": statistics.median(lat) * 1000, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
            "cpu_ms": put_cpu / len(lat) * 1000, "points_per_s": stored / put_wall,
        }
        out["rss_mib_after_put"] = rss_kib(server.proc.pid) / 1024
        truth = expected(stored, step_ms, start_ms)
        print(f"  {name}: {stored} points put in {put_wall:.1f}s", flush=True)

        for stats in [(s,) for s in STATS] + [STATS]:
            label = "GetMetricData " + "+".join(stats)
            lat, bad = [], 0
            cpu0 = cpu_seconds(server.proc.pid)
            failed = None
            for _ in range(args.repeat):
                t = time.perf_counter()
                try:
                    xml = c.call("GetMetricData", query_params(stats, start, end))
                except RuntimeError as e:  # a peer without the statistic: reported, not fatal
                    failed = str(e)[:160]
                    c = Client(server.port)
                    break
                lat.append(time.perf_counter() - t)
                results = parse_results(xml)
                for stat, (times, vals) in zip(stats, results):
                    bad += check(stat, times, vals, truth)
                if len(results) != len(stats):
                    bad += 1
            cpu = cpu_seconds(server.proc.pid) - cpu0
            if failed:
                out[label] = {"error": failed}
                print(f"  {name}: {label}: failed: {failed}", flush=True)
                continue
            out[label] = {"p50_ms": statistics.median(lat) * 1000, "cpu_ms": cpu / len(lat) * 1000,
                          "mismatches": bad}
            print(f"  {name}: {label}: {statistics.median(lat) * 1000:.0f} ms, {bad} mismatching periods",
                  flush=True)
        return out
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="basalt,moto,ministack")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--minutes", type=int, default=1000, help="the range the points cover")
    ap.add_argument("--repeat", type=int, default=5, help="GetMetricData requests per statistic")
    ap.add_argument("--put-budget-s", type=float, default=900,
                    help="stop putting after this long (a slow peer then reads fewer points)")
    ap.add_argument("--basalt-disk", action="store_true",
                    help="run Basalt on a temporary data dir (SQLite on disk) instead of --ephemeral")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.servers = args.servers.split(",")
    results = {}
    specs = peer_specs(args)
    data = None
    if args.basalt_disk and "basalt" in specs:
        data = tempfile.mkdtemp(prefix="bench-cw-basalt-")
        base = specs["basalt"]["cmd"]

        def disk_cmd(port):
            out = []
            for a in base(port):
                out += ["--data-dir", data] if a == "--ephemeral" else [a]
            return out

        specs["basalt"] = {**specs["basalt"], "cmd": disk_cmd}
    try:
        run_all(specs, args, results)
    finally:
        if data:
            shutil.rmtree(data, ignore_errors=True)
    report(results, args)


def run_all(specs, args, results):
    for name, spec in specs.items():
        if not spec["available"]:
            print(f"{name}: skipped ({spec['why']})")
            continue
        print(f"{name} ...", flush=True)
        try:
            results[name] = bench(name, spec, args)
        except Exception as e:  # noqa: BLE001 - a peer without CloudWatch is reported, not fatal
            print(f"  {name}: failed: {e}", flush=True)


def report(results, args):
    if not results:
        return
    names = list(results)
    put = "PutMetricData x1000"
    print(f"\n{'':34}" + "".join(f"{n:>30}" for n in names))
    print(f"{'points stored':34}" + "".join(f"{results[n][put]['points']:>30}" for n in names))
    print(f"{'RSS after put (MiB)':34}" + "".join(f"{results[n]['rss_mib_after_put']:>30.0f}" for n in names))
    print(f"{put + ' (p50/p99 ms, CPU ms/req)':34}" + "".join(
        f"{results[n][put]['p50_ms']:>12.1f}{results[n][put]['p99_ms']:>9.1f}{results[n][put]['cpu_ms']:>9.1f}"
        for n in names))
    print(f"{'  points/s':34}" + "".join(f"{results[n][put]['points_per_s']:>30.0f}" for n in names))
    for op in (k for k in results[names[0]] if k.startswith("GetMetricData")):
        print(f"{op + ' (p50 ms, CPU ms/req)':34}" + "".join(
            f"{results[n][op]['p50_ms']:>21.1f}{results[n][op]['cpu_ms']:>9.1f}" if "p50_ms" in results[n].get(op, {})
            else f"{'error':>30}" for n in names))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
