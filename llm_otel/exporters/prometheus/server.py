"""Serving llm-otel's metrics: a stand-alone ``/metrics`` endpoint, or apps to mount in the user's server.

All three serve :func:`serving_registry`: llm-otel's own registry, or, when ``PROMETHEUS_MULTIPROC_DIR``
is set (pre-fork servers), a fresh registry whose ``MultiProcessCollector`` sums every worker's files.

Fork: the endpoint belongs to the process that started it. A forked child closes its copy of the
listening socket at once (a child outliving its parent must not hold the port without serving it) and its
``stop()`` returns immediately (there is no serving thread in the child to wait for). A scrape holds a
lock that ``os.fork()`` takes first, so a child never inherits a metric lock held mid-scrape.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import weakref
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
from ..span_fold import ensure_drain_collector

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464

#: Held while a scrape reads the registry; fork() waits for it (see the module docstring).
_scrape_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _scrape_lock
    _scrape_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lambda: _scrape_lock.acquire(),
        after_in_parent=lambda: _scrape_lock.release(),
        after_in_child=_after_fork_in_child,
    )


class PortInUseError(ConfigError):
    """The metrics port is taken (by another process, often another instance of the same application)."""


def serving_registry(registry: Collector | None = None) -> Collector:
    """``registry`` if given; else the multiprocess view in multiprocess mode; else llm-otel's REGISTRY."""
    if registry is not None:
        return registry
    path = prometheus_multiprocess_dir()
    if path is None:
        return REGISTRY
    merged = CollectorRegistry()
    ensure_drain_collector(merged)  # this process's queued spans reach its files before they are read
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
    app = _fork_safe(prometheus_client.make_wsgi_app(registry))
    httpd.set_app(wrap_app(app) if wrap_app is not None else app)
    return httpd


def _fork_safe(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app, reading the registry under the scrape lock (prometheus-client builds the whole body
    before returning it)."""

    def scrape(environ: Any, start_response: Any) -> Any:
        with _scrape_lock:
            return app(environ, start_response)

    return scrape


class MetricsServer:
    """A running ``/metrics`` endpoint (daemon thread). ``port`` is the bound port (useful with port 0)."""

    def __init__(self, httpd: Any, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port: int = httpd.server_port
        self._stopped = False
        #: The process serving; in a forked child this server is the parent's, not ours to stop.
        self.owner_pid = os.getpid()
        if hasattr(os, "register_at_fork"):
            weak = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(after_in_child=lambda: _call_weak(weak))

    @property
    def serving(self) -> bool:
        """True in the process that started the endpoint, until ``stop()``."""
        return not self._stopped and os.getpid() == self.owner_pid

    def _after_fork_in_child(self) -> None:
        with contextlib.suppress(OSError):
            self._httpd.socket.close()  # our copy only; the parent keeps serving

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and free the port; idempotent."""
        self.stop_within(5.0)

    def stop_within(self, timeout: float) -> None:
        """``stop()``, waiting at most ``timeout`` seconds for the serving thread."""
        if self._stopped:
            return
        self._stopped = True
        if os.getpid() != self.owner_pid:  # a forked child: nothing serves here, nothing to wait for
            with contextlib.suppress(OSError):
                self._httpd.socket.close()
            return
        self._httpd.shutdown()  # returns once serve_forever noticed (it polls every 50 ms)
        self._httpd.server_close()
        self._thread.join(timeout=max(0.0, timeout))


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

    Raises ConfigError for a bad host/port or when the address cannot be bound (unknown host, permission),
    :class:`PortInUseError` (a ConfigError) when the port is taken.
    """
    host = _valid_host(host)
    port = _valid_port(port)
    try:
        served = serving_registry(registry)
        httpd = _bind(host, port, served, wrap_app)
    except socket.gaierror as exc:
        raise ConfigError("prometheus_host", host, f"cannot resolve: {exc}") from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError("prometheus_port", port, f"cannot listen on {host}:{port}: {exc}") from exc
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


def _call_weak(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()
