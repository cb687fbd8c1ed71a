"""llm-otel's tracer, and the :class:`Telemetry` every wrapper uses, built from one resolved ``Settings``.

``make_tracer`` gives the tracer of llm-otel's instrumentation scope (name and version), with dropped-span
counting attached. ``build_telemetry`` turns :class:`~llm_otel.config.Settings` into the call-time bundle.
``llm_otel.instrument()`` passes a ready ``llm_otel_telemetry`` to each instrumentor; an instrumentor used
on its own (``OpenAIInstrumentor().instrument(tracer_provider=...)`` or ``opentelemetry-instrument``)
resolves the same ``Settings`` from the environment, so both paths behave alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from .. import semconv as sc
from ..sampling import record_dropped_spans
from ..version import __version__
from .call import Telemetry

if TYPE_CHECKING:
    from ..config import Settings
    from ..pricing import PriceTable


def make_tracer(tracer_provider: Any = None) -> trace.Tracer:
    tracer = trace.get_tracer(sc.SCOPE_NAME, __version__, tracer_provider=tracer_provider)
    record_dropped_spans(tracer)
    return tracer


def build_telemetry(settings: Settings, tracer_provider: Any, prices: PriceTable | None = None) -> Telemetry:
    """The call-time bundle: tracer, price table (loaded from ``settings.prices`` unless given), content
    capture and stream-usage settings, provider host mapping."""
    if prices is None:
        from ..pricing import PriceTable

        prices = PriceTable.load(settings.prices, model_aliases=settings.model_aliases)
    return Telemetry(
        tracer=make_tracer(tracer_provider),
        prices=prices,
        capture=settings.capture_content,
        max_chars=settings.content_max_chars,
        max_total_chars=settings.content_max_total_chars,
        inject_stream_usage=settings.inject_stream_usage,
        provider_hosts=settings.provider_hosts,
    )


#: Set by ``zero_code.py`` while the auto-instrumentation loader runs: (instrumentor, library) -> the shared
#: pipeline's telemetry. A hook rather than an import, so the instrumentors never reach up to the package.
loader_telemetry: Callable[[Any, str], Telemetry | None] | None = None


def telemetry_from_kwargs(kwargs: dict[str, Any], instrumentor: Any = None, library: str = "") -> Telemetry:
    """BaseInstrumentor kwargs -> Telemetry: the one ``instrument()`` built; under the auto-instrumentation
    loader the whole pipeline's (``zero_code.py``; LookupError: ``LLM_OTEL_INSTRUMENTORS`` leaves
    ``library`` out); else one from the environment (and ``tracer_provider`` / ``logger_provider`` when
    given)."""
    ready = kwargs.get("llm_otel_telemetry")
    if isinstance(ready, Telemetry):
        return ready
    if kwargs.get("tracer_provider") is None and instrumentor is not None and loader_telemetry is not None:
        shared = loader_telemetry(instrumentor, library)
        if shared is not None:
            return shared
    from ..config import Settings
    from .content_events import ContentEvents

    telemetry = build_telemetry(Settings.resolve(), kwargs.get("tracer_provider"))
    # like the official instrumentations: content events go to the given LoggerProvider, else the global one
    telemetry.events = ContentEvents(kwargs.get("logger_provider"))
    return telemetry
