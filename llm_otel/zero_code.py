"""``opentelemetry-instrument python app.py`` gets the whole llm-otel pipeline, as ``instrument()`` does.

The auto-instrumentation loader instantiates each ``opentelemetry_instrumentor`` entry point and calls
``instrument()`` on it with no llm-otel arguments. Between its ``opentelemetry_pre_instrument`` and
``opentelemetry_post_instrument`` entry points (:func:`loader_starts`, :func:`loader_done`, registered in
pyproject.toml) an instrumentor that was given no telemetry asks :func:`telemetry_for` for the running
pipeline: the first one builds it, once, from the environment (the same ``Settings`` as ``instrument()``)
onto the global SDK TracerProvider the distro configured (else a new one, as ``instrument()`` does), with
the Prometheus endpoint, the cost exporter and the live view; the second shares it. Entry points named in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` are never loaded; ``LLM_OTEL_INSTRUMENTORS`` is honoured too.
The handle is ``llm_otel.instrument()``'s: a later ``instrument()`` in the application returns it and
``uninstrument()`` undoes every instrumentor the loader started.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .instrumentors import tracer

if TYPE_CHECKING:
    from .instrumentors.call import Telemetry

logger = logging.getLogger("llm_otel")

#: True while the auto-instrumentation loader loads the instrumentors
_loading = False


def loader_starts() -> None:
    """``opentelemetry_pre_instrument`` entry point: the loader is about to load the instrumentors."""
    global _loading
    _loading = True
    tracer.loader_telemetry = telemetry_for


def loader_done() -> None:
    """``opentelemetry_post_instrument`` entry point: the loader has loaded them."""
    global _loading
    _loading = False
    tracer.loader_telemetry = None


def telemetry_for(instrumentor: Any, library: str) -> Telemetry | None:
    """Under the loader: the running pipeline's telemetry for ``instrumentor`` of ``library`` (the pipeline
    is built on first use). None outside the loader (an instrumentor used on its own keeps its own
    telemetry). Raises ``LookupError`` when ``LLM_OTEL_INSTRUMENTORS`` leaves ``library`` out."""
    if not _loading:
        return None
    from . import _pipeline_for_loader

    handle = _pipeline_for_loader()
    if library not in handle.settings.instrumentors:
        raise LookupError(library)
    if instrumentor not in handle.instrumentors:
        handle.instrumentors.append(instrumentor)  # uninstrument() undoes it
    return handle.telemetry  # type: ignore[no-any-return]
