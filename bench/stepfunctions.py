#!/usr/bin/env python3
"""Step Functions side by side: Basalt vs. moto server (its opt-in execution, which runs
LocalStack's ASL interpreter), one at a time, in one run.

For each server:
  pass-chain    a STANDARD machine of --chain (1,000) Pass states, run --runs times:
                state transitions per second (states entered / time from the StartExecution
                request until DescribeExecution, polled every 2 ms, reports it ended) and
                server CPU per transition;
  inline-map    an EXPRESS machine whose inline Map runs one Pass state over --items (10,000)
                items given in the input, through StartSyncExecution: transitions per second
                and CPU per transition (each item's Pass state is one transition). EXPRESS
                because a STANDARD execution stops at 25,000 history events, as AWS's does,
                and each iteration records four;
  sync-express  StartSyncExecution of a 10-state EXPRESS Pass chain, --sync-calls (200)
                sequential calls: latency p50/p99 and server CPU per call;
  waits         --waits (1,000) STANDARD executions started back to back by one client, each
                waiting 1 s: how late each one ends after its due time (startDate + 1 s),
                p50 and max; the issue's bar is every one within 2 s.

Every execution's output is checked (the chain's counter, the Map's 10,000 items in order),
so a server that answers without running the machine is caught. Server CPU is utime+stime of
the server's process tree over the phase (/proc). Basalt runs --ephemeral by default (state in
memory, as moto keeps it); --basalt-disk runs it on SQLite in a temporary data dir.

  python bench/stepfunctions.py                       # basalt and moto
  python bench/stepfunctions.py --servers basalt --basalt-disk
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from botocore.exceptions import ClientError  # noqa: E402
from peers import Server, cpu_seconds, peer_specs  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/bench"
DONE = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def client(endpoint, pool=32):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "stepfunctions", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 0},
                      max_pool_connections=pool, read_timeout=300))


def chain(n):
    """n Pass states, each adding one to $.n (so the output proves every state ran)."""
    states = {}
    for i in range(n):
        s = {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}}
        if i + 1 < n:
            s["Next"] = f"S{i + 1}"
        else:
            s["End"] = True
        states[f"S{i}"] = s
    return {"StartAt": "S0", "States": states}


def inline_map():
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "End": True}}}}}}


def waiter():
    return {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}


def create(sfn, name, definition, kind="STANDARD"):
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE,
                                    type=kind)["stateMachineArn"]


def wait_done(sfn, arn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] in DONE:
            return d
        time.sleep(0.002)
    raise TimeoutError(f"{arn} still running after {timeout} s")


def run_once(sfn, machine, payload, timeout, sync):
    """One execution: (seconds from the start request to the client seeing it end, its answer).
    STANDARD executions are polled every 2 ms; EXPRESS ones run through StartSyncExecution."""
    t0 = time.perf_counter()
    if sync:
        d = sfn.start_sync_execution(stateMachineArn=machine, input=json.dumps(payload))
    else:
        arn = sfn.start_execution(stateMachineArn=machine, name=f"run-{time.time_ns()}",
                                  input=json.dumps(payload))["executionArn"]
        d = wait_done(sfn, arn, timeout)
    took = time.perf_counter() - t0
    if d["status"] != "SUCCEEDED":
        raise RuntimeError(f"execution {d['status']}: {d.get('error')} {d.get('cause', '')[:300]}")
    return took, d


def transitions_phase(server, sfn, machine, payload, transitions, runs, check, timeout, sync=False):
    """`machine` is a function giving the ARN to run next (moto needs a fresh server state per
    execution, see `moto_once`)."""
    secs, cpu = [], 0.0
    for _ in range(runs):
        arn = machine()
        c0 = cpu_seconds(server.proc.pid)
        took, d = run_once(sfn, arn, payload, timeout, sync)
        cpu += cpu_seconds(server.proc.pid) - c0
        check(json.loads(d["output"]))
        secs.append(took)
    best, med = min(secs), statistics.median(secs)
    return {"transitions": transitions, "runs": runs, "best_s": best, "median_s": med,
            "per_s": transitions / max(med, 1e-6), "cpu_us": cpu / (runs * transitions) * 1e6}


def sync_phase(server, sfn, machine, calls):
    lat, c0 = [], cpu_seconds(server.proc.pid)
    for i in range(calls):
        t0 = time.perf_counter()
        r = sfn.start_sync_execution(stateMachineArn=machine, input=json.dumps({"n": i}))
        lat.append(time.perf_counter() - t0)
        if r["status"] != "SUCCEEDED" or json.loads(r["output"])["n"] != i + 10:
            raise RuntimeError(f"sync execution answered {r['status']} {r.get('output')}")
    cpu = cpu_seconds(server.proc.pid) - c0
    lat.sort()
    return {"calls": calls, "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, "cpu_us": cpu / calls * 1e6}


def waits_phase(server, sfn, machine, n, timeout):
    t0 = time.monotonic()
    # One client: moto's server fails concurrent StartExecution calls.
    started = [sfn.start_execution(stateMachineArn=machine, name=f"w{i}")["executionArn"] for i in range(n)]
    start_s = time.monotonic() - t0
    late = []
    deadline = time.monotonic() + timeout
    pending = list(started)

    def describe(arn):
        return sfn.describe_execution(executionArn=arn)

    with ThreadPoolExecutor(8) as pool:
        while pending and time.monotonic() < deadline:
            still = []
            for arn, d in zip(pending, pool.map(describe, pending)):
                if d["status"] in DONE:
                    if d["status"] != "SUCCEEDED":
                        raise RuntimeError(f"wait execution {d['status']}")
                    due = d["startDate"].timestamp() + 1.0
                    late.append(d["stopDate"].timestamp() - due)
                else:
                    still.append(arn)
            pending = still
            if pending:
                time.sleep(0.05)
    if pending:
        raise TimeoutError(f"{len(pending)} of {n} waiting executions unfinished after {timeout} s")
    late.sort()
    return {"executions": n, "start_s": start_s, "p50_late_s": late[len(late) // 2], "max_late_s": late[-1],
            "within_2s": sum(1 for x in late if x <= 2.0)}


def moto_api(server, path, body=None):
    req = urllib.request.Request(f"{server.endpoint}/moto-api/{path}", method="POST",
                                 data=json.dumps(body).encode() if body is not None else b"",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def enable_moto_execution(server):
    moto_api(server, "config", {"stepfunctions": {"execute_state_machine": True}})


def machine_factory(name, server, sfn, machine_name, definition, kind="STANDARD"):
    """What `transitions_phase` runs. moto 5.2.1's executing backend deep-copies the state
    machine on StartExecution, and after its first execution that copy reaches a lock and every
    later StartExecution answers 500; so for moto each run resets its state and creates the
    machine again (outside the timed part)."""
    if name != "moto":
        arn = create(sfn, machine_name, definition, kind)
        return lambda: arn

    def fresh():
        moto_api(server, "reset")
        enable_moto_execution(server)
        return create(sfn, machine_name, definition, kind)
    return fresh


def phase(out, key, name, fn):
    try:
        out[key] = fn()
    except Exception as e:  # a peer that cannot run a phase is reported, not fatal
        out[key] = {"error": repr(e)[:300]}
    r = out[key]
    if "error" in r:
        print(f"  {name} {key}: failed: {r['error']}", flush=True)
    elif "per_s" in r:
        print(f"  {name} {key}: {r.get('note', '')} {r['transitions']} transitions, median {r['median_s'] * 1e3:.1f} ms "
              f"(best {r['best_s'] * 1e3:.1f}), {r['per_s']:.0f}/s, CPU {r['cpu_us']:.1f} us/transition",
              flush=True)
    elif "p50_ms" in r:
        print(f"  {name} {key}: p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms, CPU {r['cpu_us']:.0f} us/call",
              flush=True)
    else:
        print(f"  {name} {key}: {r['executions']} started in {r['start_s']:.2f} s, late p50 "
              f"{r['p50_late_s'] * 1e3:.0f} ms max {r['max_late_s'] * 1e3:.0f} ms, "
              f"{r['within_2s']}/{r['executions']} within 2 s", flush=True)


def bench(name, spec, args):
    server = Server(name, spec).start()
    try:
        if name == "moto":
            enable_moto_execution(server)
        sfn = client(server.endpoint)
        runs = args.runs if name == "basalt" else args.peer_runs
        out = {}
        m_chain = machine_factory(name, server, sfn, "chain", chain(args.chain))

        def check_chain(o):
            if o.get("n") != args.chain:
                raise RuntimeError(f"chain output {o}")

        phase(out, "pass-chain", name, lambda: transitions_phase(
            server, sfn, m_chain, {"n": 0}, args.chain, runs, check_chain, args.timeout))
        items = list(range(args.items))

        def check_map(o):
            if o != items:
                raise RuntimeError(f"map output has {len(o) if isinstance(o, list) else o!r} items, not in order")

        def run_map():
            try:
                m_map = machine_factory(name, server, sfn, "map", inline_map(), "EXPRESS")
                return transitions_phase(server, sfn, m_map, {"items": items}, args.items, runs, check_map,
                                         args.timeout, sync=True)
            except ClientError as e:
                if "start_sync_execution" not in str(e) and "StartSyncExecution" not in str(e):
                    raise
            # moto has no StartSyncExecution: its Map runs as STANDARD (it has no history limit)
            m_map = machine_factory(name, server, sfn, "map-standard", inline_map())
            r = transitions_phase(server, sfn, m_map, {"items": items}, args.items, runs, check_map, args.timeout)
            return {**r, "note": "STANDARD (no StartSyncExecution)"}

        phase(out, "inline-map", name, run_map)
        phase(out, "sync-express", name, lambda: sync_phase(
            server, sfn, machine_factory(name, server, sfn, "express", chain(10), "EXPRESS")(), args.sync_calls))
        if name == "moto":
            out["waits"] = {"error": "moto 5.2.1 runs one execution per server state (see machine_factory)"}
            print(f"  {name} waits: n/a ({out['waits']['error']})")
        else:
            phase(out, "waits", name, lambda: waits_phase(
                server, client(server.endpoint), create(sfn, "waits", waiter()), args.waits, args.timeout))
        return out
    finally:
        server.stop()


def report(results):
    print(f"\n{'phase':14}" + "".join(f"{n:>34}" for n in results))
    for key in ("pass-chain", "inline-map", "sync-express", "waits"):
        row = f"{key:14}"
        for n in results:
            r = results[n].get(key, {})
            if "error" in r or not r:
                cell = "failed"
            elif "per_s" in r:
                cell = f"{r['per_s']:.0f}/s, {r['cpu_us']:.1f} us CPU"
            elif "p50_ms" in r:
                cell = f"p50 {r['p50_ms']:.2f} / p99 {r['p99_ms']:.2f} ms"
            else:
                cell = f"late max {r['max_late_s'] * 1e3:.0f} ms ({r['within_2s']}/{r['executions']})"
            row += f"{cell:>34}"
        print(row)
    if "basalt" in results:
        b = results["basalt"]
        for peer in (p for p in results if p != "basalt"):
            print(f"\nbasalt / {peer} (target for transitions/s: >= 50x):")
            for key in ("pass-chain", "inline-map"):
                x, y = b.get(key, {}).get("per_s"), results[peer].get(key, {}).get("per_s")
                print(f"  {key:14} transitions/s {x / y:8.1f}x" if x and y else f"  {key:14} n/a")
            x, y = b.get("sync-express", {}).get("p50_ms"), results[peer].get("sync-express", {}).get("p50_ms")
            print(f"  {'sync-express':14} p50 latency  {y / x:8.1f}x lower" if x and y else f"  {'sync-express':14} n/a")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="basalt,moto")
    ap.add_argument("--chain", type=int, default=1000, help="Pass states in the chain")
    ap.add_argument("--items", type=int, default=10000, help="items of the inline Map")
    ap.add_argument("--runs", type=int, default=5, help="Basalt's executions per transitions phase")
    ap.add_argument("--peer-runs", type=int, default=1, help="the peers' (moto: 20 s per chain)")
    ap.add_argument("--sync-calls", type=int, default=200)
    ap.add_argument("--waits", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=600, help="seconds one phase may wait for executions")
    ap.add_argument("--basalt-disk", action="store_true",
                    help="run Basalt on a temporary data dir (SQLite on disk) instead of --ephemeral")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.servers = args.servers.split(",")
    specs = peer_specs(args)
    if args.basalt_disk and "basalt" in specs:
        data = tempfile.mkdtemp(prefix="bench-sfn-basalt-")
        base = specs["basalt"]["cmd"]
        specs["basalt"] = {**specs["basalt"], "cmd": lambda port: [
            x for a in base(port) for x in (["--data-dir", data] if a == "--ephemeral" else [a])]}
    results = {}
    for name, spec in specs.items():
        if not spec["available"]:
            print(f"{name}: skipped ({spec['why']})")
            continue
        print(f"{name} ...", flush=True)
        try:
            results[name] = bench(name, spec, args)
        except Exception as e:  # keep going with the other peers
            print(f"  {name} failed: {e!r}", flush=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
