"""Fixtures of Basalt's compatibility suite: a real server process, boto3 clients that
validate every response against botocore's shapes, and helpers.

Environment:
  BASALT_BIN       server binary (default <repo>/target/release/basalt)
  BASALT_ENDPOINT  use an already running server instead of starting one (auth off)
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapecheck import ShapeChecker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
BASALT_BIN = Path(os.environ.get("BASALT_BIN", REPO / "target" / "release" / "basalt"))
REGION = "us-east-1"
ACCOUNT = "000000000000"
HEALTH_TIMEOUT_S = 10.0
PANIC_MARKERS = ("panicked at", "RUST_BACKTRACE", "stack backtrace")


# The files whose tests run the chat model. Under pytest-xdist (`make test-compat` runs two
# workers) they form one work unit, run by one worker one after the other: llama.cpp's threads
# meet at spin barriers after every operation, and two generations on two cores preempt each
# other's spinning threads so badly that both run several times slower than in turn. The other
# worker takes the rest, which mostly waits on the server's clocks (schedules, retries, leases).
CHAT_MODEL_FILES = frozenset({
    "test_bedrock.py", "test_bedrock_agents.py", "test_bedrock_agents_collaboration.py",
    "test_bedrock_batch.py", "test_bedrock_guardrails.py", "test_engine_workers.py",
    "test_knowledge_bases.py", "test_openai.py", "test_prompt_caching.py",
    "test_stepfunctions_s3.py", "test_remote_backend.py",
})


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # without pytest-xdist the suite runs in one process
    LoadScopeScheduling = None


def _make_scheduler(config, log):
    class ChatModelApart(LoadScopeScheduling):
        """Work units by file (module-scoped servers and functions are set up once), but the
        chat-model files are one unit."""

        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return "chat-model" if Path(path).name in CHAT_MODEL_FILES else path

    return ChatModelApart(config, log)


if LoadScopeScheduling is not None:
    pytest_xdist_make_scheduler = _make_scheduler


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


class BasaltServer:
    """One `basalt serve` process on a free loopback port."""

    def __init__(self, extra_args=(), data_dir=None, name="basalt", env=None):
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{name}-data-")
            data_dir = self._tmp.name
        self.data_dir = str(data_dir)
        self.name = name
        self.port = None
        self.proc = None
        self.logs: list[Path] = []
        self._log_dir = Path(tempfile.mkdtemp(prefix=f"{name}-log-"))

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=HEALTH_TIMEOUT_S):
        if not BASALT_BIN.exists():
            pytest.fail(f"server binary {BASALT_BIN} not found (build it: cargo build --release)")
        self.port = free_port()
        log = self._log_dir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        cmd = [
            str(BASALT_BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", self.data_dir, *self.extra_args,
        ]
        env = dict(os.environ, RUST_BACKTRACE="1", **self.extra_env)
        env.setdefault("RUST_LOG", "info")
        self._logf = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode} at start:\n{self.log_text()[-4000:]}")
            try:
                status, _, body = http_get(self.endpoint + "/_basalt/health", timeout=1)
                if status == 200:
                    self.health = json.loads(body)
                    return self
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"{self.name} not healthy within {timeout}s ({last!r}):\n{self.log_text()[-4000:]}")

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._logf.close()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._logf.close()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def panics(self) -> list[str]:
        return [ln for ln in self.log_text().splitlines() if "panicked at" in ln]

    def close(self):
        self.stop()
        if self._tmp:
            self._tmp.cleanup()


def _config(**kw):
    base = dict(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    s3 = kw.pop("s3", None)
    if s3:
        base["s3"] = s3
    base.update(kw)
    return Config(**base)


@pytest.fixture(scope="session")
def shape_checker():
    return ShapeChecker()


@pytest.fixture(autouse=True)
def _assert_shapes(shape_checker):
    shape_checker.take()
    yield
    violations = shape_checker.take()
    assert not violations, "responses that violate botocore's shapes:\n  " + "\n  ".join(violations)


def make_client_factory(shape_checker, endpoint):
    def make(service, endpoint_url=None, region=REGION, key="test", secret="test", token=None,
             check=True, **cfg):
        c = boto3.client(
            service, endpoint_url=endpoint_url or endpoint, region_name=region,
            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
            config=_config(**cfg),
        )
        if check:
            shape_checker.attach(c)
        return c
    return make


@pytest.fixture(scope="session")
def server():
    """The shared server (auth off, temp data dir). BASALT_ENDPOINT reuses a running one."""
    ext = os.environ.get("BASALT_ENDPOINT")
    if ext:
        class _Ext:
            endpoint = ext.rstrip("/")
            port = int(ext.rsplit(":", 1)[1].split("/")[0])
            def panics(self):
                return []
        yield _Ext()
        return
    srv = BasaltServer(name="basalt-main").start()
    yield srv
    srv.stop()
    panics = srv.panics()
    srv.close()
    if panics:
        pytest.fail("server panicked:\n" + "\n".join(panics))


@pytest.fixture(scope="session")
def deferred(server, shape_checker):
    """Checks a test leaves for the end of its process's session: `deferred.append((what,
    check))`. A test that must wait for the server's clock (a schedule firing a minute later)
    starts the work and defers its assertion, so the suite does not sit the wait out. The
    checks run when the session's fixtures are torn down, before the server stops, in the
    same process (so under pytest-xdist on the worker that ran the test), and a failure is
    reported as an error of the run."""
    checks = []
    yield checks
    failures = []
    for what, check in checks:
        shape_checker.take()
        try:
            check()
        except AssertionError as e:
            failures.append(f"{what}: {e}")
        # The responses the check read are held to botocore's shapes, as a test's are.
        failures += [f"{what}: a response violates botocore's shape: {v}" for v in shape_checker.take()]
    assert not failures, failures


@pytest.fixture(scope="session")
def endpoint(server):
    return server.endpoint


@pytest.fixture(scope="session")
def make_client(shape_checker, endpoint):
    return make_client_factory(shape_checker, endpoint)


@pytest.fixture(scope="session")
def s3(make_client):
    return make_client("s3")


@pytest.fixture(scope="session")
def sts(make_client):
    return make_client("sts")


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def empty_bucket(client, bucket):
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if objs:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
    except Exception:
        pass
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
    except Exception:
        pass
    try:
        for up in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    except Exception:
        pass


@pytest.fixture(scope="session")
def s3_unchecked(make_client):
    return make_client("s3", check=False)


@pytest.fixture
def bucket(s3, s3_unchecked):
    """A fresh bucket, emptied and deleted at teardown (cleanup calls are not shape-checked)."""
    name = unique("bkt")
    s3.create_bucket(Bucket=name)
    yield name
    raw = s3_unchecked
    empty_bucket(raw, name)
    try:
        raw.delete_bucket(Bucket=name)
    except Exception:
        pass
