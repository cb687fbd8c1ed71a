"""llm-otel: OpenTelemetry spans, Prometheus metrics and exact USD cost for OpenAI and Ollama calls.

    import llm_otel
    handle = llm_otel.instrument()     # once, at start-up
    ...
    llm_otel.uninstrument()            # restores the client libraries

Where things are: spans start and end in ``llm_otel/instrumentors/_call.py``; cost is computed in
``llm_otel/pricing.py`` (called from there); metrics are derived in ``llm_otel/exporters/prometheus.py``;
cost records leave the process in ``llm_otel/exporters/cost_api.py``.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .attribution import attributes
from .errors import ConfigError

if TYPE_CHECKING:
    from .pipeline import Instrumentation

__all__ = ["ConfigError", "Instrumentation", "attributes", "instrument", "uninstrument", "__version__"]
from .version import __version__

_lock = threading.Lock()
_handle: Any = None


def instrument(
    *,
    service_name: str | None = None,
    otlp_endpoint: str | None = None,
    prometheus_port: Any = ...,
    prometheus_host: str | None = None,
    cost_api_url: str | None = None,
    cost_api_key: str | None = None,
    organization_id: str | None = None,
    spool_path: str | os.PathLike[str] | None = None,
    capture_content: Any = None,
    prices: Any = None,
    instrumentors: Any = None,
    tracer_provider: Any = None,
    model_aliases: dict[str, str] | None = None,
    provider_hosts: Any = None,
    label_tags: Any = None,
    max_model_labels: int | None = None,
    inject_stream_usage: bool | None = None,
) -> Instrumentation:
    """Instrument every installed supported client library. Idempotent: a second call returns the handle.

    Every keyword has an environment variable (see README); the keyword wins. Invalid values raise
    :class:`ConfigError` here, never later inside an LLM call.
    """
    global _handle
    from .config import _UNSET, Settings
    from .pipeline import build

    with _lock:
        if _handle is not None:
            return _handle  # type: ignore[no-any-return]
        settings = Settings.resolve(
            service_name=service_name,
            otlp_endpoint=otlp_endpoint,
            prometheus_port=_UNSET if prometheus_port is ... else prometheus_port,
            prometheus_host=prometheus_host,
            cost_api_url=cost_api_url,
            cost_api_key=cost_api_key,
            organization_id=organization_id,
            spool_path=spool_path,
            capture_content=capture_content,
            prices=prices,
            instrumentors=instrumentors,
            model_aliases=model_aliases,
            provider_hosts=provider_hosts,
            label_tags=label_tags,
            max_model_labels=max_model_labels,
            inject_stream_usage=inject_stream_usage,
        )
        _handle = build(settings, tracer_provider)
        return _handle  # type: ignore[no-any-return]


def uninstrument() -> None:
    """Restore every patched client method and stop what ``instrument()`` started."""
    global _handle
    with _lock:
        handle, _handle = _handle, None
    if handle is None:
        return
    for instrumentor in handle.instrumentors:
        instrumentor.uninstrument()
    handle.shutdown()


def __getattr__(name: str) -> Any:
    if name == "Instrumentation":
        from .pipeline import Instrumentation

        return Instrumentation
    raise AttributeError(name)
