"""The live view over HTTP: JSON endpoints, server-sent events and the page, as WSGI and ASGI apps.

Routes, relative to where the app is mounted (``/live`` on llm-otel's own metrics endpoint):

* ``GET /``: the page (one self-contained HTML document, no external resources);
* ``GET /active``, ``GET /recent?limit=N``, ``GET /totals``: JSON (schemas in docs/live.md);
* ``GET /events``: ``text/event-stream``, an ``update`` event per published change, heartbeats.

Access (``access.py``): with a token, every route wants ``Authorization: Bearer <token>`` or the cookie
that ``GET /?token=<token>`` sets (the page's EventSource cannot send headers), else 401.

On llm-otel's endpoint, :func:`router` sends ``/live`` and ``/live/*`` here and everything else to the
metrics app. The server is threaded: each event stream holds one thread, which ends when the client goes
away (noticed within a second) or the registry shuts down.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from .access import COOKIE_NAME, Access, host_is_loopback, presented_token, token_matches
from .registry import HEARTBEAT, LiveRegistry, active_registry

PREFIX = "/live"
_JSON = "application/json"
_NO_STORE = ("Cache-Control", "no-store")
#: The page loads nothing from anywhere: inline style and script, and connections to its own origin only.
_CSP = (
    "Content-Security-Policy",
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
)
_REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}  # fmt: skip
_page_cache: list[str] = []


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    events: bool = False

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, '')}".strip()


def _json(status: int, document: Any) -> Response:
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", _JSON), _NO_STORE], body)


def _error(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    response = _json(status, {"error": message})
    response.headers.extend(extra)
    return response


def page_html(base: str) -> bytes:
    """The page, with the base path of the JSON/event routes filled in (escaped for a <script>)."""
    if not _page_cache:
        _page_cache.append(resources.files(__package__).joinpath("page.html").read_text("utf-8"))
    literal = json.dumps(base).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _page_cache[0].replace('"__LLM_OTEL_LIVE_BASE__"', literal).encode("utf-8")


def handle(
    registry: LiveRegistry | None,
    access: Access,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    base: str,
) -> Response:
    """One request -> a response (``events=True``: the caller streams ``registry.listen()``).

    ``path`` is relative to the mount point (``""``, ``/``, ``/active``, ...), ``headers`` have lower-case
    names, ``base`` is the mount point as the browser sees it (``/live``)."""
    if not access.enabled:
        return _error(404, f"the live view is off: {access.reason}")
    if method not in ("GET", "HEAD"):
        return _error(405, "only GET", [("Allow", "GET, HEAD")])
    params = parse_qs(query, keep_blank_values=True)
    page = path in ("", "/")
    if page and "token" in params and access.token:
        given = params["token"][-1]
        if not token_matches(access.token, given):
            return _error(401, "wrong token", [("WWW-Authenticate", 'Bearer realm="llm-otel live"')])
        jar: SimpleCookie = SimpleCookie()
        jar[COOKIE_NAME] = given
        jar[COOKIE_NAME]["path"] = base or "/"
        jar[COOKIE_NAME]["httponly"] = True
        jar[COOKIE_NAME]["samesite"] = "Strict"
        cookie = jar[COOKIE_NAME].OutputString()
        return Response(303, [("Location", base or "/"), ("Set-Cookie", cookie), _NO_STORE])
    if access.reason == "loopback" and not host_is_loopback(headers.get("host")):
        # an open loopback endpoint answers loopback names only: a DNS-rebinding page cannot read it
        return _error(403, "the live view answers requests to a loopback host name or address only")
    presented = presented_token(headers.get("authorization"), headers.get("cookie"))
    if not token_matches(access.token, presented):
        message = "a bearer token is required" if presented is None else "wrong token"
        return _error(401, message, [("WWW-Authenticate", 'Bearer realm="llm-otel live"')])
    if registry is None:
        return _error(503, "the live view is not running (llm_otel.instrument() with live on)")
    if page:
        return Response(200, [("Content-Type", "text/html; charset=utf-8"), _NO_STORE, _CSP], page_html(base))
    if path == "/active":
        return _json(200, registry.active_document())
    if path == "/totals":
        return _json(200, registry.totals_document())
    if path == "/recent":
        limit: int | None = None
        if "limit" in params:
            raw = params["limit"][-1]
            if not raw.isdigit() or not 1 <= int(raw) <= registry.ring_size:
                return _error(400, f"limit must be an integer from 1 to {registry.ring_size}")
            limit = int(raw)
        return _json(200, registry.recent_document(limit))
    if path == "/events":
        headers_out = [("Content-Type", "text/event-stream; charset=utf-8"), _NO_STORE,
                       ("X-Accel-Buffering", "no")]  # fmt: skip
        return Response(200, headers_out, events=True)
    return _error(404, "no such live view route")


# -- WSGI ---------------------------------------------------------------------------------------------


def _peer_gone(environ: Mapping[str, Any]) -> Callable[[], bool] | None:
    """A check that the client of a streaming WSGI response has closed its connection, when the server
    exposes the socket's descriptor (wsgiref and most threaded servers do, through ``wsgi.input``)."""
    try:
        fd = environ["wsgi.input"].fileno()
    except Exception:
        return None
    if not isinstance(fd, int) or fd < 0:
        return None

    def gone() -> bool:
        try:
            readable, _, _ = select.select([fd], [], [], 0)
            if not readable:
                return False
            with socket.socket(fileno=os.dup(fd)) as peer:  # readable: a peek will not block
                return peer.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    if "HTTP_HOST" in environ:
        out["host"] = str(environ["HTTP_HOST"])
    if "HTTP_AUTHORIZATION" in environ:
        out["authorization"] = str(environ["HTTP_AUTHORIZATION"])
    if "HTTP_COOKIE" in environ:
        out["cookie"] = str(environ["HTTP_COOKIE"])
    return out


class LiveWSGIApp:
    """WSGI app of the live view. ``registry``: default the running ``instrument()``'s (looked up per
    request, so the app may be built first). ``token``: default the registry's ``live_token``; ``access``
    overrides both rules (llm-otel's own endpoint passes the loopback/token decision)."""

    def __init__(
        self,
        registry: LiveRegistry | None = None,
        token: str | None = None,
        *,
        access: Access | None = None,
        heartbeat: float = 15.0,
    ) -> None:
        self.registry = registry
        self.token = token
        self.access = access
        self.heartbeat = heartbeat

    def _resolve(self) -> tuple[LiveRegistry | None, Access]:
        registry = self.registry if self.registry is not None else active_registry()
        if self.access is not None:
            return registry, self.access
        token = self.token or (registry.token if registry is not None else None)
        return registry, Access(True, token, "mounted")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        registry, access = self._resolve()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        response = handle(registry, access, method, str(environ.get("PATH_INFO") or ""),
                          str(environ.get("QUERY_STRING") or ""), _wsgi_headers(environ),
                          str(environ.get("SCRIPT_NAME") or ""))  # fmt: skip
        start_response(response.status_line, response.headers)
        if response.events and registry is not None:
            if method == "HEAD":
                return [b""]
            return registry.listen(self.heartbeat, gone=_peer_gone(environ))
        return [b"" if method == "HEAD" else response.body]


def router(live_app: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``wrap(metrics_app)`` -> an app sending ``/live`` and ``/live/*`` to ``live_app`` (mounted at
    ``/live``) and every other path to ``metrics_app``; for ``start_metrics_server(wrap_app=...)``."""

    def wrap(metrics_app: Callable[..., Any]) -> Callable[..., Any]:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = str(environ.get("PATH_INFO") or "")
            if path == PREFIX or path.startswith(PREFIX + "/"):
                inner = dict(environ)
                inner["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME") or "").rstrip("/") + PREFIX
                inner["PATH_INFO"] = path[len(PREFIX) :]
                return live_app(inner, start_response)  # type: ignore[no-any-return]
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]

        return app

    return wrap


def make_wsgi_app(
    registry: LiveRegistry | None = None, token: str | None = None, *, heartbeat: float = 15.0
) -> LiveWSGIApp:
    """The live view as a WSGI app, to mount in the application's own server (e.g. under ``/live``).

    Uses the running ``instrument()``'s registry unless one is given, and its ``live_token`` unless
    ``token`` is given; without either the routes are open: protect the mount point yourself."""
    return LiveWSGIApp(registry, token, heartbeat=heartbeat)


# -- ASGI ---------------------------------------------------------------------------------------------


def make_asgi_app(
    registry: LiveRegistry | None = None, token: str | None = None, *, heartbeat: float = 15.0
) -> Callable[..., Any]:
    """The live view as an ASGI app (e.g. ``app.mount("/live", make_asgi_app())``); same rules as
    :func:`make_wsgi_app`. Snapshots are built off the event loop (``asyncio.to_thread``)."""
    wsgi = LiveWSGIApp(registry, token, heartbeat=heartbeat)

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        reg, access = wsgi._resolve()
        root = str(scope.get("root_path") or "")
        path = str(scope.get("path") or "")
        if root and path.startswith(root):  # servers that keep the full path in ``path``
            path = path[len(root) :]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        method = str(scope.get("method", "GET")).upper()
        query = (scope.get("query_string") or b"").decode("latin-1")
        response = handle(reg, access, method, path, query, headers, root)
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        if not response.events or reg is None or method == "HEAD":
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})
            return
        await _asgi_events(reg, receive, send, heartbeat)

    return app


async def _asgi_events(
    registry: LiveRegistry, receive: Callable[..., Any], send: Callable[..., Any], heartbeat: float
) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    seen = registry.add_listener()
    loop = asyncio.get_running_loop()
    try:
        first = await asyncio.to_thread(registry.first_event, seen)
        await send({"type": "http.response.body", "body": first, "more_body": True})
        next_beat = loop.time() + heartbeat
        while not registry.closed:
            done, _ = await asyncio.wait({watcher}, timeout=min(registry.interval, 1.0))
            if done:
                return
            seq, payload = registry.published()
            if seq != seen and payload is not None:
                seen = seq
                await send({"type": "http.response.body", "body": payload, "more_body": True})
            if loop.time() >= next_beat:
                next_beat = loop.time() + heartbeat
                await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        registry.remove_listener()
        watcher.cancel()
