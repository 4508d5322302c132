"""Basalt as a cluster: two nodes on PostgreSQL + an S3-compatible store behind nginx, requests
alternating between the nodes, run through

1. the boto3 S3/STS compatibility suite (tests/compat/test_s3.py, test_sts.py),
2. the shared acceptance scenarios of the given areas (skipped when ../shared is absent),
3. the failure tests of tests/cluster (kill -9 of a node during uploads, database outage).

`make test-cluster` runs it with a throwaway PostgreSQL and S3-compatible store.

    python tests/cluster/run.py [AREAS]
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cluster import REPO, Cluster, require_env  # noqa: E402


def main() -> int:
    require_env()
    areas = sys.argv[1] if len(sys.argv) > 1 else "s3,bedrock,streaming"
    py = sys.executable
    failed = []
    cluster = Cluster(n=2).start()
    print(f"cluster: nodes {[n.endpoint for n in cluster.nodes]} behind {cluster.endpoint}; "
          f"state {cluster.state}, blobs {cluster.blobs}", flush=True)
    try:
        env = dict(os.environ, BASALT_ENDPOINT=cluster.endpoint)
        # nginx refuses URIs whose dot-segments climb above the root (400 before any node sees
        # them), so the test of keys such as `../../etc/passwd` goes to a node directly (it
        # still runs on the shared database and object store).
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_s3.py",
                            "tests/compat/test_sts.py", "-k",
                            "not test_key_is_not_a_path"], cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat S3/STS through the cluster")
        # Lambda and Logs through the balancer (the retry and kill -9 tests start servers of
        # their own, so they run in the single-node suite; provisioned environments are
        # warmed by the node that took the request only, so that test is single-node too).
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_lambda.py",
                            "tests/compat/test_logs.py", "-k",
                            "not retried_twice and not kill_9 and not provisioned"], cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat Lambda/Logs through the cluster")
        # Queues, events, topics, metrics and S3 notifications: deliveries, visibility timeouts,
        # schedules and alarm evaluations run on the leases of whichever node claims them
        # (the kill -9 and retry-timing tests start servers of their own; the minute-long
        # schedule test runs in the single-node suite).
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_sqs.py",
                            "tests/compat/test_events.py", "tests/compat/test_sns.py",
                            "tests/compat/test_cloudwatch.py", "tests/compat/test_s3_notifications.py",
                            "-k", "not kill_9 and not scheduled_rule_fires and not http_confirmation_and_notification"
                            " and not failed_deliveries_go_to_the_dead_letter_queue"],
                           cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat SQS/EventBridge/SNS/CloudWatch/S3 notifications through the cluster")
        # DynamoDB: conditional writes, transactions and index maintenance from two nodes at
        # once (the kill -9 tests start servers of their own).
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_dynamodb.py",
                            "tests/compat/test_dynamodb_items.py", "tests/compat/test_dynamodb_query.py",
                            "tests/compat/test_dynamodb_transactions.py"], cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat DynamoDB through the cluster")
        # Step Functions: executions stepped, timers fired and tasks run on the leases of
        # whichever node claims them (the kill -9 tests in test_stepfunctions_durability.py
        # start servers of their own).
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_stepfunctions.py",
                            "tests/compat/test_stepfunctions_tasks.py"], cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat Step Functions through the cluster")
        env = dict(os.environ, BASALT_ENDPOINT=cluster.nodes[1].endpoint)
        r = subprocess.run([py, "-m", "pytest", "-q", "tests/compat/test_s3.py", "-k",
                            "test_key_is_not_a_path"], cwd=REPO, env=env)
        if r.returncode != 0:
            failed.append("compat S3 test_key_is_not_a_path on a cluster node")
        acc = REPO.parent / "shared" / "acceptance"
        if acc.is_dir():
            env = dict(os.environ, AWS_ENDPOINT_URL=cluster.endpoint, AWS_ACCESS_KEY_ID="test",
                       AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
            r = subprocess.run([py, "-m", "pytest", "-q", str(acc), "--areas", areas], cwd=acc,
                               env=env)
            if r.returncode not in (0, 5):
                failed.append(f"acceptance {areas} through the cluster")
        else:
            print("acceptance: skipped (../shared absent)")
        # Both nodes served the suites, and each reports its shared backends as reachable.
        for n in cluster.nodes:
            metrics = urllib.request.urlopen(n.endpoint + "/_basalt/metrics").read().decode()
            served = sum(int(m) for m in re.findall(
                r'^basalt_requests_total\{service="s3",[^}]*\} (\d+)$', metrics, re.M))
            health = json.load(urllib.request.urlopen(n.endpoint + "/_basalt/health"))["node"]
            print(f"{n.name}: {served} S3 requests; health {json.dumps(health)}", flush=True)
            if served < 100:
                failed.append(f"{n.name} served only {served} S3 requests: not alternating")
            if (health["state"]["backend"], health["blobs"]["backend"]) != ("postgresql", "s3") \
                    or health["state"]["status"] != "ok" or health["blobs"]["status"] != "ok":
                failed.append(f"{n.name} health: {health}")
    finally:
        cluster.stop()
        panics = cluster.panics()
        cluster.close()
    if panics:
        failed.append("node panics:\n" + "\n".join(panics))
    r = subprocess.run([py, "-m", "pytest", "-q", str(HERE)], cwd=REPO)
    if r.returncode != 0:
        failed.append("cluster failure tests")
    for f in failed:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
