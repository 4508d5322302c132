"""Several Basalt nodes sharing one PostgreSQL database and one S3-compatible store, behind nginx
(round robin per request), as docs/deploy.md describes.

Needs BASALT_TEST_POSTGRES (scripts/postgres.sh) and BASALT_TEST_BLOBS with
BASALT_BLOBS_ACCESS_KEY_ID / BASALT_BLOBS_SECRET_ACCESS_KEY (scripts/s3store.sh); `make
test-cluster` provides them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "compat"))
from conftest import BasaltServer, free_port  # noqa: E402

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream basalt {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        # S3 keys are not paths: `a//b` stays `a//b`.
        merge_slashes off;
        client_max_body_size 0;
        # Request bodies are read whole before a node sees them (nginx's default): a node that
        # answers early (an error before the body) cannot leave the client's connection with
        # half a body in it. Responses stream (event streams, large objects).
        proxy_request_buffering on;
        client_body_buffer_size 1m;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 600s;
        location / {{
            proxy_pass http://basalt;
            # The signed host, so that SigV4 verifies behind the balancer.
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def require_env():
    missing = [v for v in ("BASALT_TEST_POSTGRES", "BASALT_TEST_BLOBS") if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not set: run through `make test-cluster`")


def fresh_database() -> str:
    name = f"basalt_cluster_{uuid.uuid4().hex[:10]}"
    out = subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh"), "createdb", name],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def fresh_blobs() -> str:
    base = os.environ["BASALT_TEST_BLOBS"]
    path, _, query = base.partition("?")
    return f"{path.rstrip('/')}/cluster-{uuid.uuid4().hex[:10]}/?{query}"


def nginx_bin() -> str:
    for c in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if c and os.access(c, os.X_OK):
            return c
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("cluster: installing nginx-light (apt-get)", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # The package would start a system nginx; only ours is wanted.
        prc = Path("/usr/sbin/policy-rc.d")
        added = not prc.exists()
        if added:
            prc.write_text("#!/bin/sh\nexit 101\n")
            prc.chmod(0o755)
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True, env=env)
        finally:
            if added:
                prc.unlink()
        return "/usr/sbin/nginx"
    raise SystemExit("nginx is not installed (apt-get install nginx-light)")


class Balancer:
    """nginx in front of `ports`, round robin per request."""

    def __init__(self, ports):
        self.dir = Path(tempfile.mkdtemp(prefix="basalt-nginx-"))
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        (self.dir / "nginx.conf").write_text(
            NGINX_CONF.format(dir=self.dir, port=self.port, servers=servers,
                              # Workers must write request bodies into this (root's) directory.
                              user="user root;" if os.geteuid() == 0 else ""))
        self.proc = subprocess.Popen(
            [nginx_bin(), "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/_basalt/health", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise SystemExit("nginx exited: " + (self.dir / "stderr.log").read_text()
                                     + (self.dir / "error.log").read_text())
                time.sleep(0.05)
        raise SystemExit("nginx did not answer in 10 s")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """`n` nodes on one fresh database and one fresh blob prefix, optionally behind nginx."""

    def __init__(self, n=2, balancer=True, extra_args=()):
        self.state = fresh_database()
        self.blobs = fresh_blobs()
        self.nodes = [
            BasaltServer(name=f"node{i + 1}", extra_args=[
                "--state", self.state, "--blobs", self.blobs, "--node-id", f"node{i + 1}",
                *extra_args])
            for i in range(n)
        ]
        self.balancer = None
        self._want_balancer = balancer

    def start(self):
        for node in self.nodes:
            node.start(timeout=30)
        if self._want_balancer:
            self.balancer = Balancer([n.port for n in self.nodes])
        return self

    @property
    def endpoint(self):
        return self.balancer.endpoint

    def panics(self):
        return [f"{n.name}: {line}" for n in self.nodes for line in n.panics()]

    def stop(self):
        if self.balancer:
            self.balancer.stop()
        for n in self.nodes:
            n.stop()

    def close(self):
        self.stop()
        for n in self.nodes:
            n.close()
