"""Serving llm-otel's metrics: a stand-alone ``/metrics`` endpoint, or apps to mount in the user's server.

All three serve :func:`serving_registry`: llm-otel's own registry, or, when ``PROMETHEUS_MULTIPROC_DIR``
is set (pre-fork servers), a fresh registry whose ``MultiProcessCollector`` sums every worker's files.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ...config import prometheus_multiprocess_dir
from ...errors import ConfigError
from ...metrics_registry import REGISTRY

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464


def serving_registry(registry: Collector | None = None) -> Collector:
    """``registry`` if given; else the multiprocess view in multiprocess mode; else llm-otel's REGISTRY."""
    if registry is not None:
        return registry
    path = prometheus_multiprocess_dir()
    if path is None:
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=path)
    return merged


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never blocks process exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a stderr line each."""


def _bind(host: str, port: int, registry: Collector, wrap_app: Callable[..., Any] | None = None) -> _Server:
    """prometheus-client's start_http_server, but serve_forever polls every 50 ms so stop() is quick
    (its default 0.5 s made every shutdown wait)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    server_class = type("_MetricsServer", (_Server,), {"address_family": family})
    httpd: _Server = server_class(sockaddr[:2], _QuietHandler)
    app = prometheus_client.make_wsgi_app(registry)
    httpd.set_app(wrap_app(app) if wrap_app is not None else app)
    return httpd


class MetricsServer:
    """A running ``/metrics`` endpoint (daemon thread). ``port`` is the bound port (useful with port 0)."""

    def __init__(self, httpd: Any, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port: int = httpd.server_port
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and free the port; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _valid_port(port: object) -> int:
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("prometheus_port", port, "must be an integer from 0 to 65535 (0: any free port)")
    return port


def _valid_host(host: object) -> str:
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host.strip()):
        raise ConfigError("prometheus_host", host, "must be a host name or IP address")
    return host.strip().strip("[]")


def start_metrics_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    registry: Collector | None = None,
    wrap_app: Callable[..., Any] | None = None,
) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread. Port 0 binds a free port (see ``.port``).
    ``wrap_app(metrics_app)`` -> the WSGI app actually served (the live view routes ``/live*`` this way).

    Raises ConfigError for a bad host/port or when the address cannot be bound (port in use, unknown host).
    """
    host = _valid_host(host)
    port = _valid_port(port)
    try:
        served = serving_registry(registry)
        httpd = _bind(host, port, served, wrap_app)
    except socket.gaierror as exc:
        raise ConfigError("prometheus_host", host, f"cannot resolve: {exc}") from exc
    except OSError as exc:
        raise ConfigError("prometheus_port", port, f"cannot listen on {host}:{port}: {exc}") from exc
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="llm-otel-metrics", daemon=True
    )
    thread.start()
    return MetricsServer(httpd, thread, host)


def make_wsgi_app(registry: Collector | None = None) -> Callable[..., Any]:
    """A WSGI app serving llm-otel's metrics, to mount in the application's own server."""
    return prometheus_client.make_wsgi_app(serving_registry(registry))


def make_asgi_app(registry: Collector | None = None) -> Callable[..., Any]:
    """An ASGI app serving llm-otel's metrics (e.g. ``app.mount("/metrics", make_asgi_app())``)."""
    return prometheus_client.make_asgi_app(serving_registry(registry))
