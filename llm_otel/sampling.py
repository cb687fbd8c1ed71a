"""Sampling that never loses money.

llm-otel's own tracer gets its sampler wrapped: when the configured sampler would DROP a GenAI span, the
span is still RECORD_ONLY. It is not exported over OTLP (BatchSpanProcessor skips unsampled spans), but
the metrics and cost processors see it, so 1 % trace sampling still counts and bills 100 % of calls.

Only our tracer's sampler is wrapped (``Tracer.sampler`` of the SDK tracer we obtain); the application's
other tracers, and its TracerProvider, keep their sampler untouched. This is the one place that relies on
the SDK's ``Tracer.sampler`` attribute; it is checked with ``isinstance`` and skipped if absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes


class RecordDroppedGenAISpans(Sampler):
    """Delegate to ``base``; turn its DROP into RECORD_ONLY."""

    def __init__(self, base: Sampler) -> None:
        self.base = base

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        result = self.base.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP:
            # A DROP result carries no attributes (the SDK starts the span with the sampler's attributes):
            # keep the span's own, or metrics and cost records would not know the operation or model.
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordDroppedGenAISpans({self.base.get_description()})"


def record_dropped_spans(tracer: Any) -> None:
    """Wrap an SDK tracer's sampler in place (no-op for API/no-op tracers or when already wrapped)."""
    if isinstance(tracer, SdkTracer) and not isinstance(tracer.sampler, RecordDroppedGenAISpans):
        tracer.sampler = RecordDroppedGenAISpans(tracer.sampler)
