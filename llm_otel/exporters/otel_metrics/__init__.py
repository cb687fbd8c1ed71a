"""llm-otel's metrics through the OpenTelemetry Metrics API (``recorder.py``), and which MeterProvider
they go to (:func:`meter_provider_for`).

On when the application has an SDK ``MeterProvider`` (set globally, or passed as ``meter_provider=``), or
when the standard ``OTEL_METRICS_EXPORTER`` asks for ``otlp`` / ``console`` and the application has none:
then llm-otel creates one (periodic reader, exporter per the standard OTLP settings), sets it globally and
shuts it down with the rest. The no-op / proxy provider of the API alone means "no metrics wanted".
"""

from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

from ...config import Settings
from ...errors import ConfigError
from ..span_fold import drain_all, dropped_all
from .recorder import OTelMetricsRecorder

__all__ = ["OTelMetricsRecorder", "meter_provider_for", "recorder_for"]

logger = logging.getLogger("llm_otel")
_recorders: weakref.WeakKeyDictionary[Any, dict[tuple[bool, tuple[str, ...]], OTelMetricsRecorder]] = (
    weakref.WeakKeyDictionary()
)


def meter_provider_for(settings: Settings, given: Any = None) -> tuple[Any, bool] | None:
    """(SDK MeterProvider, created by llm-otel) to record to, or None when OpenTelemetry metrics are off."""
    if not settings.otel_metrics:
        return None
    from opentelemetry import metrics

    if given is not None:
        from opentelemetry.sdk.metrics import MeterProvider

        if not isinstance(given, MeterProvider):
            raise ConfigError("meter_provider", given, "expected an opentelemetry.sdk.metrics.MeterProvider")
        return given, False
    # An SDK MeterProvider set by the application has imported its module already: without one, the SDK's
    # metrics package (a tenth of instrument()'s start-up) is not imported just to find out.
    sdk_metrics = sys.modules.get("opentelemetry.sdk.metrics")
    current = metrics.get_meter_provider()
    if sdk_metrics is not None and isinstance(current, sdk_metrics.MeterProvider):
        return current, False
    readers = _readers(settings)
    if not readers:
        return None
    from opentelemetry.sdk.metrics import MeterProvider

    provider = MeterProvider(metric_readers=readers, resource=_resource(settings))
    metrics.set_meter_provider(provider)
    if metrics.get_meter_provider() is not provider:  # the API allows setting it once per process
        provider.shutdown()
        logger.warning("llm-otel: OTEL_METRICS_EXPORTER is set but a global MeterProvider was already set")
        return None
    return provider, True


def _resource(settings: Settings) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": settings.service_name} if settings.service_name else {})


def _readers(settings: Settings) -> list[Any]:
    if not settings.metrics_exporter:
        return []
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    readers: list[Any] = []
    for name in settings.metrics_exporter:
        if name == "otlp":
            readers.append(PeriodicExportingMetricReader(_otlp_exporter(settings)))
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    return readers


def _otlp_exporter(settings: Settings) -> Any:
    endpoint = settings.otlp_metrics_endpoint
    if settings.otlp_metrics_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        return Grpc(endpoint=endpoint) if endpoint else Grpc()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(endpoint=endpoint) if endpoint else Http()


def recorder_for(provider: Any, *, latest_semconv: bool, label_tags: tuple[str, ...]) -> OTelMetricsRecorder:
    """One recorder per (provider, name set, tags): a repeated ``instrument()`` reuses its instruments."""
    per_provider = _recorders.setdefault(provider, {})
    key = (latest_semconv, label_tags)
    recorder = per_provider.get(key)
    if recorder is None:
        recorder = per_provider[key] = OTelMetricsRecorder(
            provider,
            latest_semconv=latest_semconv,
            label_tags=label_tags,
            drain=drain_all,
            dropped=dropped_all,
        )
    return recorder
