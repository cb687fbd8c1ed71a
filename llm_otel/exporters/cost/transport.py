"""HTTP to the cost API: one keep-alive ``http.client`` connection, backoff and ``Retry-After``.

The standard library's ``http.client`` gives explicit per-request timeouts and no redirects (a redirect
would leak the bearer key) with no new dependency; ``urllib.request`` would open a connection per batch.
Proxies from the standard ``*_PROXY`` variables are honoured by hand (CONNECT tunnel for https).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import random
import ssl
import time
import urllib.request
from datetime import timezone
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ... import cost_contract as c

_MAX_RESPONSE_BYTES = 1 << 20
_USER_AGENT = "llm-otel-cost-exporter/0.1"


class Response(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes


class Transport:
    """POST to ``{base}/v1/usage`` (``cost_contract.USAGE_PATH``) over one keep-alive connection."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        path = parts.path.rstrip("/") + c.USAGE_PATH
        self._target = path
        self._proxy: tuple[str, int] | None = None
        proxy_url = urllib.request.getproxies().get(parts.scheme)
        loopback = self._host in ("localhost", "127.0.0.1", "::1")
        if proxy_url and not loopback and not urllib.request.proxy_bypass(self._host):
            proxy = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
            if proxy.hostname:
                self._proxy = (proxy.hostname, proxy.port or 8080)
                if not self._https:  # plain-http proxying: absolute-form request target
                    self._target = f"http://{self._host}:{self._port}{path}"
        self._headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
        }
        if api_key is not None:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._conn: http.client.HTTPConnection | None = None
        self._ssl = ssl.create_default_context() if self._https else None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        host, port = self._proxy or (self._host, self._port)
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
            if self._proxy:
                conn.set_tunnel(self._host, self._port)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        return conn

    def post(self, body: bytes, timeout: float) -> Response:
        """One request; raises OSError / HTTPException on network failure. A stale keep-alive connection
        is retried once on a fresh one (safe: the server deduplicates by record id)."""
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._conn or self._connect(timeout)
            self._conn = conn
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request("POST", self._target, body=body, headers=self._headers)
                resp = conn.getresponse()
                data = resp.read(_MAX_RESPONSE_BYTES)
                if resp.will_close or not resp.isclosed():
                    self.close()
                return Response(resp.status, resp.getheader("Retry-After"), data)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if not reused or attempt == 1:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def forget(self) -> None:
        """After fork: drop the parent's connection without touching it."""
        self._conn = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Backoff:
    """Exponential backoff with full jitter; a server's ``Retry-After`` replaces it (with +10 % jitter)."""

    def __init__(self, initial: float, maximum: float, max_retry_after: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.max_retry_after = max_retry_after
        self.attempt = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        self.attempt += 1
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after)
            return wait + random.uniform(0, 0.1 * wait)
        ceiling = min(self.maximum, self.initial * 2 ** min(self.attempt - 1, 32))
        return random.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
