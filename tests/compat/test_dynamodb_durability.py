"""DynamoDB crash consistency: `kill -9` while clients write, restart on the same data dir.

* every acknowledged PutItem is there, attribute for attribute;
* a TransactWriteItems is all-or-nothing: each writer runs numbered transactions that put
  three items and bump the writer's counter under a condition, so after the restart the
  counter says how many committed, and exactly those transactions' items exist;
* a GSI never disagrees with its table: writers also move items between GSI partitions, and
  after the restart every GSI partition holds exactly the table's items with that key.

The phases are plain functions of an endpoint (hammer_*, verify_*), so they can be pointed at
any server by hand; the tests drive them around a Basalt killed with SIGKILL.
"""
from __future__ import annotations

import tempfile
import threading
import time

import pytest

from conftest import BasaltServer, make_client_factory, unique
from ddb_helpers import N, S, create_table

WRITERS = 4
GROUPS = [f"g{i}" for i in range(5)]


def make_table(ddb):
    return create_table(ddb, name=unique("dur"), gsis=[{"IndexName": "by-g", "hash": ("g", "S"), "range": ("pk", "S")}])


def hammer_puts_and_moves(mk, table, stop, acked, lock, wid):
    """Puts new items and moves old ones to another GSI partition; records what was acked."""
    c = mk("dynamodb", check=False, connect_timeout=2, read_timeout=5)
    i = 0
    while not stop.is_set():
        pk = f"w{wid}-{i:06d}"
        item = {"pk": S(pk), "g": S(GROUPS[i % len(GROUPS)]), "n": N(i), "body": S("x" * (i % 700))}
        try:
            c.put_item(TableName=table, Item=item)
        except Exception:
            return  # server gone: not acknowledged
        with lock:
            acked[pk] = item
        if i >= 3:
            old = f"w{wid}-{i - 3:06d}"
            moved = GROUPS[(i * 7) % len(GROUPS)]
            try:
                c.update_item(TableName=table, Key={"pk": S(old)}, UpdateExpression="SET g = :g",
                              ExpressionAttributeValues={":g": S(moved)})
            except Exception:
                with lock:  # unknown outcome: either group is acceptable
                    acked[old] = {**acked[old], "g": None}
                return
            with lock:
                acked[old] = {**acked[old], "g": S(moved)}
        i += 1


def verify_puts(ddb, table, acked):
    missing, wrong = [], []
    for pk, want in sorted(acked.items()):
        got = ddb.get_item(TableName=table, Key={"pk": S(pk)}, ConsistentRead=True).get("Item")
        if got is None:
            missing.append(pk)
            continue
        cmp = {k: v for k, v in want.items() if v is not None}
        if {k: v for k, v in got.items() if k in cmp} != cmp or set(got) != set(want):
            wrong.append((pk, got, want))
    assert not missing, f"{len(missing)}/{len(acked)} acknowledged items lost: {missing[:5]}"
    assert not wrong, f"{len(wrong)} items differ after restart: {wrong[:2]}"


def verify_gsi_agrees(ddb, table):
    rows = [i for p in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True) for i in p["Items"]]
    for g in GROUPS:
        want = sorted((i["pk"]["S"], i["n"]["N"]) for i in rows if i.get("g") == S(g))
        got = sorted((i["pk"]["S"], i["n"]["N"]) for p in ddb.get_paginator("query").paginate(
            TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": S(g)}) for i in p["Items"])
        assert got == want, f"GSI partition {g}: {len(got)} entries, table has {len(want)}; " \
                            f"extra {sorted(set(got) - set(want))[:3]} missing {sorted(set(want) - set(got))[:3]}"
    return len(rows)


def hammer_transactions(mk, table, stop, acked, lock, wid):
    """Transaction n puts three items tagged n and moves the writer's counter from n to n+1."""
    c = mk("dynamodb", check=False, connect_timeout=2, read_timeout=5)
    c.put_item(TableName=table, Item={"pk": S(f"ctr-{wid}"), "n": N(0), "g": S("ctr")})
    with lock:
        acked[wid] = 0
    n = 0
    while not stop.is_set():
        items = [{"Put": {"TableName": table, "Item": {"pk": S(f"tx-{wid}-{n}-{k}"), "g": S(GROUPS[k]), "n": N(n)}}}
                 for k in range(3)]
        items.append({"Update": {"TableName": table, "Key": {"pk": S(f"ctr-{wid}")},
                                 "UpdateExpression": "SET n = :next",
                                 "ConditionExpression": "n = :cur",
                                 "ExpressionAttributeValues": {":cur": N(n), ":next": N(n + 1)}}})
        try:
            c.transact_write_items(TransactItems=items)
        except Exception:
            return
        n += 1
        with lock:
            acked[wid] = n


def verify_transactions(ddb, table, acked):
    for wid, done in acked.items():
        ctr = int(ddb.get_item(TableName=table, Key={"pk": S(f"ctr-{wid}")}, ConsistentRead=True)["Item"]["n"]["N"])
        # The one in flight at the kill may or may not have committed, as a whole.
        assert done <= ctr <= done + 1, f"writer {wid}: {done} acknowledged, counter says {ctr}"
        for n in range(ctr + 2):
            present = ["Item" in ddb.get_item(TableName=table, Key={"pk": S(f"tx-{wid}-{n}-{k}")},
                                              ConsistentRead=True) for k in range(3)]
            want = n < ctr
            assert present == [want] * 3, f"writer {wid} transaction {n}: items present {present}, counter {ctr}"


@pytest.fixture
def crash_dir():
    with tempfile.TemporaryDirectory(prefix="basalt-ddb-durable-") as d:
        yield d


def run_crash(shape_checker, data_dir, hammer, seconds=1.5):
    """Starts a Basalt, runs `hammer` in WRITERS threads, kill -9 after `seconds`, restarts on
    the same data dir; returns both servers, a client factory for the second, the table and
    what was acknowledged."""
    srv = BasaltServer(data_dir=data_dir, name="basalt-ddb-durable").start()
    mk = make_client_factory(shape_checker, srv.endpoint)
    table = make_table(mk("dynamodb"))
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    threads = [threading.Thread(target=hammer, args=(mk, table, stop, acked, lock, w), daemon=True)
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(10)
    with lock:
        snapshot = dict(acked)
    srv2 = BasaltServer(data_dir=data_dir, name="basalt-ddb-durable-restart").start()
    return srv, srv2, make_client_factory(shape_checker, srv2.endpoint), table, snapshot


def finish(srv, srv2, ddb, table):
    try:
        # The restarted server still writes, and its index follows.
        ddb.put_item(TableName=table, Item={"pk": S("after-restart"), "g": S(GROUPS[0]), "n": N(-1)})
        got = ddb.query(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g AND pk = :p",
                        ExpressionAttributeValues={":g": S(GROUPS[0]), ":p": S("after-restart")})
        assert got["Count"] == 1
    finally:
        srv2.stop()
        panics = srv.panics() + srv2.panics()
        assert not panics, "\n".join(panics)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(2))
def test_acknowledged_puts_survive_and_gsi_agrees(shape_checker, crash_dir, round_):
    srv, srv2, mk, table, acked = run_crash(shape_checker, crash_dir, hammer_puts_and_moves, 1.5 + round_ * 0.41)
    assert acked, "no put was acknowledged before the kill"
    ddb = mk("dynamodb")
    verify_puts(ddb, table, acked)
    assert verify_gsi_agrees(ddb, table) >= len(acked)
    finish(srv, srv2, ddb, table)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(2))
def test_transactions_are_all_or_nothing_across_kill_9(shape_checker, crash_dir, round_):
    srv, srv2, mk, table, acked = run_crash(shape_checker, crash_dir, hammer_transactions, 1.5 + round_ * 0.37)
    assert sum(acked.values()) > 0, "no transaction was acknowledged before the kill"
    ddb = mk("dynamodb")
    verify_transactions(ddb, table, acked)
    verify_gsi_agrees(ddb, table)
    finish(srv, srv2, ddb, table)
