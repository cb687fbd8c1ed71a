"""HTTP front of the reference cost API: ``POST /v1/usage``, ``GET /v1/costs``, ``GET /healthz`` and
``GET /metrics`` (Prometheus text format: requests and records counted since start; counts only, no cost
data, so like ``/healthz`` it needs no key).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .. import cost_contract as c
from .store import UsageStore
from .validation import parse_time, validate

logger = logging.getLogger("llm_otel.cost_server")
DEFAULT_MAX_BODY = 8 * 1024 * 1024
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


class CostAPIServer(ThreadingHTTPServer):
    """The server object carries the configuration its handlers read."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: UsageStore,
        api_key: str | None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        quiet: bool = True,
    ) -> None:
        self.store = store
        self.api_key = api_key.encode("utf-8") if api_key is not None else None
        self.max_body_bytes = max_body_bytes
        self.quiet = quiet
        self.metrics = ServerMetrics()
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporter reuses one connection
    # Headers and body are written separately: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer.
    disable_nagle_algorithm = True
    server: CostAPIServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- plumbing

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.server.metrics.request(self.command, urlsplit(self.path).path, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        expected = self.server.api_key
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        # Constant-time comparison; the scheme check leaks nothing about the key.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode("utf-8"), expected)

    def _discard_body(self) -> None:
        """Read and drop a body we refuse, so the client sees our answer instead of a reset connection
        (bodies beyond 4x the cap are not worth reading: the connection is closed instead)."""
        client_close = self.close_connection
        self.close_connection = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if 0 < length <= 4 * self.server.max_body_bytes and not self.headers.get("Transfer-Encoding"):
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
            self.close_connection = client_close

    def _deny(self) -> None:
        self._discard_body()
        self._send(401, {c.ERROR_MESSAGE: "missing or wrong bearer API key"}, {"WWW-Authenticate": "Bearer"})

    def _read_body(self) -> bytes:
        cap = self.server.max_body_bytes
        client_close = self.close_connection
        self.close_connection = True  # until the body is read, the connection cannot be reused
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
            self.close_connection = client_close
            self._discard_body()
            raise _BodyError(413, f"body larger than {cap} bytes")
        raw = self.rfile.read(length)
        self.close_connection = client_close or len(raw) != length
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
        url = urlsplit(self.path)
        if url.path == HEALTH_PATH:
            self._send(200, {"status": "ok"})
            return
        if url.path == METRICS_PATH:
            text = self.server.metrics.render().encode("utf-8")
            self._reply(200, text, "text/plain; version=0.0.4; charset=utf-8")
            return
        if not self._authorized():
            self._deny()
            return
        if url.path != c.COSTS_PATH:
            self._send(404, {c.ERROR_MESSAGE: f"no route GET {url.path}"})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            start = parse_time(query["start"]) if query.get("start") else None
            end = parse_time(query["end"]) if query.get("end") else None
        except ValueError as exc:
            self._send(400, {c.ERROR_MESSAGE: f"start/end must be RFC 3339 times or dates: {exc}"})
            return
        group_by = query.get("group_by") or None
        if group_by is not None and group_by not in c.GROUP_BY:
            self._send(400, {c.ERROR_MESSAGE: f"group_by must be one of {sorted(c.GROUP_BY)}"})
            return
        result = self.server.store.totals(start, end, group_by)
        result["start"] = start.isoformat().replace("+00:00", "Z") if start else None
        result["end"] = end.isoformat().replace("+00:00", "Z") if end else None
        self._send(200, result)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        path = urlsplit(self.path).path
        if not self._authorized():
            self._deny()
            return
        try:
            body = self._read_body()
        except _BodyError as exc:
            self._send(exc.status, {c.ERROR_MESSAGE: str(exc)})
            return
        if path != c.USAGE_PATH:
            self._send(404, {c.ERROR_MESSAGE: f"no route POST {path}"})
            return
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            self._send(400, {c.ERROR_MESSAGE: "body is not JSON"})
            return
        records = payload.get(c.RECORDS) if isinstance(payload, dict) else None
        if not isinstance(records, list):
            self._send(400, {c.ERROR_MESSAGE: f'body must be {{"{c.RECORDS}": [...]}}'})
            return
        if len(records) > c.MAX_RECORDS_PER_REQUEST:
            self._send(413, {c.ERROR_MESSAGE: f"at most {c.MAX_RECORDS_PER_REQUEST} records per request"})
            return
        valid, errors = [], []
        for index, record in enumerate(records):
            problem = validate(record)
            if problem is None:
                valid.append(record)
            else:
                rid = record.get(c.ID) if isinstance(record, dict) else None
                rid = rid if isinstance(rid, str) else None
                errors.append({c.ERROR_INDEX: index, c.ERROR_ID: rid, c.ERROR_MESSAGE: problem})
        try:
            accepted = self.server.store.insert(valid) if valid else 0
        except Exception:
            logger.exception("cost API: storing %d records failed", len(valid))
            self._send(503, {c.ERROR_MESSAGE: "storage failure, retry later"}, {"Retry-After": "1"})
            return
        self.server.metrics.add_records(accepted, len(valid) - accepted, len(errors))
        answer: dict[str, Any] = {c.ACCEPTED: accepted, c.DUPLICATES: len(valid) - accepted}
        if errors:
            answer[c.ERRORS] = errors
        self._send(400 if errors else 200, answer)


def make_server(
    db_path: str,
    host: str = "127.0.0.1",
    port: int = 8787,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    quiet: bool = True,
) -> CostAPIServer:
    """Open the store and bind; call ``serve_forever()`` on the result (``port=0`` picks a free port)."""
    return CostAPIServer((host, port), UsageStore(db_path), api_key, max_body_bytes, quiet)
