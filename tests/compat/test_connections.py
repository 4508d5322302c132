"""HTTP/1.1 connection handling when a request is answered before its body is read (an error
found from the headers alone: a missing bucket, a database outage)."""
from __future__ import annotations

import socket


def _request(endpoint, head: bytes) -> socket.socket:
    host, port = endpoint.rsplit("//", 1)[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(head)
    return s


def _read_response(s: socket.socket) -> tuple[int, dict, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return status, headers, rest[:n]


def test_unasked_expect_continue_body_closes_the_connection(endpoint):
    # botocore sends every PutObject with `Expect: 100-continue` and, given a final answer
    # instead of 100 Continue, never sends the body: the server must not wait for it on this
    # connection (it would read the client's next request as the body).
    s = _request(endpoint, b"PUT /no-such-bucket-expect/k HTTP/1.1\r\nHost: x\r\n"
                           b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n")
    status, headers, body = _read_response(s)
    assert status == 404 and b"NoSuchBucket" in body
    assert headers.get("connection", "").lower() == "close"
    s.settimeout(5)
    assert s.recv(1) == b"", "the connection stays open"
    s.close()


def test_a_body_sent_after_an_early_answer_is_drained(endpoint):
    # Without Expect, the client sends its body regardless; the server answers early, reads the
    # rest, and the connection serves the next request.
    s = _request(endpoint, b"PUT /no-such-bucket-drain/k HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 100000\r\n\r\n")
    status, headers, body = _read_response(s)
    assert status == 404 and b"NoSuchBucket" in body
    assert headers.get("connection", "").lower() != "close"
    s.sendall(b"x" * 100000)
    s.sendall(b"GET /_basalt/health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = _read_response(s)
    assert status == 200 and b'"status"' in body
    s.close()
