"""llm-otel: OpenTelemetry spans, Prometheus metrics and exact USD cost for OpenAI and Ollama calls.

    import llm_otel
    handle = llm_otel.instrument()     # once, at start-up
    ...
    llm_otel.uninstrument()            # restores the client libraries

Where things are: a span starts and ends in ``instrumentors/call.py`` (each client's wrappers in
``instrumentors/openai/`` and ``instrumentors/ollama/``; ``manual.py`` for ``track()``); its cost is
computed by ``pricing/`` (called from there); metrics are derived from finished spans in
``exporters/prometheus/``; cost records leave the process in ``exporters/cost/exporter.py``. Every
setting is declared and read in ``config.py``; ``pipeline.py`` wires them together.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .attribution import attributes
from .errors import ConfigError

if TYPE_CHECKING:
    from .manual import current_call, record_usage, track
    from .pipeline import Instrumentation

__all__ = [
    "ConfigError",
    "Instrumentation",
    "attributes",
    "current_call",
    "instrument",
    "record_usage",
    "track",
    "uninstrument",
    "__version__",
]
from .version import __version__

_lock = threading.Lock()
_handle: Any = None


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None, **options: Any) -> Instrumentation:
    """Instrument every installed supported client library. Idempotent: a second call returns the handle
    (with a warning, once, if it asked for different settings: ``uninstrument()`` first to change them).

    ``options`` are the settings declared in :class:`llm_otel.config.Settings` (``service_name``,
    ``otlp_endpoint``, ``prometheus_port``, ``cost_api_url``, ``capture_content``, ``prices``,
    ``shutdown_timeout``, ...; the README lists them with their environment variables). A keyword wins over
    its environment variable; ``None`` means "not given". ``tracer_provider`` is an SDK provider to add
    llm-otel's processors to (default: the global one if it is an SDK provider, else a new one). An unknown
    keyword or invalid value raises :class:`ConfigError` here, never later inside an LLM call.
    ``meter_provider``: an SDK MeterProvider to record the OpenTelemetry metrics to (default: the global
    one if it is an SDK provider, else one made for ``OTEL_METRICS_EXPORTER``, else none).
    """
    global _handle
    from .config import Settings
    from .pipeline import build

    with _lock:
        if _handle is not None:
            _warn_if_different(_handle, tracer_provider, options, meter_provider)
            return _handle  # type: ignore[no-any-return]
        _handle = build(Settings.resolve(**options), tracer_provider, meter_provider)
        return _handle  # type: ignore[no-any-return]


def _pipeline_for_loader() -> Instrumentation:
    """The running handle, else one built from the environment whose instrumentors the
    auto-instrumentation loader starts itself (``zero_code.py``)."""
    global _handle
    from .config import Settings
    from .pipeline import build

    with _lock:
        if _handle is None:
            _handle = build(Settings.resolve(), None, start_instrumentors=False)
        return _handle  # type: ignore[no-any-return]


def _warn_if_different(
    handle: Any, tracer_provider: Any, options: dict[str, Any], meter_provider: Any = None
) -> None:
    """A second ``instrument()`` keeps the running setup; say so once if it asked for something else."""
    import logging

    from .config import Settings

    asked = Settings.resolve(**options)  # a bad value is still a ConfigError
    different = sorted(
        name
        for name, value in options.items()
        if value is not None and getattr(asked, name) != getattr(handle.settings, name)
    )
    if tracer_provider is not None and tracer_provider is not handle.tracer_provider:
        different.append("tracer_provider")
    if meter_provider is not None and meter_provider is not getattr(handle, "meter_provider", None):
        different.append("meter_provider")
    if different and not handle.warned_arguments:
        handle.warned_arguments = True
        logging.getLogger("llm_otel").warning(
            "llm-otel: instrument() called again with different %s while already instrumented; the first "
            "call's settings stay in effect (call llm_otel.uninstrument() first to change them)",
            ", ".join(different),
        )


def uninstrument() -> None:
    """Restore every patched client method and stop what ``instrument()`` started: llm-otel's processors
    stop receiving spans (a later ``instrument()`` starts afresh, nothing is counted twice)."""
    global _handle
    import atexit

    with _lock:
        handle, _handle = _handle, None
    if handle is None:
        return
    for instrumentor in handle.instrumentors:
        instrumentor.uninstrument()
    handle.shutdown()
    atexit.unregister(handle.shutdown)


_LAZY = {"Instrumentation": "pipeline", "track": "manual", "record_usage": "manual", "current_call": "manual"}


def __getattr__(name: str) -> Any:
    """Names whose modules import the OpenTelemetry SDK load on first use: ``import llm_otel`` stays light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
