"""The reference cost API under slow and idle clients: read timeouts, the connection cap, keep-alive, and
answers that reach the client (slowloris, issue 9 item 16). Real sockets against the real server."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from llm_otel.cost_server import CostAPIServer, make_server

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def record(i: int) -> dict[str, Any]:
    strings = dict.fromkeys(("organization_id", "service_name", "provider", "model_id", "operation"), "x")
    tokens = dict.fromkeys(("input_tokens", "output_tokens", "total_tokens"), 1)
    return {
        **strings,
        **tokens,
        "id": f"rec-{i}",
        "timestamp": "2026-03-01T12:00:00Z",
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": "0.000001",
        "latency_ms": 1.0,
        "status": "ok",
        "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}",
    }


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., CostAPIServer]]:
    """Start the test's server with the given settings; it is shut down at the end of the test."""
    with ExitStack() as stack:

        def start_server(**settings: Any) -> CostAPIServer:
            db = tmp_path / "api.sqlite"
            assert not db.exists(), "one server per test"
            srv = make_server(str(db), port=0, api_key=KEY, **settings)
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            stack.callback(srv.store.close)
            stack.callback(srv.server_close)
            stack.callback(thread.join, 10)
            stack.callback(srv.shutdown)
            return srv

        yield start_server


def call(
    srv: CostAPIServer, method: str, path: str, body: Any = None, timeout: float = 5.0
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.url + path, data=data, method=method, headers=AUTH)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head, answer
    return int(head.split()[1]), json.loads(body)


def open_slow(srv: CostAPIServer, count: int, data: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(srv.server_address[:2], timeout=10)
        sock.sendall(data)
        socks.append(sock)
    return socks


def test_500_slow_clients_hold_no_threads_and_others_are_served(
    start: Callable[..., CostAPIServer],
) -> None:
    srv = start(read_timeout=5.0, workers=4)
    assert call(srv, "GET", "/healthz")[0] == 200  # serving: its threads are all started
    threads_before = threading.active_count()
    slow: list[socket.socket] = []
    try:
        slow = open_slow(srv, 500, b"GET /v1/costs HTT")  # half a request line each
        wait_for(lambda: srv.open_connections == 500)  # accepted and held by the server
        assert threading.active_count() <= threads_before + 2  # no thread per connection
        assert call(srv, "POST", "/v1/usage", {"records": [record(1)]}) == (
            200,
            {"accepted": 1, "duplicates": 0},
        )
        status, totals = call(srv, "GET", "/v1/costs")
        assert status == 200 and totals["total"]["records"] == 1
        assert srv.open_connections >= 500  # served while all 500 were still open
        # Then each slow client gets its answer at the read timeout, and the server lets go of it.
        for sock in slow:
            status, answer = status_and_json(read_all(sock))
            assert status == 408 and "timeout" in answer["error"]
            sock.close()
        wait_for(lambda: srv.open_connections == 0)
    finally:
        for sock in slow:
            sock.close()


def test_a_slow_body_times_out_and_the_cap_answers_503(start: Callable[..., CostAPIServer]) -> None:
    srv = start(read_timeout=3.0, max_connections=2, workers=2)
    head = (
        f"POST /v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    slow = open_slow(srv, 2, head + b'{"records"')  # complete heads: both are being served
    try:
        wait_for(lambda: len(srv._active) == 2)
        with pytest.raises(urllib.error.HTTPError) as busy:
            urllib.request.urlopen(srv.url + "/healthz", timeout=5)
        assert busy.value.code == 503 and busy.value.headers["Retry-After"] == "1"
        with busy.value:
            assert "busy" in json.loads(busy.value.read())["error"]
        assert len(srv._active) == 2  # at once, not after the slow ones
        for sock in slow:
            status, answer = status_and_json(read_all(sock))
            assert status == 408 and "body" in answer["error"]
            sock.close()
        wait_for(lambda: srv.open_connections == 0)
        assert call(srv, "GET", "/healthz") == (200, {"status": "ok"})
    finally:
        for sock in slow:
            sock.close()


def test_at_the_cap_the_longest_waiting_connection_makes_room(start: Callable[..., CostAPIServer]) -> None:
    srv = start(read_timeout=30.0, max_connections=5)
    slow = open_slow(srv, 20, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # heads never finished
    try:
        wait_for(lambda: srv.open_connections <= 6 and sum(1 for s in slow[:15] if _closed(s)) == 15)
        assert call(srv, "GET", "/healthz") == (200, {"status": "ok"})  # evicts one more
        status, answer = status_and_json(read_all(slow[0]))
        assert status == 503 and "busy" in answer["error"]
        assert srv.open_connections <= 5
    finally:
        for sock in slow:
            sock.close()


def _closed(sock: socket.socket) -> bool:
    """Whether the server has answered and closed ``sock`` (peeks; the data stays readable)."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(10)
    return data.endswith(b"}") or data == b""


def test_an_idle_connection_is_closed_without_an_answer(start: Callable[..., CostAPIServer]) -> None:
    srv = start(read_timeout=0.5)
    with socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        assert read_all(sock) == b""  # closed at the read timeout; no request, no answer
    wait_for(lambda: srv.open_connections == 0)


def test_keep_alive_and_pipelining(start: Callable[..., CostAPIServer]) -> None:
    srv = start()
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=5)
    try:
        socks = set()
        for i in range(3):
            body = json.dumps({"records": [record(i)]})
            conn.request("POST", "/v1/usage", body=body, headers={**AUTH, "Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read()) == {"accepted": 1, "duplicates": 0}
            socks.add(id(conn.sock))
        assert len(socks) == 1  # one connection for the three requests
    finally:
        conn.close()
    with socket.create_connection(srv.server_address[:2], timeout=5) as sock:
        get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(get + get + get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3 and answer.count(b'{"status": "ok"}') == 3


def test_a_refused_body_is_not_answered_with_a_reset(start: Callable[..., CostAPIServer]) -> None:
    """401 and 413 come before the body is read; the lingering close lets the client read them."""
    srv = start(max_body_bytes=64 * 1024)
    body = json.dumps({"records": [record(i) for i in range(100)]}).encode() * 10  # ~ 500 kB
    for headers, status in (({"Authorization": "Bearer wrong"}, 401), (AUTH, 413)):
        conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
        try:
            conn.request("POST", "/v1/usage", body=body, headers=headers)
            resp = conn.getresponse()
            assert resp.status == status and "error" in json.loads(resp.read())
            assert resp.getheader("Connection") == "close"
        finally:
            conn.close()
    wait_for(lambda: srv.open_connections == 0)
    assert call(srv, "GET", "/healthz") == (200, {"status": "ok"})


def test_a_request_head_over_64_kib_gets_431(start: Callable[..., CostAPIServer]) -> None:
    srv = start()
    with socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n")
        status, answer = status_and_json(read_all(sock))
    assert status == 431 and "head" in answer["error"]


def test_shutdown_is_prompt_with_slow_clients_open(start: Callable[..., CostAPIServer]) -> None:
    srv = start(read_timeout=60.0)
    head = f"POST /v1/usage HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n".encode()
    slow = open_slow(srv, 3, head) + open_slow(srv, 3, b"GET /")
    try:
        wait_for(lambda: len(srv._active) == 3 and srv.open_connections == 6)
        stopper = threading.Thread(target=srv.shutdown, daemon=True)
        stopper.start()
        stopper.join(10)  # the slow clients would hold it for 60 s; in-flight requests are cut at 5 s
        assert not stopper.is_alive() and srv.open_connections == 0
    finally:
        for sock in slow:
            sock.close()
