"""llm-otel's tracer, and the :class:`Telemetry` an instrumentor uses, from ``instrument()`` or from
BaseInstrumentor kwargs.

``make_tracer`` gives the tracer of llm-otel's instrumentation scope (name and version), with dropped-span
counting attached. ``llm_otel.instrument()`` passes a ready ``llm_otel_telemetry``. When an instrumentor is
used on its own (``OpenAIInstrumentor().instrument(tracer_provider=...)`` or ``opentelemetry-instrument``),
``telemetry_from_kwargs`` reads the settings from the environment, exactly as ``instrument()`` would.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace

from .. import semconv as sc
from ..content import max_chars_from_env, parse_mode
from ..sampling import record_dropped_spans
from ..version import __version__
from .call import Telemetry


def make_tracer(tracer_provider: Any = None) -> trace.Tracer:
    tracer = trace.get_tracer(sc.SCOPE_NAME, __version__, tracer_provider=tracer_provider)
    record_dropped_spans(tracer)
    return tracer


def telemetry_from_kwargs(kwargs: dict[str, Any]) -> Telemetry:
    ready = kwargs.get("llm_otel_telemetry")
    if isinstance(ready, Telemetry):
        return ready
    from ..config import parse_bool, parse_provider_hosts
    from ..pricing import PriceTable

    return Telemetry(
        tracer=make_tracer(kwargs.get("tracer_provider")),
        prices=PriceTable.load(os.environ.get("LLM_OTEL_PRICES") or None),
        capture=parse_mode(None),
        max_chars=max_chars_from_env(),
        inject_stream_usage=parse_bool(
            "LLM_OTEL_STREAM_USAGE", os.environ.get("LLM_OTEL_STREAM_USAGE"), True
        ),
        provider_hosts=parse_provider_hosts(os.environ.get("LLM_OTEL_PROVIDER_HOSTS")),
    )
