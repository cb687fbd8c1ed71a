"""A real local HTTP server that speaks the OpenAI and Ollama wire protocols, with fault injection.

Tests drive the real ``openai`` (httpx2) and ``ollama`` (httpx) clients over real sockets against it, so
the instrumentation sees exactly what it would see in production: the client's own parsing, streaming,
retries and exceptions. Replies are deterministic (see :mod:`llm_otel.testing.tokens`).

Faults (``set_fault(kind, times=None, **params)``; the first matching fault in the FIFO list is used;
``times=None`` keeps it until ``clear_faults()``, ``times=N`` consumes it on the next N requests; the
optional param ``path`` limits a fault to request paths starting with that prefix):

* ``rate_limit`` - HTTP 429, header ``Retry-After: <retry_after, default 0>``, OpenAI's error JSON under
  ``/v1`` or Ollama's ``{"error": ...}`` elsewhere.
* ``server_error`` - HTTP 500, same body shapes.
* ``slow_first_byte`` - wait ``delay`` seconds (default 1.0) before sending the status line.
* ``drop_midway`` - streams: send ``after_chunks`` (default 2) pieces then close the connection without
  the terminating zero-length chunk; non-stream: announce the full Content-Length, send half, close.
* ``malformed_json`` - status 200 but the body is cut in half (not valid JSON); streams: the piece at
  index ``at_chunk`` (default 1) carries JSON cut in half, the rest of the stream is intact.
* ``slow_chunks`` - streams: wait ``delay`` seconds (default 0.05) between pieces.

Given bodies (``respond_with(body=..., chunks=..., times=1, path=None, status=200, done=None)``), for
responses no real server would send (hostile or odd values) without touching the server's internals. The
next matching request is answered with exactly that instead of the generated reply, whatever it asked for:

* ``body`` - a non-stream reply: a JSON document (dict, list, any ``json.dumps``-able value but None; a
  string holding a lone surrogate is sent as a ``\\uXXXX`` escape, as valid JSON), or ``bytes`` / ``str``
  sent verbatim (``"null"`` for a JSON null).
* ``chunks`` - a stream reply, one piece per element, framed like the real API for the request's path:
  ``/v1/...`` gets SSE (``data: <json>`` events; a ``(event_name, data)`` tuple adds an ``event:`` line, and
  under ``/v1/responses`` a dict's ``"type"`` names its event; ``data: [DONE]`` is appended unless
  ``done=False``, by default everywhere but ``/v1/responses``); Ollama paths get NDJSON (one JSON document
  per line). A ``str`` element is the JSON text of the piece, a ``bytes`` element is written as it is.
* ``times`` - answer the next N matching requests (default 1, once); ``None`` keeps answering until
  ``clear_responses()`` or ``reset()``. ``path`` limits it to request paths starting with that prefix;
  ``status`` is the HTTP status. Given bodies are used in FIFO order, like faults; faults still apply to
  them (``rate_limit`` and ``server_error`` take precedence, the others cut or slow the given body).

::

    server.respond_with(body={"id": "x", "object": "chat.completion", "model": "\\ud800x", "choices": []})
    server.respond_with(chunks=[{"model": "m", "done": True, "prompt_eval_count": "ten"}], path="/api/chat")
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from . import ollama_routes, openai_routes
from .wire import Reply, ReplyConfig, canned_reply, corrupt_chunk, is_json_piece

FAULT_KINDS = frozenset(
    {"rate_limit", "server_error", "slow_first_byte", "drop_midway", "malformed_json", "slow_chunks"}
)
DEFAULT_REPLY = ReplyConfig().reply


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (headers with lower-case names; ``json`` None if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Fault:
    kind: str
    remaining: int | None
    params: dict[str, Any]


@dataclass
class _Given:
    """A body given with ``respond_with``."""

    body: Any
    chunks: list[Any] | None
    status: int
    done: bool | None
    path: str | None
    remaining: int | None


class FakeLLMServer:
    """OpenAI (``/v1``) and Ollama (``/api``) fake on 127.0.0.1; usable as a context manager."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._config = ReplyConfig()
        self._faults: list[_Fault] = []
        self._given: list[_Given] = []
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeLLMServer:
        """Bind 127.0.0.1 (random free port unless one was given) and serve in a daemon thread."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = _HTTPServer(("127.0.0.1", self._port), self)
            self._port = httpd.server_address[1]
            self._stopping.clear()
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-llm-server",
                daemon=True,
            )
            self._httpd, self._thread = httpd, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, join the thread; idempotent."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._stopping.set()  # wakes handlers sleeping in slow_first_byte / slow_chunks (sockets now dead)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; still readable after ``stop()`` so tests can aim at a server that is down."""
        if self._port == 0:
            raise RuntimeError("FakeLLMServer was never started; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def ollama_host(self) -> str:
        return self.base_url

    # -------------------------------------------------------------------------------- configuration

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests in arrival order (the live list; ``reset()`` clears it)."""
        return self._requests

    @property
    def config(self) -> ReplyConfig:
        return self._config

    def configure(
        self,
        reply: str = DEFAULT_REPLY,
        stream_chunks: int | None = None,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        """Shape the following responses. Every call sets all knobs: omitted ones return to defaults."""
        if stream_chunks is not None and stream_chunks < 1:
            raise ValueError(f"stream_chunks must be None or >= 1, got {stream_chunks!r}")
        for name, value in (
            ("cached_tokens", cached_tokens),
            ("reasoning_tokens", reasoning_tokens),
            ("cache_write_tokens", cache_write_tokens),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        with self._lock:
            self._config = ReplyConfig(
                reply, stream_chunks, cached_tokens, reasoning_tokens, cache_write_tokens
            )

    def set_fault(self, kind: str, *, times: int | None = None, **params: Any) -> None:
        """Append a fault (see the module docstring); ``times=None`` keeps it until ``clear_faults()``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 0:
            raise ValueError(f"times must be None or >= 0, got {times!r}")
        if times == 0:
            return
        with self._lock:
            self._faults.append(_Fault(kind, times, dict(params)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def respond_with(
        self,
        body: Any = None,
        *,
        chunks: Sequence[Any] | None = None,
        times: int | None = 1,
        path: str | None = None,
        status: int = 200,
        done: bool | None = None,
    ) -> None:
        """Answer the next matching request(s) with this body, or these stream pieces (module docstring)."""
        if (chunks is None) == (body is None):
            raise ValueError("give either body (a non-stream reply) or chunks (a stream)")
        if chunks is not None and (isinstance(chunks, (str, bytes)) or not isinstance(chunks, Sequence)):
            raise TypeError("chunks must be a list of stream pieces")
        if times is not None and times < 0:
            raise ValueError(f"times must be None or >= 0, got {times!r}")
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status!r}")
        if times == 0:
            return
        given = _Given(body, None if chunks is None else list(chunks), status, done, path, times)
        with self._lock:
            self._given.append(given)

    def clear_responses(self) -> None:
        """Forget every body given with ``respond_with``."""
        with self._lock:
            self._given.clear()

    def reset(self) -> None:
        """Default reply shape, no faults, no given bodies, no recorded requests."""
        with self._lock:
            self._config = ReplyConfig()
            self._faults.clear()
            self._given.clear()
            self._requests.clear()

    # ------------------------------------------------------------------------- used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, conn: socket.socket, active: bool) -> None:
        with self._lock:
            if active:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                prefix = fault.params.get("path")
                if isinstance(prefix, str) and not path.startswith(prefix):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return _Fault(fault.kind, fault.remaining, dict(fault.params))
        return None

    def _take_given(self, path: str) -> _Given | None:
        with self._lock:
            for given in self._given:
                if given.path is not None and not path.startswith(given.path):
                    continue
                if given.remaining is not None:
                    given.remaining -= 1
                    if given.remaining <= 0:
                        self._given.remove(given)
                return given
        return None

    def _reply_for(self, method: str, path: str, body: Any, fault: _Fault | None) -> Reply:
        is_openai = path.startswith("/v1/")
        kind = fault.kind if fault else ""
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        if kind == "rate_limit":
            reply = (
                openai_routes.rate_limit_reply(model)
                if is_openai
                else ollama_routes.error_reply(429, "rate limit exceeded, please retry later")
            )
            reply.headers["retry-after"] = str(fault.params.get("retry_after", 0) if fault else 0)
        elif kind == "server_error":
            reply = (
                openai_routes.server_error_reply()
                if is_openai
                else ollama_routes.error_reply(500, "an error was encountered while running the model")
            )
        elif (given := self._take_given(path)) is not None:
            reply = canned_reply(path, given.body, given.chunks, given.status, given.done)
        else:
            try:
                routes = openai_routes if is_openai else ollama_routes
                reply = routes.route(method, path, body, self._config)
            except Exception as exc:  # a bug in a route must surface as a 500, not a hung client
                message = f"fake server route failed: {type(exc).__name__}: {exc}"
                reply = (
                    openai_routes.error_reply(500, message, "server_error", None)
                    if is_openai
                    else ollama_routes.error_reply(500, message)
                )
        if is_openai:
            reply.headers = {**reply.headers, **openai_routes.openai_headers()}
        return reply


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib default (5) drops SYNs under concurrent tests: 1 s stalls

    def __init__(self, address: tuple[str, int], fake: FakeLLMServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish mid-request are normal in fault tests: stay silent."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-otel-fake/0.1"
    sys_version = ""
    disable_nagle_algorithm = True  # SSE pieces must leave immediately (time-to-first-chunk tests)
    timeout = 120
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request output."""

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake._record(RecordedRequest(self.command, self.path, headers, body))
        fault = fake._take_fault(path)
        reply = fake._reply_for(self.command, path, body, fault)
        if fault is not None and fault.kind == "slow_first_byte":
            fake._stopping.wait(float(fault.params.get("delay", 1.0)))
        try:
            self._write(reply, fault)
        except OSError:  # the client went away (timeout, early close): nothing to answer
            self.close_connection = True

    def _write(self, reply: Reply, fault: _Fault | None) -> None:
        ok = reply.status < 400
        kind = fault.kind if fault is not None and ok else ""
        params = fault.params if fault is not None else {}
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunks is None:
            body = reply.body
            if kind == "malformed_json":
                body = body[: max(1, len(body) // 2)]
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if kind == "drop_midway":
                self.wfile.write(body[: len(body) // 2])
                self._abort()
                return
            self.wfile.write(body)
            return
        chunks = list(reply.chunks)
        if kind == "malformed_json" and chunks:
            index = min(max(0, int(params.get("at_chunk", 1))), len(chunks) - 1)
            if not is_json_piece(chunks[index]) and index > 0:
                index -= 1
            chunks[index] = corrupt_chunk(chunks[index], reply.stream_format)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        drop_after = int(params.get("after_chunks", 2)) if kind == "drop_midway" else None
        delay = float(params.get("delay", 0.05)) if kind == "slow_chunks" else 0.0
        for i, chunk in enumerate(chunks):
            if drop_after is not None and i >= drop_after:
                break
            if delay and i:
                self.server.fake._stopping.wait(delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if drop_after is not None:
            self._abort()
            return
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Close the TCP connection with the HTTP message unfinished."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
