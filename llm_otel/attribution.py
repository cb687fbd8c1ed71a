"""Cost attribution tags: ``with llm_otel.attributes(tenant="acme", feature="search"):``.

Tags travel in OpenTelemetry baggage (keys ``llm_otel.tag.<key>``), which lives in contextvars, so they
follow async tasks and, with the W3C baggage propagator, cross service boundaries. Every GenAI span started
inside the block carries them as ``llm_otel.tag.<key>`` attributes; cost records copy them. They become
Prometheus labels only for keys the user allow-lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage, context

from .semconv import TAG_PREFIX

_PREFIX_LEN = len(TAG_PREFIX)


@contextmanager
def attributes(**tags: str) -> Iterator[None]:
    """Attach attribution tags to every GenAI span started inside the block."""
    ctx = context.get_current()
    for key, value in tags.items():
        if not key.isidentifier():
            raise ValueError(f"llm-otel: attribution tag name {key!r} must be an identifier")
        ctx = baggage.set_baggage(TAG_PREFIX + key, str(value), ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def current_tags() -> dict[str, str]:
    """The tags in effect now, as span attributes (empty dict when none)."""
    entries = baggage.get_all()
    if not entries:
        return {}
    return {k: str(v) for k, v in entries.items() if k.startswith(TAG_PREFIX)}
