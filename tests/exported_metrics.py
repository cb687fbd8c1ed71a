"""The Prometheus series names llm-otel really exports, read from the real exporter, for tests of the
shipped dashboard, alert rules and stack.

:func:`feed` sends a representative set of GenAI spans (priced, streamed with a first chunk, cached and
reasoning tokens, embeddings, local, unpriced, failed, with an attribution tag) through a
:class:`PrometheusMetricsProcessor`; :func:`exported_names` reads back every sample name the registry then
holds, under the default metric names or the opt-in newest ones
(``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``), plus the process-wide families defined at
module level (the cost exporter's self-metrics, contained internal errors). No name here is written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

import llm_otel.exporters.cost.metrics as cost_metrics
from llm_otel import guard
from llm_otel import semconv as sc
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor

#: The attribution tag the fed spans carry and the processors turn into a label.
TAG = "tenant"
#: Metric and label names in PromQL / rule text (label names are not matched: they have no such prefix).
NAME = re.compile(r"\b((?:llm_otel|gen_ai_client)_[a-z_]+)\b")
#: Families every process serves besides the processor's: defined at module level in these modules.
PROCESS_METRICS: tuple[MetricWrapperBase, ...] = tuple(
    obj
    for module in (cost_metrics, guard)
    for obj in vars(module).values()
    if isinstance(obj, MetricWrapperBase)
)

_SPANS: tuple[tuple[dict[str, Any], dict[str, Any], bool], ...] = (
    # (attributes at start, attributes at end, failed)
    (
        {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "gpt-4o-mini"},
        {
            sc.RESPONSE_MODEL: "gpt-4o-mini",
            sc.USAGE_INPUT_TOKENS: 120,
            sc.USAGE_OUTPUT_TOKENS: 40,
            sc.USAGE_CACHE_READ_INPUT_TOKENS: 64,
            sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 8,
            sc.USAGE_REASONING_OUTPUT_TOKENS: 10,
            sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            sc.USAGE_COST: 0.0125,
            sc.PRICING_STATUS: sc.PRICING_PRICED,
        },
        False,
    ),
    (
        {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "gpt-4o-mini"},
        {sc.ERROR_TYPE: "openai.InternalServerError"},
        True,
    ),
    (
        {sc.OPERATION: "embeddings", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "text-embedding-3-small"},
        {
            sc.RESPONSE_MODEL: "text-embedding-3-small",
            sc.USAGE_INPUT_TOKENS: 30,
            sc.USAGE_COST: 0.0000006,
            sc.PRICING_STATUS: sc.PRICING_PRICED,
        },
        False,
    ),
    (
        {sc.OPERATION: "chat", sc.PROVIDER: "ollama", sc.REQUEST_MODEL: "llama3"},
        {
            sc.RESPONSE_MODEL: "llama3",
            sc.USAGE_INPUT_TOKENS: 12,
            sc.USAGE_OUTPUT_TOKENS: 30,
            sc.USAGE_COST: 0.0,
            sc.PRICING_STATUS: sc.PRICING_LOCAL,
        },
        False,
    ),
    (
        {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "mystery-model"},
        {
            sc.RESPONSE_MODEL: "mystery-model",
            sc.USAGE_INPUT_TOKENS: 5,
            sc.USAGE_OUTPUT_TOKENS: 5,
            sc.PRICING_STATUS: sc.PRICING_UNPRICED,
        },
        False,
    ),
)
#: Models the fed spans use (the answering model; the failed call asked for gpt-4o-mini).
MODELS = ("gpt-4o-mini", "text-embedding-3-small", "llama3", "mystery-model")


def feed(provider: TracerProvider, extra_models: Iterable[str] = ()) -> int:
    """End one span of each kind (plus a priced chat call per ``extra_models``); returns how many."""
    tracer = provider.get_tracer(sc.SCOPE_NAME)
    spans = list(_SPANS)
    for model in extra_models:
        start, end, _ = _SPANS[0]
        spans.append(({**start, sc.REQUEST_MODEL: model}, {**end, sc.RESPONSE_MODEL: model}, False))
    for start, end, failed in spans:
        span = tracer.start_span(
            f"{start[sc.OPERATION]} {start[sc.REQUEST_MODEL]}",
            attributes={**start, sc.TAG_PREFIX + TAG: "acme"},
            start_time=1_000_000_000,
        )
        span.set_attributes(end)
        if failed:
            span.set_status(StatusCode.ERROR)
        span.end(end_time=2_500_000_000)  # 1.5 s
    return len(spans)


def instrumented_provider(
    registry: CollectorRegistry, latest: bool, service: str = "svc"
) -> tuple[TracerProvider, PrometheusMetricsProcessor]:
    """A provider whose GenAI spans land in ``registry`` under one of the two metric-name sets."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    processor = PrometheusMetricsProcessor(registry=registry, label_tags=(TAG,), latest_semconv=latest)
    provider.add_span_processor(processor)
    return provider, processor


class WithProcessMetrics(Collector):
    """A registry's families plus the process-wide ones (which live in llm-otel's REGISTRY), as one
    process's /metrics serves them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        for family in PROCESS_METRICS:
            yield from family.collect()


def _sample_names(metric: Metric) -> set[str]:
    names = {s.name for s in metric.samples}
    if not names:  # a labelled family no call has touched yet (e.g. records dropped, by reason)
        suffix = {"counter": "_total", "histogram": "_bucket"}.get(metric.type, "")
        names = {metric.name + suffix}
    return names


@cache
def exported_names(latest: bool) -> frozenset[str]:
    """Every series name (``_total``, ``_bucket``, ... included) exported under one metric-name set."""
    registry = CollectorRegistry()
    provider, _ = instrumented_provider(registry, latest)
    feed(provider)
    provider.shutdown()
    names: set[str] = set()
    for metric in WithProcessMetrics(registry).collect():
        names |= _sample_names(metric)
    return frozenset(n for n in names if not n.endswith("_created"))


def referenced(text: str) -> set[str]:
    """Metric names a PromQL expression or rule file uses."""
    return set(NAME.findall(text))
