"""What ``llm_otel.instrument()`` wires together, from one resolved :class:`~llm_otel.config.Settings`.

TracerProvider (the application's SDK provider if it set one, else a new global one) with:
  - an OTLP span exporter behind a BatchSpanProcessor, when asked for (keyword or standard OTEL_* vars);
  - the Prometheus metrics processor (+ its HTTP endpoint unless the port is 0);
  - the cost processor that forwards records to the cost API, when a URL is configured;
  - the live view's registry (``live``), served at ``/live`` on the metrics endpoint;
and the client instrumentors, which share one :class:`Telemetry` (tracer, price table, content mode).
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .config import Settings
from .errors import ConfigError
from .instrumentors.call import Telemetry
from .instrumentors.tracer import build_telemetry
from .pricing import PriceTable

logger = logging.getLogger("llm_otel")

#: The telemetry of the running ``instrument()``, for ``track()``/``record_usage()``; None when not set up.
_active: Telemetry | None = None


def active_telemetry() -> Telemetry | None:
    return _active


def _provider(settings: Settings, given: Any) -> tuple[TracerProvider, bool]:
    """The SDK provider to use and whether we created it."""
    if given is not None:
        if not isinstance(given, TracerProvider):
            raise ConfigError("tracer_provider", given, "expected an opentelemetry.sdk.trace.TracerProvider")
        return given, False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current, False
    attrs = {"service.name": settings.service_name} if settings.service_name else {}
    provider = TracerProvider(resource=Resource.create(attrs))
    trace.set_tracer_provider(provider)
    return provider, True


def _otlp_processor(settings: Settings) -> SpanProcessor:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return BatchSpanProcessor(GrpcExporter(endpoint=settings.otlp_endpoint))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return BatchSpanProcessor(HttpExporter(endpoint=settings.otlp_endpoint))


class Instrumentation:
    """Handle returned by ``instrument()``: flush and shut down what it started."""

    def __init__(
        self,
        settings: Settings,
        provider: TracerProvider,
        owns_provider: bool,
        telemetry: Telemetry,
        processors: list[SpanProcessor],
        metrics_server: Any,
        instrumentors: list[Any],
    ) -> None:
        self.settings = settings
        self.tracer_provider = provider
        self.owns_provider = owns_provider
        self.telemetry = telemetry
        self.processors = processors
        self.metrics_server = metrics_server
        self.instrumentors = instrumentors
        self._shut = False
        self._lock = threading.Lock()

    @property
    def prometheus_port(self) -> int | None:
        return getattr(self.metrics_server, "port", None)

    def flush(self, timeout_millis: int = 5000) -> bool:
        """Export everything recorded so far (OTLP, cost API); True when all sinks confirmed in time."""
        ok = True
        for processor in self.processors:
            try:
                ok = bool(processor.force_flush(timeout_millis)) and ok
            except Exception:
                logger.exception("llm-otel: flush failed")
                ok = False
        return ok

    def shutdown(self) -> None:
        """Flush with a deadline, stop the endpoint and the exporters; the instrumentation stays in place."""
        global _active
        with self._lock:
            if self._shut:
                return
            self._shut = True
        if _active is self.telemetry:
            _active = None
        for processor in self.processors:
            try:
                processor.shutdown()
            except Exception:
                logger.exception("llm-otel: shutdown of %s failed", type(processor).__name__)
        if self.metrics_server is not None:
            try:
                self.metrics_server.stop()
            except Exception:
                logger.exception("llm-otel: stopping the metrics endpoint failed")


def build(settings: Settings, tracer_provider: Any) -> Instrumentation:
    prices = PriceTable.load(settings.prices, model_aliases=settings.model_aliases)
    provider, owns = _provider(settings, tracer_provider)
    processors: list[SpanProcessor] = []
    metrics_server = None
    live = None
    try:
        if settings.otlp_endpoint and (owns or not settings.otlp_from_env):
            processors.append(_otlp_processor(settings))

        from .exporters.prometheus import PrometheusMetricsProcessor, start_metrics_server

        processors.append(
            PrometheusMetricsProcessor(
                label_tags=settings.label_tags,
                max_models=settings.max_model_labels,
                latest_semconv=settings.latest_semconv,
            )
        )
        if settings.live:
            from .live import start_live, wrap_for

            live = start_live(settings.live_token)
        if settings.prometheus_port:
            metrics_server = start_metrics_server(
                settings.prometheus_host,
                settings.prometheus_port,
                wrap_app=wrap_for(settings.prometheus_host, live) if live is not None else None,
            )

        if settings.cost_api_url:
            from .exporters.cost import build_cost_processor

            processors.append(
                build_cost_processor(
                    settings.cost_api_url,
                    settings.cost_api_key,
                    organization_id=settings.organization_id,
                    spool_path=settings.spool_path,
                )
            )
    except Exception:
        for processor in processors:
            processor.shutdown()
        if live is not None:
            live.shutdown()
        if metrics_server is not None:
            metrics_server.stop()
        raise
    for processor in processors:
        provider.add_span_processor(processor)
    if live is not None:  # fed by the calls themselves (Telemetry.live); flushed and shut down with the rest
        processors.append(live)

    global _active
    telemetry = build_telemetry(settings, provider, prices)
    telemetry.live = live
    instrumentors = _start_instrumentors(settings, provider, telemetry)
    handle = Instrumentation(settings, provider, owns, telemetry, processors, metrics_server, instrumentors)
    atexit.register(handle.shutdown)
    _active = telemetry
    return handle


def _start_instrumentors(settings: Settings, provider: TracerProvider, telemetry: Telemetry) -> list[Any]:
    started: list[Any] = []
    for name in settings.instrumentors:
        instrumentor = _instrumentor(name)
        if instrumentor is None:
            continue
        instrumentor.instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
        if instrumentor.is_instrumented_by_opentelemetry:
            started.append(instrumentor)
    return started


def _instrumentor(name: str) -> Any:
    """The instrumentor for an installed client library, or None when the library is not installed."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        logger.debug("llm-otel: %s is not installed; not instrumenting it", name)
        return None
    if name == "openai":
        from .instrumentors.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()
    from .instrumentors.ollama import OllamaInstrumentor

    return OllamaInstrumentor()
