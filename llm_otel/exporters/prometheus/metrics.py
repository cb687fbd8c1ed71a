"""The metric families llm-otel exposes to Prometheus: names, label sets, buckets.

Names follow the GenAI conventions converted the way ``opentelemetry-exporter-prometheus`` does (dots to
underscores, unit ``s`` to ``_seconds``, ``{token}`` dropped, counters get ``_total``), so dashboards built
for the official instrumentations work unchanged. Two name sets exist: the one the official Python GenAI
instrumentations emit today (default) and the newest conventions (``OTEL_SEMCONV_STABILITY_OPT_IN`` contains
``gen_ai_latest_experimental``). llm-otel's own ``llm_otel_*`` families are the same in both.

Families are created once per (registry, name): building a second processor with the same label sets
reuses them (counts keep accumulating across repeated ``instrument()`` calls); a processor with a
different label set for a name (another ``label_tags``) replaces the family in that registry.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from ...errors import ConfigError

DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

#: Operations that the newest conventions measure as ``gen_ai.client.inference.*``.
INFERENCE_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})

# Label names (GenAI attribute keys with dots as underscores).
L_OPERATION: Final = "gen_ai_operation_name"
L_PROVIDER: Final = "gen_ai_provider_name"
L_REQUEST_MODEL: Final = "gen_ai_request_model"
L_RESPONSE_MODEL: Final = "gen_ai_response_model"
L_ERROR_TYPE: Final = "error_type"
L_TOKEN_TYPE: Final = "gen_ai_token_type"
L_MODALITY: Final = "gen_ai_token_modality"
SEMCONV_LABELS: Final = (L_OPERATION, L_PROVIDER, L_REQUEST_MODEL, L_RESPONSE_MODEL)
#: llm-otel's own label names; allow-listed tag labels must not collide with them.
OWN_LABELS: Final = frozenset({"provider", "model", "service", "operation", "status", "type"})


_M = TypeVar("_M", bound=MetricWrapperBase)
_lock = threading.Lock()
_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, tuple[Any, MetricWrapperBase]]] = (
    weakref.WeakKeyDictionary()
)


def family(
    registry: CollectorRegistry, cls: type[_M], name: str, doc: str, labels: Sequence[str], **kw: Any
) -> _M:
    """Get or create the family ``name`` in ``registry`` (see the module docstring for reuse rules)."""
    spec = (cls, tuple(labels), tuple(sorted(kw.items())))
    with _lock:
        owned = _families.setdefault(registry, {})
        previous = owned.get(name)
        if previous is not None:
            if previous[0] == spec:
                return previous[1]  # type: ignore[return-value]
            registry.unregister(previous[1])
            del owned[name]
        try:
            metric = cls(name, doc, labels, registry=registry, **kw)
        except ValueError as exc:  # a collector we did not create already uses the name
            raise ConfigError("registry", name, f"cannot register the metric: {exc}") from exc
        owned[name] = (spec, metric)
        return metric


class OwnMetrics:
    """llm-otel's ``llm_otel_*`` families; ``tag_labels`` are the allow-listed attribution tags."""

    def __init__(self, registry: CollectorRegistry, tag_labels: Sequence[str]) -> None:
        tags = tuple(tag_labels)
        self.active = family(
            registry, Gauge, "llm_otel_active_requests",
            "LLM calls in flight (span started, not yet ended).",
            ("provider", "operation"), multiprocess_mode="livesum",
        )  # fmt: skip
        self.cost = family(
            registry, Counter, "llm_otel_cost_usd",
            "Cost of LLM calls in US dollars (priced and local calls).",
            ("provider", "model", "service", *tags),
        )  # fmt: skip
        self.tokens = family(
            registry, Counter, "llm_otel_tokens",
            "Tokens used by LLM calls; type is input, output, cache_read, cache_write or reasoning "
            "(cache_* are part of input, reasoning is part of output).",
            ("provider", "model", "type"),
        )  # fmt: skip
        self.requests = family(
            registry, Counter, "llm_otel_requests", "LLM calls by outcome (status ok or error).",
            ("provider", "model", "operation", "status", *tags),
        )  # fmt: skip
        self.unpriced = family(
            registry, Counter, "llm_otel_unpriced_requests",
            "LLM calls whose model has no known price (their cost is missing from llm_otel_cost_usd_total).",
            ("provider", "model"),
        )  # fmt: skip
        self.dropped = family(
            registry, Counter, "llm_otel_metrics_dropped_spans",
            "Finished calls left out of the metrics because the folding queue was full.", (),
        )  # fmt: skip


class LegacyMetrics:
    """The names the official Python GenAI instrumentations emit today."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = family(
            registry, Histogram, "gen_ai_client_operation_duration_seconds", "GenAI operation duration.",
            (*SEMCONV_LABELS, L_ERROR_TYPE), buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.token_usage = family(
            registry, Histogram, "gen_ai_client_token_usage", "Number of input and output tokens used.",
            (*SEMCONV_LABELS, L_TOKEN_TYPE), buckets=TOKEN_BUCKETS,
        )  # fmt: skip
        self.ttfc = family(
            registry, Histogram, "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from the request to the first chunk of a streamed response.",
            SEMCONV_LABELS, buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.tpoc = family(
            registry, Histogram, "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time between the chunks of a streamed response after the first (one value per call).",
            SEMCONV_LABELS, buckets=DURATION_BUCKETS,
        )  # fmt: skip


class LatestMetrics:
    """The newest GenAI conventions (``gen_ai.client.inference.*``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = family(
            registry, Histogram, "gen_ai_client_inference_duration_seconds", "GenAI inference duration.",
            (*SEMCONV_LABELS, L_ERROR_TYPE), buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.other_duration = family(
            registry, Histogram, "gen_ai_client_operation_duration_seconds",
            "Duration of GenAI client operations other than inference (e.g. embeddings).",
            (*SEMCONV_LABELS, L_ERROR_TYPE), buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.ttfc = family(
            registry, Histogram, "gen_ai_client_inference_time_to_first_chunk_seconds",
            "Time from the request to the first chunk of a streamed response.",
            SEMCONV_LABELS, buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.tpoc = family(
            registry, Histogram, "gen_ai_client_inference_time_per_output_chunk_seconds",
            "Mean time between the chunks of a streamed response after the first (one value per call).",
            SEMCONV_LABELS, buckets=DURATION_BUCKETS,
        )  # fmt: skip
        usage_labels = (*SEMCONV_LABELS, L_MODALITY)
        self.usage_input = family(
            registry, Counter, "gen_ai_client_inference_usage_input_tokens",
            "Input tokens (including cached).", usage_labels,
        )  # fmt: skip
        self.usage_output = family(
            registry, Counter, "gen_ai_client_inference_usage_output_tokens",
            "Output tokens (including reasoning).", usage_labels,
        )  # fmt: skip
        self.usage_cache_read = family(
            registry, Counter, "gen_ai_client_inference_usage_cache_read_input_tokens",
            "Input tokens read from the provider's cache.", usage_labels,
        )  # fmt: skip
        self.usage_cache_write = family(
            registry, Counter, "gen_ai_client_inference_usage_cache_write_input_tokens",
            "Input tokens written to the provider's cache.", usage_labels,
        )  # fmt: skip
        self.usage_reasoning = family(
            registry, Counter, "gen_ai_client_inference_usage_reasoning_output_tokens",
            "Output tokens spent on reasoning.", usage_labels,
        )  # fmt: skip
        op_labels = (*SEMCONV_LABELS, L_ERROR_TYPE)
        self.op_input = family(
            registry, Histogram, "gen_ai_client_inference_operation_input_tokens",
            "Input tokens per inference operation.", op_labels, buckets=TOKEN_BUCKETS,
        )  # fmt: skip
        self.op_output = family(
            registry, Histogram, "gen_ai_client_inference_operation_output_tokens",
            "Output tokens per inference operation.", op_labels, buckets=TOKEN_BUCKETS,
        )  # fmt: skip
