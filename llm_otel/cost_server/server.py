"""HTTP front of the reference cost API: ``POST /v1/usage``, ``GET /v1/costs``, ``GET /healthz`` and
``GET /metrics`` (Prometheus text format: requests and records counted since start; counts only, no cost
data, so like ``/healthz`` it needs no key).

Connections. The thread running :meth:`CostAPIServer.serve_forever` accepts connections and reads request
heads without blocking, for every connection at once; a request gets one of ``workers`` threads only once
its head (request line and headers) is complete. A client that sends half a request therefore holds a
socket and a small buffer, never a thread, and cannot keep others from being served. Limits:

- ``read_timeout``: a request head must be complete within it, counted from the accept or, on a keep-alive
  connection, from the end of the previous answer (so it is the idle timeout too); the body must then
  arrive within it as well. Otherwise the answer is 408 (an idle connection is closed without one).
- ``max_connections`` open at once. At the cap, a new connection makes room by dropping the connection
  that has lingered (see below) or waited for its request head the longest (503 if it had sent part of
  one); when every connection is being served, the new one gets 503 and is closed (it may linger as one
  connection over the cap).
- A request head is at most 64 KiB (431).

When the server closes a connection on which the client may still be sending (a body refused or not
read), it stops sending, then reads and discards for up to 2 s before closing ("lingering close"): the
client reads the answer instead of a connection reset.

Every request gets a JSON answer: 4xx for a bad request, 500 for an internal error (logged).
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import math
import queue
import selectors
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .. import cost_contract as c
from .store import UsageStore
from .validation import checked, parse_time

logger = logging.getLogger("llm_otel.cost_server")
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_WORKERS = 16
MAX_HEAD_BYTES = 64 * 1024
_LINGER_SECONDS = 2.0
_TICK = 0.1  # granularity of the timeouts
_RECV = 65536
_FD_RESERVE = 64  # descriptors left for the database, the listener and the rest of the process
_LISTENER, _WAKE = object(), object()
_KEEP, _LINGER, _CLOSE = "keep", "linger", "close"


HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
_ROUTES = frozenset({c.USAGE_PATH, c.COSTS_PATH, HEALTH_PATH, METRICS_PATH})
_RECORD_RESULTS = ("accepted", "duplicate", "invalid")


class ServerMetrics:
    """Counters of one server since it started, rendered in the Prometheus text format (standard library
    only; label values are bounded: known routes, HTTP status codes, three record results)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.records: Counter[str] = Counter({result: 0 for result in _RECORD_RESULTS})

    def request(self, method: str, path: str, status: int) -> None:
        route = path if path in _ROUTES else "other"
        with self._lock:
            self.requests[(method if method in ("GET", "POST") else "other", route, status)] += 1

    def add_records(self, accepted: int, duplicate: int, invalid: int) -> None:
        with self._lock:
            self.records.update(accepted=accepted, duplicate=duplicate, invalid=invalid)

    def render(self) -> str:
        with self._lock:
            requests = sorted(self.requests.items())
            records = [(r, self.records[r]) for r in _RECORD_RESULTS]
        lines = [
            "# HELP llm_otel_cost_api_requests_total HTTP requests answered, by method, route and status.",
            "# TYPE llm_otel_cost_api_requests_total counter",
            *(
                f'llm_otel_cost_api_requests_total{{method="{m}",route="{r}",code="{code}"}} {n}'
                for (m, r, code), n in requests
            ),
            "# HELP llm_otel_cost_api_records_total Usage records received: accepted (new), duplicate (id "
            "already stored) or invalid (rejected).",
            "# TYPE llm_otel_cost_api_records_total counter",
            *(f'llm_otel_cost_api_records_total{{result="{r}"}} {n}' for r, n in records),
        ]
        return "\n".join(lines) + "\n"


def _canned(status: int, message: str, *headers: str) -> bytes:
    """A complete ``Connection: close`` answer, for the accept loop (which has no handler)."""
    body = json.dumps({c.ERROR_MESSAGE: message}).encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_BUSY = _canned(503, "server busy, retry later", "Retry-After: 1")
_TIMED_OUT = _canned(408, "request not received within the read timeout")
_HEAD_TOO_LARGE = _canned(431, f"request head larger than {MAX_HEAD_BYTES} bytes")


class _Conn:
    """One client connection and the bytes read from it that no request has consumed yet."""

    __slots__ = ("addr", "buf", "deadline", "fresh", "sock")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()
        self.deadline = 0.0
        self.fresh = True  # no request served on it yet


def _head_end(buf: bytearray, start: int) -> bool:
    """Whether ``buf`` holds a complete request head (an empty line), searching from ``start`` only, so a
    head that trickles in byte by byte costs linear time."""
    return buf.find(b"\n\r\n", start) >= 0 or buf.find(b"\n\n", start) >= 0


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Best effort, never blocks: a fresh or idle socket's send buffer takes a canned answer whole."""
    with contextlib.suppress(OSError):
        sock.send(data)


def _fd_capped(wanted: int) -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft - _FD_RESERVE:
        return wanted
    capped = max(1, soft - _FD_RESERVE)
    logger.warning("cost API: max_connections %d lowered to %d (open-file limit %d)", wanted, capped, soft)
    return capped


class CostAPIServer(HTTPServer):
    """The server object carries the configuration its handlers read, and the connection machinery."""

    request_queue_size = 1024  # listen backlog: a burst of connects waits in the kernel, not in SYN retries

    def __init__(
        self,
        address: tuple[str, int],
        store: UsageStore,
        api_key: str | None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        quiet: bool = True,
        *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if not 0 < read_timeout < math.inf or max_connections < 1 or workers < 1:
            raise ValueError("read_timeout must be finite and > 0, max_connections and workers >= 1")
        self.store = store
        self.api_key = api_key.encode("utf-8") if api_key is not None else None
        self.max_body_bytes = max_body_bytes
        self.quiet = quiet
        self.metrics = ServerMetrics()
        self.read_timeout = float(read_timeout)
        self.max_connections = _fd_capped(max_connections)
        self.workers = workers
        #: Client connections open now (read by tests and monitoring; written by the accept loop only).
        self.open_connections = 0
        # Owned by the accept loop: connections waiting for a request head and connections lingering before
        # their close, each in the order of their deadlines; connections handed to the workers.
        self._waiting: dict[_Conn, None] = {}
        self._lingering: dict[_Conn, None] = {}
        self._active: set[_Conn] = set()
        self._jobs: queue.SimpleQueue[_Conn | None] = queue.SimpleQueue()
        self._returns: queue.SimpleQueue[tuple[_Conn, str]] = queue.SimpleQueue()
        self._selector: selectors.BaseSelector | None = None
        self._accept_paused_until = 0.0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        # Handlers are built per request by _serve (with the request's reader), not by socketserver.
        super().__init__(address, BaseHTTPRequestHandler)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- life cycle

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept and read request heads until :meth:`shutdown`; ``workers`` threads answer the requests."""
        self._stopped.clear()
        self.socket.setblocking(False)
        # A new queue per run: a worker still busy after the last shutdown keeps the old one.
        jobs: queue.SimpleQueue[_Conn | None] = queue.SimpleQueue()
        self._jobs = jobs
        pool = [
            threading.Thread(target=self._work, args=(jobs,), name=f"cost-api-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in pool:
            thread.start()
        sel = self._selector = selectors.DefaultSelector()
        try:
            sel.register(self.socket, selectors.EVENT_READ, _LISTENER)
            sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
            while not self._stop.is_set():
                for key, _ in sel.select(min(poll_interval, _TICK)):
                    if key.data is _LISTENER:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    else:
                        self._readable(key.data)
                self._take_returns()
                now = time.monotonic()
                self._expire(now)
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    sel.register(self.socket, selectors.EVENT_READ, _LISTENER)
        finally:
            self._wind_down(pool)
            sel.close()
            self._selector = None
            self._stop.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait for it (from another thread); in-flight requests are cut off
        after at most 5 s."""
        self._stop.set()
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        for sock in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if sock is not None:
                sock.close()

    def _wind_down(self, pool: list[threading.Thread]) -> None:
        for conn in self._active:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # unblocks a worker waiting on a slow client
        for _ in pool:
            self._jobs.put(None)
        deadline = time.monotonic() + 5.0
        for thread in pool:
            thread.join(max(0.0, deadline - time.monotonic()))
        finished = not any(thread.is_alive() for thread in pool)
        self._take_returns()
        for conn in [*self._waiting, *self._lingering, *(self._active if finished else ())]:
            self._close(conn)
        while True:  # connections dispatched after the sentinels (none are, but keep the count honest)
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._close(item)

    # -- the accept loop (one thread)

    def _accept(self) -> None:
        for _ in range(256):  # then let the other sockets have their turn
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors and the like: pause instead of spinning
                logger.warning("cost API: accept failed (%s); pausing new connections for 0.1 s", exc)
                if self._selector is not None and not self._accept_paused_until:
                    self._selector.unregister(self.socket)
                    self._accept_paused_until = time.monotonic() + 0.1
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):  # no Nagle + delayed-ACK stall between headers and body
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            full = self.open_connections >= self.max_connections and not self._make_room()
            self.open_connections += 1
            if full:  # lingers like any answer (so the client reads it); the next one evicts it if need be
                self._answer_and_close(_Conn(sock, addr), _BUSY)
            else:
                self._wait(_Conn(sock, addr))

    def _make_room(self) -> bool:
        """Close the connection that has lingered or waited for a head the longest; False if none does."""
        if self._lingering:
            self._close(next(iter(self._lingering)))
            return True
        if self._waiting:
            self._drop(next(iter(self._waiting)), _BUSY)
            return True
        return False

    def _drop(self, conn: _Conn, answer: bytes) -> None:
        """Close a connection waiting for a head, with ``answer`` if part of a request came.

        What the client sent and the loop has not read yet is read first: closing a socket with unread input
        resets the connection, and the client could lose the answer with it. A request that arrives on an
        idle keep-alive connection just as it is dropped gets no answer: its client sees the connection
        closed and sends again on a new one, as clients do when a server closes an idle connection."""
        answer_due = bool(conn.buf)
        with contextlib.suppress(OSError):  # BlockingIOError: nothing more to read
            for _ in range(16):
                if not conn.sock.recv(_RECV):
                    break
                answer_due = answer_due or conn.fresh
        if answer_due:
            _send_quietly(conn.sock, answer)
        self._close(conn)

    def _wait(self, conn: _Conn) -> None:
        """Wait for the next request head on ``conn`` (its buffer may hold the start of it already)."""
        if _head_end(conn.buf, 0):
            self._dispatch(conn)
            return
        if len(conn.buf) > MAX_HEAD_BYTES:
            self._answer_and_close(conn, _HEAD_TOO_LARGE)
            return
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + self.read_timeout
        self._waiting[conn] = None
        assert self._selector is not None
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _readable(self, conn: _Conn) -> None:
        if conn not in self._waiting and conn not in self._lingering:
            return  # closed or evicted earlier in the same round of events
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) the connection
            self._close(conn)
            return
        if conn in self._lingering:
            return  # discarded
        start = max(0, len(conn.buf) - 2)
        conn.buf += data
        if _head_end(conn.buf, start):
            self._dispatch(conn)
        elif len(conn.buf) > MAX_HEAD_BYTES:
            self._answer_and_close(conn, _HEAD_TOO_LARGE)

    def _dispatch(self, conn: _Conn) -> None:
        conn.fresh = False
        if conn in self._waiting:
            del self._waiting[conn]
            self._unregister(conn)
        self._active.add(conn)
        self._jobs.put(conn)

    def _answer_and_close(self, conn: _Conn, answer: bytes) -> None:
        _send_quietly(conn.sock, answer)
        self._linger(conn)

    def _linger(self, conn: _Conn) -> None:
        """Stop sending, discard what the client still sends for a moment, then close."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + min(_LINGER_SECONDS, self.read_timeout)
        if conn in self._waiting:  # registered already
            del self._waiting[conn]
        else:
            assert self._selector is not None
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        self._lingering[conn] = None

    def _close(self, conn: _Conn) -> None:
        if conn.sock.fileno() < 0:
            return  # closed already
        for pool in (self._waiting, self._lingering):
            if conn in pool:
                del pool[conn]
                self._unregister(conn)
        self._active.discard(conn)
        conn.sock.close()
        self.open_connections -= 1

    def _unregister(self, conn: _Conn) -> None:
        if self._selector is not None:
            self._selector.unregister(conn.sock)

    def _expire(self, now: float) -> None:
        for pool in (self._waiting, self._lingering):
            while pool:  # one timeout per pool: insertion order is deadline order
                conn = next(iter(pool))
                if conn.deadline > now:
                    break
                if pool is self._waiting:
                    self._drop(conn, _TIMED_OUT)
                else:
                    self._close(conn)

    def _take_returns(self) -> None:
        while True:
            try:
                conn, action = self._returns.get_nowait()
            except queue.Empty:
                return
            self._active.discard(conn)
            if self._stop.is_set() or action == _CLOSE:
                self._close(conn)
            elif action == _LINGER:
                self._linger(conn)
            else:
                self._wait(conn)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    # -- the workers

    def _work(self, jobs: queue.SimpleQueue[_Conn | None]) -> None:
        while True:
            conn = jobs.get()
            if conn is None:
                return
            action = _CLOSE
            try:
                action = self._serve(conn)
            except Exception:  # the client went away mid-answer, or a bug: the connection is closed
                logger.debug("cost API: connection from %s failed", conn.addr, exc_info=True)
            self._returns.put((conn, action))
            self._wake()

    def _serve(self, conn: _Conn) -> str:
        """Answer the one request whose head is in ``conn.buf``."""
        reader = _Reader(conn.sock, conn.buf, time.monotonic() + self.read_timeout)
        conn.buf = bytearray()
        handler = _Handler(conn.sock, conn.addr, self, reader)
        if handler.close_connection:
            return _LINGER
        conn.buf = reader.take()
        return _KEEP


class _Reader(io.BufferedIOBase):
    """The request's input: bytes the accept loop read, then the socket, all before one deadline."""

    def __init__(self, sock: socket.socket, data: bytearray, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._buf = data
        self._deadline = deadline

    def _fill(self, want: int) -> bool:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("read timed out")
        self._sock.settimeout(remaining)
        chunk = self._sock.recv(min(max(want, _RECV), 1 << 20))  # raises TimeoutError at the deadline
        self._buf += chunk
        return bool(chunk)

    def readline(self, size: int | None = -1, /) -> bytes:
        limit = -1 if size is None else size
        start = 0
        while True:
            newline = self._buf.find(b"\n", start)
            if newline >= 0 and (limit < 0 or newline < limit):
                end = newline + 1
                break
            if 0 <= limit <= len(self._buf):
                end = limit
                break
            start = len(self._buf)
            if not self._fill(_RECV):
                end = len(self._buf)
                break
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            while self._fill(_RECV):
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._fill(size - len(self._buf)):
            pass
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def readable(self) -> bool:
        return True

    def take(self) -> bytearray:
        """What was read past the request (the start of a pipelined next one)."""
        data, self._buf = self._buf, bytearray()
        return data


class _Writer(io.BufferedIOBase):
    """The answer's output: unbuffered ``sendall``, each bounded by the read timeout."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._timeout = timeout

    def write(self, data: Any, /) -> int:
        self._sock.settimeout(self._timeout)
        self._sock.sendall(data)
        return len(data)

    def writable(self) -> bool:
        return True


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    """Answers one request (the server's accept loop handles keep-alive between requests)."""

    protocol_version = "HTTP/1.1"  # keep-alive: the exporter reuses one connection
    server: CostAPIServer

    def __init__(self, sock: socket.socket, addr: Any, server: CostAPIServer, reader: _Reader) -> None:
        self._answered = False
        self._client_close = True
        self.rfile = reader
        super().__init__(sock, addr, server)  # runs setup(), handle(), finish()

    def setup(self) -> None:
        self.connection = self.request
        self.wfile = _Writer(self.connection, self.server.read_timeout)

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        pass  # nothing buffered; the server owns the socket

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- plumbing

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self._answered = True
        try:  # a malformed request has no path (or command) yet
            path = urlsplit(getattr(self, "path", "")).path
        except ValueError:
            path = ""
        self.server.metrics.request(getattr(self, "command", None) or "", path, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (malformed request line or headers, unknown method) in JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # unparsable request line: still answer with a status line
            self.request_version = self.protocol_version
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(code, {c.ERROR_MESSAGE: message or phrase})

    def _guarded(self, route: Callable[[], None]) -> None:
        """Run a route so that the client gets an answer whatever happens."""
        self._client_close = self.close_connection
        if self._has_body():
            self.close_connection = True  # until the body is read, the connection cannot be reused
        try:
            route()
        except TimeoutError:
            self._fail(408, "request body not received within the read timeout")
        except Exception as exc:
            if isinstance(exc, OSError):  # the connection broke
                logger.debug("cost API: %s %s: %s", self.command, self.path[:200], exc)
            else:
                logger.exception("cost API: %s %s failed", self.command, self.path[:200])
            self._fail(500, "internal server error")

    def _fail(self, status: int, message: str) -> None:
        self.close_connection = True
        if not self._answered:
            self._send(status, {c.ERROR_MESSAGE: message})

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length", "0").strip()
        return bool(self.headers.get("Transfer-Encoding")) or length not in ("", "0")

    def _target(self) -> tuple[str, str] | None:
        try:
            url = urlsplit(self.path)
        except ValueError:
            self._send(400, {c.ERROR_MESSAGE: "malformed request target"})
            return None
        return url.path, url.query

    def _authorized(self) -> bool:
        expected = self.server.api_key
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        # Constant-time comparison; the scheme check leaks nothing about the key.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode("utf-8"), expected)

    def _deny(self) -> None:
        # A body, if any, is not read: the connection closes (lingering) after this answer.
        self._send(401, {c.ERROR_MESSAGE: "missing or wrong bearer API key"}, {"WWW-Authenticate": "Bearer"})

    def _read_body(self) -> bytes:
        cap = self.server.max_body_bytes
        if self.headers.get("Transfer-Encoding"):
            raise _BodyError(411, "chunked bodies are not supported; send Content-Length")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _BodyError(411, "Content-Length required")
        try:
            length = int(length_header)
        except ValueError:
            raise _BodyError(400, "bad Content-Length") from None
        if length < 0:
            raise _BodyError(400, "bad Content-Length")
        if length > cap:
            raise _BodyError(413, f"body larger than {cap} bytes")
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise _BodyError(400, "body shorter than Content-Length")
        self.close_connection = self._client_close  # the body is consumed: keep-alive as the client asked
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding != "gzip":
            raise _BodyError(415, f"unsupported Content-Encoding {encoding!r}")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(raw, cap + 1)  # bounded: a gzip bomb stops at the cap
        except zlib.error:
            raise _BodyError(400, "body is not valid gzip") from None
        if len(data) > cap:
            raise _BodyError(413, f"decompressed body larger than {cap} bytes")
        if not inflater.eof:
            raise _BodyError(400, "truncated gzip body")
        return data

    # -- routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._guarded(self._post)

    def _get(self) -> None:
        target = self._target()
        if target is None:
            return
        path, query_string = target
        if path == HEALTH_PATH:
            self._send(200, {"status": "ok"})
            return
        if path == METRICS_PATH:
            text = self.server.metrics.render().encode("utf-8")
            self._reply(200, text, "text/plain; version=0.0.4; charset=utf-8")
            return
        if not self._authorized():
            self._deny()
            return
        if path != c.COSTS_PATH:
            self._send(404, {c.ERROR_MESSAGE: f"no route GET {path[:200]}"})
            return
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        try:
            start = parse_time(query["start"]) if query.get("start") else None
            end = parse_time(query["end"]) if query.get("end") else None
        except ValueError as exc:
            self._send(400, {c.ERROR_MESSAGE: f"start/end must be RFC 3339 times or dates: {exc}"})
            return
        group_by = query.get("group_by") or None
        if group_by is not None:
            try:
                c.group_tag(group_by)
            except ValueError as exc:
                self._send(400, {c.ERROR_MESSAGE: str(exc)})
                return
        result = self.server.store.totals(start, end, group_by)
        result["start"] = start.isoformat().replace("+00:00", "Z") if start else None
        result["end"] = end.isoformat().replace("+00:00", "Z") if end else None
        self._send(200, result)

    def _post(self) -> None:
        target = self._target()
        if target is None:
            return
        path = target[0]
        if not self._authorized():
            self._deny()
            return
        try:
            body = self._read_body()
        except _BodyError as exc:
            self._send(exc.status, {c.ERROR_MESSAGE: str(exc)})
            return
        if path != c.USAGE_PATH:
            self._send(404, {c.ERROR_MESSAGE: f"no route POST {path[:200]}"})
            return
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._send(400, {c.ERROR_MESSAGE: "body is not JSON (or nests too deeply)"})
            return
        status, answer = handle_records(self.server.store, payload)
        if status == 503:
            self._send(503, answer, {"Retry-After": "1"})
            return
        if c.ACCEPTED in answer:
            accepted, duplicates = answer[c.ACCEPTED], answer[c.DUPLICATES]
            self.server.metrics.add_records(accepted, duplicates, len(answer.get(c.ERRORS, ())))
        self._send(status, answer)


def handle_records(store: UsageStore, payload: Any) -> tuple[int, dict[str, Any]]:
    """A decoded ``POST /v1/usage`` body -> (HTTP status, answer): each record validated, the valid ones
    stored in one transaction (``INSERT OR IGNORE``, one fsync: a 200 means stored)."""
    records = payload.get(c.RECORDS) if isinstance(payload, dict) else None
    if not isinstance(records, list):
        return 400, {c.ERROR_MESSAGE: f'body must be {{"{c.RECORDS}": [...]}}'}
    if len(records) > c.MAX_RECORDS_PER_REQUEST:
        return 413, {c.ERROR_MESSAGE: f"at most {c.MAX_RECORDS_PER_REQUEST} records per request"}
    valid, parsed, errors = [], [], []
    for index, record in enumerate(records):
        problem = checked(record)
        if problem.__class__ is tuple:
            valid.append(record)
            parsed.append(problem)
        else:
            rid = record.get(c.ID) if isinstance(record, dict) else None
            rid = rid if isinstance(rid, str) else None
            errors.append({c.ERROR_INDEX: index, c.ERROR_ID: rid, c.ERROR_MESSAGE: problem})
    try:
        accepted = store.insert(valid, parsed) if valid else 0  # type: ignore[arg-type]
    except Exception:
        logger.exception("cost API: storing %d records failed", len(valid))
        return 503, {c.ERROR_MESSAGE: "storage failure, retry later"}
    answer: dict[str, Any] = {c.ACCEPTED: accepted, c.DUPLICATES: len(valid) - accepted}
    if errors:
        answer[c.ERRORS] = errors
    return (400 if errors else 200), answer


def make_server(
    db_path: str,
    host: str = "127.0.0.1",
    port: int = 8787,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    quiet: bool = True,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    workers: int = DEFAULT_WORKERS,
) -> CostAPIServer:
    """Open the store and bind; call ``serve_forever()`` on the result (``port=0`` picks a free port)."""
    store = UsageStore(db_path)
    try:
        return CostAPIServer(
            (host, port), store, api_key, max_body_bytes, quiet,
            read_timeout=read_timeout, max_connections=max_connections, workers=workers,
        )  # fmt: skip
    except BaseException:
        store.close()
        raise
