#!/usr/bin/env python3
"""Side-by-side benchmark: Basalt vs. moto server vs. MiniStack, one at a time, on loopback.

For each server:
  * startup: time from spawn to the first successful HTTP answer (polled every 1 ms);
  * idle RSS: VmRSS of the server's process tree after start and one request;
  * per operation (S3 PutObject 1 KiB, S3 GetObject 1 KiB, STS GetCallerIdentity), with 1 and
    16 concurrent clients: throughput, p50/p99 latency, and server CPU time per request
    (delta of utime+stime of the server's process tree, children included, over the phase).

Load comes from `wrk` (a C load generator: keeps the client's own cost off the server's
books), aimed at presigned URLs made once with boto3 (a presigned URL can be reused for as
long as it is valid) and, for STS, at a SigV4 query-presigned GetCallerIdentity URL.  Without
wrk it falls back to a Python thread pool (numbers are then client-bound: say so when quoting).

  python bench/peers.py                      # all three, 5 s per phase
  python bench/peers.py --servers basalt,moto --duration 3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
KIB = b"x" * 1024


# ---------------------------------------------------------------------------------------
# process accounting from /proc
def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid):
    """utime+stime of the live tree, plus cutime+cstime of reaped children."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += utime + stime + cutime + cstime
    return total / CLK


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except OSError:
            pass
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# peers
def _which(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def peer_specs(args):
    basalt = Path(os.environ.get("BASALT_BIN", REPO / "target" / "release" / "basalt"))
    specs = {
        "basalt": dict(
            available=basalt.exists(),
            why=f"{basalt} not built",
            cmd=lambda port: [str(basalt), "serve", "--ephemeral", "--host", "127.0.0.1", "--port", str(port)],
            env={},
            health="/_basalt/health",
        ),
        "moto": dict(
            available=bool(_which("moto_server")),
            why="moto_server not on PATH (pip install 'moto[server]')",
            cmd=lambda port: [_which("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env={},
            health="/moto-api/",
        ),
        "ministack": dict(
            available=bool(os.environ.get("MINISTACK_BIN") or _which("ministack")),
            why="ministack not on PATH (pip install ministack, or set MINISTACK_BIN)",
            cmd=lambda port: [os.environ.get("MINISTACK_BIN") or _which("ministack")],
            env=lambda port: {"GATEWAY_PORT": str(port), "MINISTACK_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"},
            health="/_ministack/health",
        ),
    }
    return {k: specs[k] for k in args.servers}


class Server:
    def __init__(self, name, spec):
        self.name, self.spec = name, spec
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)

    def start(self, timeout=60):
        env = dict(os.environ)
        extra = self.spec["env"]
        env.update(extra(self.port) if callable(extra) else extra)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.spec["cmd"](self.port), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {Path(self.log.name).read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", self.spec["health"])
                r = c.getresponse()
                r.read()
                c.close()
                if r.status < 500:
                    self.startup_s = time.perf_counter() - t0
                    return self
            except OSError:
                pass
            time.sleep(0.001)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ---------------------------------------------------------------------------------------
# targets: presigned URLs
def make_targets(endpoint):
    import boto3
    from botocore.auth import SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    bucket = "bench-bucket"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="get-1k", Body=KIB)
    week = 6 * 24 * 3600
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "get-1k"}, ExpiresIn=week)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "put-1k"}, ExpiresIn=week)
    req = AWSRequest(method="GET", url=f"{endpoint}/?Action=GetCallerIdentity&Version=2011-06-15")
    SigV4QueryAuth(Credentials("test", "test"), "sts", "us-east-1", expires=week).add_auth(req)
    # fallback for servers that route a header-less GET / to S3 (moto): a header-signed POST,
    # replayed as is (none of the three verifies signatures in the configuration used here)
    form = b"Action=GetCallerIdentity&Version=2011-06-15"
    post = AWSRequest(method="POST", url=f"{endpoint}/", data=form,
                      headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), "sts", "us-east-1").add_auth(post)
    return {
        "s3_put_1k": [("PUT", put_url, KIB, {}, b"ETag")],
        "s3_get_1k": [("GET", get_url, None, {}, KIB)],
        "sts_get_caller_identity": [("GET", req.url, None, {}, b"GetCallerIdentityResult"),
                                    ("POST", f"{endpoint}/", form, dict(post.headers.items()), b"GetCallerIdentityResult")],
    }


def check_target(method, url, body, headers, expect):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    hdrs = " ".join(f"{k.lower()}: {v}" for k, v in r.getheaders()).encode()
    c.close()
    if r.status != 200 or (expect not in data and expect.lower() not in hdrs):
        return f"HTTP {r.status}: {data[:200]!r}"
    return None


# ---------------------------------------------------------------------------------------
# load generators
def _lua_str(b):
    if isinstance(b, bytes):
        b = b.decode()
    return "[==[" + b + "]==]"


def wrk_script(method, body, headers):
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {_lua_str(body)}")
    for k, v in headers.items():
        # `[ [==[` with a space: `[[` would open a Lua long string.
        lines.append(f"wrk.headers[ {_lua_str(k)} ] = {_lua_str(v)}")
    return "\n".join(lines) + "\n"


def _ms(tok):
    tok = tok.strip()
    for suf, mul in (("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 6e4)):
        if tok.endswith(suf):
            return float(tok[: -len(suf)]) * mul
    return float(tok)


def run_wrk(method, url, body, headers, conns, duration):
    args = ["wrk", "-t", str(min(conns, 4)), "-c", str(conns), "-d", f"{duration}s", "--latency", "--timeout", "10s"]
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(wrk_script(method, body, headers))
    lua.close()
    args += ["-s", lua.name]
    try:
        out = subprocess.run(args + [url], capture_output=True, text=True, timeout=duration + 30).stdout
    finally:
        os.unlink(lua.name)
    res = {"requests": 0, "errors": 0, "p50_ms": None, "p99_ms": None, "rps": 0.0}
    for ln in out.splitlines():
        s = ln.strip()
        if " requests in " in s:
            res["requests"] = int(s.split()[0])
        elif s.startswith("Requests/sec:"):
            res["rps"] = float(s.split()[1])
        elif s.startswith("50%"):
            res["p50_ms"] = _ms(s.split()[1])
        elif s.startswith("99%"):
            res["p99_ms"] = _ms(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            res["errors"] += int(s.split()[-1])
        elif s.startswith("Socket errors:"):
            res["errors"] += sum(int(x.strip().split()[-1]) for x in s.split(":", 1)[1].split(","))
    return res


def run_python(method, url, body, headers, conns, duration):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    lat, errors = [], [0]
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def worker():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        mine = []
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                c.close()
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                continue
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(conns)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    lat.sort()
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: None)
    return {"requests": len(lat), "errors": errors[0], "rps": len(lat) / el, "p50_ms": q(0.50), "p99_ms": q(0.99)}


# ---------------------------------------------------------------------------------------
def bench_server(name, spec, args, load):
    srv = Server(name, spec).start()
    try:
        r = {"startup_ms": srv.startup_s * 1000}
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        c.request("GET", spec["health"])
        c.getresponse().read()
        c.close()
        time.sleep(0.2)
        r["idle_rss_mib"] = rss_kib(srv.proc.pid) / 1024
        targets = make_targets(srv.endpoint)
        r["ops"] = {}
        r["not_benchmarked"] = {}
        for op, candidates in targets.items():
            chosen, bad = None, None
            for cand in candidates:
                method, url, body, headers, expect = cand
                bad = check_target(method, url, body, headers, expect)
                if not bad:
                    chosen = cand
                    break
            if chosen is None:
                r["not_benchmarked"][op] = bad
                print(f"  {name} {op}: not benchmarked ({bad})", file=sys.stderr)
                continue
            method, url, body, headers, _ = chosen
            for conns in args.concurrency:
                cpu0, t0 = cpu_seconds(srv.proc.pid), time.perf_counter()
                res = load(method, url, body, headers, conns, args.duration)
                res["request"] = f"{method} {'presigned' if 'X-Amz-Signature' in url else 'header-signed'}"
                cpu1 = cpu_seconds(srv.proc.pid)
                res["cpu_us_per_req"] = (cpu1 - cpu0) / res["requests"] * 1e6 if res["requests"] else None
                res["wall_s"] = time.perf_counter() - t0
                r["ops"][f"{op}@{conns}"] = res
                print(f"  {name} {op} c={conns}: {res['rps']:.0f} req/s p50={res['p50_ms']} ms "
                      f"p99={res['p99_ms']} ms cpu/req={res['cpu_us_per_req'] and round(res['cpu_us_per_req'])} us "
                      f"errors={res['errors']}", file=sys.stderr)
        r["rss_after_load_mib"] = rss_kib(srv.proc.pid) / 1024
        return r
    finally:
        srv.stop()


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def print_table(results):
    names = list(results)
    rows = [("startup (ms)", "startup_ms", 1), ("idle RSS (MiB)", "idle_rss_mib", 1),
            ("RSS after load (MiB)", "rss_after_load_mib", 1)]
    w = 44
    base = results.get("basalt")
    peers = [n for n in names if n != "basalt"] if base else []
    print("\n" + "metric".ljust(w) + "".join(n.rjust(14) for n in names)
          + "".join(f"basalt/{n}".rjust(18) for n in peers))

    def line(label, get, nd):
        vals = [get(results[n]) for n in names]
        ratios = []
        for n in peers:
            b, p = get(base), get(results[n])
            ratios.append(f"{b / p:.3f}" if isinstance(b, (int, float)) and isinstance(p, (int, float)) and p else "-")
        print(label.ljust(w) + "".join(fmt(v, nd).rjust(14) for v in vals) + "".join(r.rjust(18) for r in ratios))

    for label, key, nd in rows:
        line(label, lambda r, k=key: r.get(k), nd)
    op_keys = []
    for n in names:
        for k in results[n].get("ops", {}):
            if k not in op_keys:
                op_keys.append(k)
    for k in op_keys:
        for label, f, nd in (("req/s", "rps", 0), ("p50 ms", "p50_ms", 2), ("p99 ms", "p99_ms", 2),
                             ("server CPU us/req", "cpu_us_per_req", 0), ("errors", "errors", 0)):
            line(f"{k} {label}", lambda r, k=k, f=f: r.get("ops", {}).get(k, {}).get(f), nd)
    print("\nratios are basalt/peer: < 1 is better for time, memory and CPU; > 1 is better for req/s.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="basalt,moto,ministack", type=lambda s: [x for x in s.split(",") if x])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per phase (default 5)")
    ap.add_argument("--concurrency", default="1,16", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    args.duration = max(1, int(round(args.duration)))

    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk not installed (apt-get install -y wrk)")
    load = run_wrk if use_wrk else run_python
    print(f"load generator: {'wrk' if use_wrk else 'python threads (client-bound!)'}; "
          f"{args.duration}s per phase; {os.cpu_count()} CPUs", file=sys.stderr)

    results, skipped = {}, {}
    for name, spec in peer_specs(args).items():
        if not spec["available"]:
            skipped[name] = spec["why"]
            print(f"skip {name}: {spec['why']}", file=sys.stderr)
            continue
        print(f"== {name}", file=sys.stderr)
        try:
            results[name] = bench_server(name, spec, args, load)
        except Exception as e:  # keep going with the other peers
            skipped[name] = repr(e)
            print(f"  {name} failed: {e!r}", file=sys.stderr)
    if results:
        print_table(results)
    if skipped:
        print("\nskipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "loadgen": "wrk" if use_wrk else "python", "duration_s": args.duration,
            "cpus": os.cpu_count(), "results": results, "skipped": skipped}, indent=2))


if __name__ == "__main__":
    main()
