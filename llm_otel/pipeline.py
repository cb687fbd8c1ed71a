"""What ``llm_otel.instrument()`` wires together, from one resolved :class:`~llm_otel.config.Settings`.

TracerProvider (the application's SDK provider if it set one, else a new global one) with one
:class:`LLMOtelSpanProcessor` holding:
  - an OTLP span exporter behind a BatchSpanProcessor, when asked for (keyword or standard OTEL_* vars);
  - the Prometheus metrics processor (+ its HTTP endpoint unless the port is 0 or taken);
  - the cost processor that forwards records to the cost API, when a URL is configured;
  - the live view's registry (``live``), served at ``/live`` on the metrics endpoint;
and the client instrumentors, which share one :class:`Telemetry` (tracer, price table, content mode).

The SDK's provider cannot remove a processor, so llm-otel adds exactly one to each provider and swaps what
it holds: ``uninstrument()`` empties it, the next ``instrument()`` fills it again (calls are never counted
twice). ``shutdown()`` gives every exporter together at most ``shutdown_timeout`` seconds: queued cost
records go to the disk spool first, then OTLP gets what time remains, then the cost API.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .config import Settings
from .errors import ConfigError
from .instrumentors.call import Telemetry
from .instrumentors.tracer import build_telemetry
from .pricing import PriceTable

logger = logging.getLogger("llm_otel")

#: The telemetry of the running ``instrument()``, for ``track()``/``record_usage()``; None when not set up.
_active: Telemetry | None = None
#: Providers llm-otel created (and made global): a later ``instrument()`` may still set their resource.
_created: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
#: llm-otel's one processor on each provider it was added to.
_attached: weakref.WeakKeyDictionary[TracerProvider, LLMOtelSpanProcessor] = weakref.WeakKeyDictionary()
_logged: set[str] = set()


def active_telemetry() -> Telemetry | None:
    return _active


def _log_once(key: str, level: int, msg: str, *args: Any) -> None:
    if key not in _logged:
        _logged.add(key)
        logger.log(level, msg, *args)


def _provider(settings: Settings, given: Any) -> tuple[TracerProvider, bool]:
    """The SDK provider to use and whether llm-otel created it."""
    if given is not None:
        if not isinstance(given, TracerProvider):
            raise ConfigError("tracer_provider", given, "expected an opentelemetry.sdk.trace.TracerProvider")
        provider = given
    else:
        current = trace.get_tracer_provider()
        if not isinstance(current, TracerProvider):
            attrs = {"service.name": settings.service_name} if settings.service_name else {}
            provider = TracerProvider(resource=Resource.create(attrs))
            trace.set_tracer_provider(provider)
            _created.add(provider)
            return provider, True
        provider = current
    owns = provider in _created
    name = settings.service_name
    if name is not None and provider.resource.attributes.get("service.name") != name:
        if owns:  # ours, from an earlier instrument(): the new name applies from now on
            _set_service_name(provider, name)
        else:
            _log_once(
                "service_name",
                logging.WARNING,
                "llm-otel: service_name=%r is not applied: the application's TracerProvider already has "
                "service.name=%r in its Resource, which cannot change; set it where that provider is created",
                name,
                provider.resource.attributes.get("service.name"),
            )
    return provider, owns


def _set_service_name(provider: TracerProvider, name: str) -> None:
    update = getattr(provider, "_update_resource", None)
    resource = Resource({"service.name": name})
    if callable(update):  # also updates the tracers it already handed out
        update(resource)
    else:  # older SDKs create a tracer per get_tracer() call, with the provider's current resource
        provider._resource = provider.resource.merge(resource)  # type: ignore[attr-defined]


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor whose ``shutdown(timeout)`` returns within ``timeout`` seconds even when the
    exporter hangs (the SDK's waits up to 30 s for its worker, each export up to the OTLP timeout, 10 s).
    The worker is a daemon thread: what it still holds at the deadline is not exported."""

    def shutdown(self, timeout: float | None = None) -> None:  # type: ignore[override]
        if timeout is None:
            super().shutdown()
            return
        millis = max(0.0, timeout) * 1000.0
        inner = getattr(self, "_batch_processor", None)
        if inner is not None and "timeout_millis" in inspect.signature(inner.shutdown).parameters:
            inner.shutdown(timeout_millis=millis)  # newer SDKs: joins the worker for at most this long
            return
        worker = getattr(self, "worker_thread", None)
        condition = getattr(self, "condition", None)
        if isinstance(worker, threading.Thread) and condition is not None and hasattr(self, "done"):
            self.done = True  # older SDKs (not tested here): their shutdown(), with a bounded join
            with condition:
                condition.notify_all()
            worker.join(millis / 1000.0)
            self.span_exporter.shutdown()
            return
        super().shutdown()


def shutdown_processors(processors: Sequence[SpanProcessor], timeout: float) -> None:
    """Shut ``processors`` down within ``timeout`` seconds together: cost records to disk first, then each
    processor in order with the time that remains."""
    deadline = time.monotonic() + timeout
    for processor in processors:
        spool = getattr(processor, "spool_queued", None)
        if spool is not None:
            try:
                spool(deadline)
            except Exception:
                logger.exception("llm-otel: spooling cost records at shutdown failed")
    for processor in processors:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            if "timeout" in inspect.signature(processor.shutdown).parameters:
                processor.shutdown(timeout=remaining)  # type: ignore[call-arg]
            else:
                processor.shutdown()
        except Exception:
            logger.exception("llm-otel: shutdown of %s failed", type(processor).__name__)


_BASE_ON_START = SpanProcessor.on_start
_BASE_ON_ENDING = getattr(SpanProcessor, "_on_ending", None)


class LLMOtelSpanProcessor(SpanProcessor):
    """Every processor of one ``instrument()``, added to a provider once and switched as a whole."""

    def __init__(self) -> None:
        self.processors: tuple[SpanProcessor, ...] = ()
        self.shutdown_timeout = 3.0
        self._starts: tuple[Any, ...] = ()
        self._endings: tuple[Any, ...] = ()
        self._ends: tuple[Any, ...] = ()
        self._lock = threading.Lock()

    def hold(self, processors: Sequence[SpanProcessor], shutdown_timeout: float) -> None:
        """From now on, spans go to ``processors`` (empty: to none)."""
        procs = tuple(processors)
        with self._lock:
            self.shutdown_timeout = shutdown_timeout
            self._starts = tuple(p.on_start for p in procs if type(p).on_start is not _BASE_ON_START)
            self._endings = tuple(
                p._on_ending  # type: ignore[attr-defined]
                for p in procs
                if _BASE_ON_ENDING is not None and getattr(type(p), "_on_ending", None) is not _BASE_ON_ENDING
            )
            self._ends = tuple(p.on_end for p in procs)
            self.processors = procs
            # One receiver (the usual case): the provider calls it directly, a Python frame less per span.
            # Instance attributes shadow the methods below; each assignment is atomic.
            self.on_start = self._starts[0] if len(self._starts) == 1 else self._on_start_all  # type: ignore[method-assign]
            self.on_end = self._ends[0] if len(self._ends) == 1 else self._on_end_all  # type: ignore[method-assign]

    def release(self, processors: Sequence[SpanProcessor]) -> bool:
        """Stop sending spans to ``processors`` if they are what this holds; True if they were."""
        with self._lock:
            if tuple(processors) != self.processors:
                return False
        self.hold((), self.shutdown_timeout)
        return True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for start in self._starts:
            start(span, parent_context)

    _on_start_all = on_start

    def _on_ending(self, span: Span) -> None:
        for ending in self._endings:
            ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for end in self._ends:
            end(span)

    _on_end_all = on_end

    def shutdown(self) -> None:
        """The provider shuts down (``provider.shutdown()``, its exit hook): ours too, within the timeout."""
        processors = self.processors
        self.hold((), self.shutdown_timeout)
        shutdown_processors(processors, self.shutdown_timeout)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000.0
        ok = True
        for processor in self.processors:
            remaining = int(max(0.0, deadline - time.monotonic()) * 1000)
            ok = bool(processor.force_flush(remaining)) and ok
        return ok


def _attach(provider: TracerProvider) -> LLMOtelSpanProcessor:
    held = _attached.get(provider)
    if held is None:
        held = _attached[provider] = LLMOtelSpanProcessor()
        provider.add_span_processor(held)
    return held


def _otlp_processor(settings: Settings) -> SpanProcessor:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return BoundedBatchSpanProcessor(GrpcExporter(endpoint=settings.otlp_endpoint))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return BoundedBatchSpanProcessor(HttpExporter(endpoint=settings.otlp_endpoint))


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
        self.warned_arguments = False
        #: The live view's registry (fed by the calls themselves, not a span processor); None when off.
        self.live: Any = None
        #: The SDK MeterProvider the OpenTelemetry metrics go to (None: off), and whether llm-otel made it.
        self.meter_provider: Any = None
        self.owns_meter_provider = False

    @property
    def prometheus_port(self) -> int | None:
        """The port of the ``/metrics`` endpoint this process serves; None when there is none (turned off,
        or the port was taken)."""
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

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop sending spans to llm-otel's processors and shut them down within ``timeout`` seconds
        (default: the ``shutdown_timeout`` setting, 3 s): queued cost records go to the spool first, then
        OTLP and the cost API get what remains. Stops the endpoint. Patched clients stay patched
        (``uninstrument()`` restores them)."""
        global _active
        with self._lock:
            if self._shut:
                return
            self._shut = True
        if _active is self.telemetry:
            _active = None
        budget = self.settings.shutdown_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        held = _attached.get(self.tracer_provider)
        if held is not None:
            held.release(self.processors)
        shutdown_processors(self.processors, budget)  # the metrics fold drains into both sinks here
        if self.meter_provider is not None and self.owns_meter_provider:
            try:
                remaining = max(0.0, deadline - time.monotonic())
                self.meter_provider.shutdown(timeout_millis=remaining * 1000.0)
            except Exception:
                logger.exception("llm-otel: shutting the MeterProvider down failed")
        if self.live is not None:
            try:
                self.live.shutdown()
            except Exception:
                logger.exception("llm-otel: stopping the live view failed")
        if self.metrics_server is not None:
            try:
                self.metrics_server.stop_within(max(0.0, deadline - time.monotonic()))
            except Exception:
                logger.exception("llm-otel: stopping the metrics endpoint failed")


def _otel_metrics(settings: Settings, given: Any, metrics_processor: Any) -> tuple[Any, bool] | None:
    """Feed the OpenTelemetry Metrics API from the metrics fold when there is an SDK MeterProvider;
    (provider, created by llm-otel) or None."""
    from .exporters.otel_metrics import meter_provider_for, recorder_for

    found = meter_provider_for(settings, given)
    if found is None:
        return None
    recorder = recorder_for(
        found[0], latest_semconv=metrics_processor.latest_semconv, label_tags=metrics_processor.label_tags
    )
    metrics_processor.attach(recorder)
    return found


def _metrics_server(settings: Settings, wrap_app: Any = None) -> Any:
    """The /metrics endpoint (``wrap_app``: the live view routed in front of it), or None if the port is
    taken."""
    from .exporters.prometheus.server import PortInUseError, start_metrics_server

    try:
        return start_metrics_server(settings.prometheus_host, settings.prometheus_port, wrap_app=wrap_app)
    except PortInUseError as exc:
        source = settings.sources.get("prometheus_port", "default")
        logger.warning(
            "llm-otel: no /metrics endpoint: port %d on %s is taken (prometheus_port, from %s). The "
            "application runs on; its metrics are still recorded. To serve them: another port "
            "(prometheus_port= or OTEL_EXPORTER_PROMETHEUS_PORT), prometheus_port=0 and "
            "llm_otel.exporters.prometheus.make_wsgi_app() mounted in your own web server, or, for several "
            "processes of one application, multiprocess mode (PROMETHEUS_MULTIPROC_DIR, one endpoint for "
            "all). %s",
            settings.prometheus_port,
            settings.prometheus_host,
            source,
            exc.__cause__ or exc,
        )
        return None


def build(
    settings: Settings, tracer_provider: Any, meter_provider: Any = None, start_instrumentors: bool = True
) -> Instrumentation:
    """Everything ``instrument()`` starts; ``start_instrumentors=False`` when the auto-instrumentation
    loader starts them (``zero_code.py``)."""
    prices = PriceTable.load(settings.prices, model_aliases=settings.model_aliases)
    provider, owns = _provider(settings, tracer_provider)
    processors: list[SpanProcessor] = []
    metrics_server = None
    live = None
    meters: tuple[Any, bool] | None = None
    try:
        if settings.otlp_endpoint and (owns or not settings.otlp_from_env):
            processors.append(_otlp_processor(settings))

        from .exporters.prometheus import PrometheusMetricsProcessor

        metrics_processor = PrometheusMetricsProcessor(
            label_tags=settings.label_tags,
            max_models=settings.max_model_labels,
            latest_semconv=settings.latest_semconv,
        )
        processors.append(metrics_processor)
        meters = _otel_metrics(settings, meter_provider, metrics_processor)
        if settings.live:
            from .live import start_live, wrap_for

            live = start_live(settings.live_token)
        if settings.prometheus_port:
            wrap = wrap_for(settings.prometheus_host, live) if live is not None else None
            metrics_server = _metrics_server(settings, wrap)

        if settings.cost_api_url:
            from .exporters.cost import build_cost_processor

            processors.append(
                build_cost_processor(
                    settings.cost_api_url,
                    settings.cost_api_key,
                    organization_id=settings.organization_id,
                    # None = the default location: an unusable one falls back to a temporary spool
                    spool_path=settings.spool_path if "spool_path" in settings.sources else None,
                    shutdown_timeout=settings.shutdown_timeout,
                )
            )
    except Exception:
        shutdown_processors(processors, 0.0)
        if meters is not None and meters[1]:
            meters[0].shutdown()
        if live is not None:
            live.shutdown()
        if metrics_server is not None:
            metrics_server.stop()
        raise
    _attach(provider).hold(processors, settings.shutdown_timeout)

    global _active
    telemetry = build_telemetry(settings, provider, prices)
    telemetry.live = live
    instrumentors = _start_instrumentors(settings, provider, telemetry) if start_instrumentors else []
    handle = Instrumentation(settings, provider, owns, telemetry, processors, metrics_server, instrumentors)
    handle.live = live
    if meters is not None:
        handle.meter_provider, handle.owns_meter_provider = meters
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
