"""Crash consistency: whatever PutObject acknowledged survives `kill -9`."""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time

import pytest

from conftest import BasaltServer, make_client_factory, unique


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_acknowledged_puts_survive_kill9(shape_checker, round_):
    with tempfile.TemporaryDirectory(prefix="basalt-durable-") as data_dir:
        srv = BasaltServer(data_dir=data_dir, name="basalt-durable").start()
        mk = make_client_factory(shape_checker, srv.endpoint)
        bucket = unique("dur")
        mk("s3").create_bucket(Bucket=bucket)
        acked: dict[str, str] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(wid):
            c = mk("s3", check=False, connect_timeout=2, read_timeout=5)
            i = 0
            while not stop.is_set():
                key = f"w{wid}/{i:06d}"
                size = (i * 7919 + wid * 104729) % (300 * 1024) + (0 if i % 5 else 0)
                body = os.urandom(size)
                try:
                    c.put_object(Bucket=bucket, Key=key, Body=body)
                except Exception:
                    return  # server gone: this put was not acknowledged
                with lock:
                    acked[key] = hashlib.md5(body).hexdigest()
                i += 1

        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5 + round_ * 0.37)
        srv.kill9()
        stop.set()
        for t in threads:
            t.join(10)
        with lock:
            snapshot = dict(acked)
        assert snapshot, "no put was acknowledged before the kill"

        srv2 = BasaltServer(data_dir=data_dir, name="basalt-durable-restart").start()
        try:
            c = mk("s3", endpoint_url=srv2.endpoint)
            missing, corrupt = [], []
            for key, md5 in sorted(snapshot.items()):
                try:
                    got = c.get_object(Bucket=bucket, Key=key)["Body"].read()
                except Exception as e:
                    missing.append(f"{key}: {e}")
                    continue
                if hashlib.md5(got).hexdigest() != md5:
                    corrupt.append(key)
            assert not missing, f"{len(missing)}/{len(snapshot)} acknowledged objects lost: {missing[:5]}"
            assert not corrupt, f"{len(corrupt)} objects differ after restart: {corrupt[:5]}"
            # listing agrees with the store: every acked key is listed exactly once
            listed = [o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                      for o in p.get("Contents", [])]
            assert len(listed) == len(set(listed))
            assert set(snapshot) <= set(listed)
            # the restarted server still writes
            c.put_object(Bucket=bucket, Key="after-restart", Body=b"ok")
            assert c.get_object(Bucket=bucket, Key="after-restart")["Body"].read() == b"ok"
        finally:
            srv2.stop()
            panics = srv.panics() + srv2.panics()
            assert not panics, "\n".join(panics)
