"""The live view: LLM calls in flight, the last finished ones and running totals, served as JSON,
server-sent events and one HTML page at ``/live`` on llm-otel's metrics endpoint, and in the terminal by
``llm-otel top``.

``registry.py`` keeps the state (a span processor fed by the span lifecycle), ``http.py`` serves it
(WSGI/ASGI; :func:`make_wsgi_app` / :func:`make_asgi_app` to mount it in the application's own server),
``access.py`` decides who may see it, ``top.py`` is the terminal view. docs/live.md has the schemas.
"""

from __future__ import annotations

from typing import Any

from .access import Access, decide, is_loopback
from .http import LiveWSGIApp, make_asgi_app, make_wsgi_app, router
from .registry import SCHEMA_VERSION, LiveRegistry, active_registry, set_active_registry

__all__ = [
    "SCHEMA_VERSION",
    "Access",
    "LiveRegistry",
    "LiveWSGIApp",
    "active_registry",
    "decide",
    "is_loopback",
    "make_asgi_app",
    "make_wsgi_app",
    "router",
    "start_live",
    "wrap_for",
]


def start_live(token: str | None) -> LiveRegistry:
    """The registry ``instrument()`` runs (becomes :func:`active_registry`)."""
    registry = LiveRegistry(token=token)
    set_active_registry(registry)
    return registry


def wrap_for(host: str, registry: LiveRegistry) -> Any:
    """``wrap_app`` for the metrics endpoint on ``host``: ``/live*`` to the live view under the access rule
    for that host (off, with one warning, on a non-loopback host without a token)."""
    return router(LiveWSGIApp(registry, access=decide(host, registry.token)))
