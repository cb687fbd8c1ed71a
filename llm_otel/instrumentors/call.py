"""One LLM call = one span: where a GenAI span starts, and the single place where it ends.

The client wrappers (``openai/instrumentor.py``, ``ollama/instrumentor.py``) build the request attributes
and an :class:`Outcome` from the response; :class:`GenAICall` owns the span lifecycle: it starts the CLIENT
span, records opt-in message content, ends the span exactly once, and computes the cost there (pricing is
looked up once per call, from the same numbers that go on the span). Metrics and cost records are derived
from the finished span by span processors, never computed twice. :class:`Telemetry` is what every wrapper
shares (tracer, price table, content mode).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import guard
from .. import semconv as sc
from ..attribution import current_tags
from ..content import CaptureMode, to_json
from .fast_attributes import set_attributes_fast

if TYPE_CHECKING:
    from ..pricing import PriceTable

_CLIENT = SpanKind.CLIENT
_ERROR = StatusCode.ERROR


@dataclass
class Telemetry:
    """Everything a wrapper needs at call time, built once by ``instrument()`` or an instrumentor."""

    tracer: trace.Tracer
    prices: PriceTable | None
    capture: CaptureMode = CaptureMode.NO_CONTENT
    max_chars: int = 16_384
    inject_stream_usage: bool = True
    #: (host, port) or host -> provider name, for OpenAI-compatible servers (e.g. Ollama's /v1).
    provider_hosts: dict[Any, str] = field(default_factory=dict)
    #: The live view's registry (llm_otel.live): told when a call starts and ends; None = off.
    live: Any = None


class Outcome:
    """What a response told us. Unknown values stay None (never invented)."""

    __slots__ = (
        "response_model",
        "response_id",
        "finish_reasons",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "attributes",
        "output_messages",
    )

    def __init__(self) -> None:
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.attributes: dict[str, Any] | None = None
        self.output_messages: list[dict[str, Any]] | None = None


def error_type(exc: BaseException) -> str:
    """Fully-qualified class name, builtins unqualified (matches the exception event's type)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class GenAICall:
    """The span of one call. ``end_*`` methods are idempotent: the first one wins."""

    __slots__ = (
        "telemetry",
        "span",
        "provider",
        "request_model",
        "start_ns",
        "first_chunk_ns",
        "chunks",
        "ended",
        "event_content",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        provider: str,
        request_model: str | None,
        attributes: dict[str, Any],
        start_time_ns: int | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.provider = provider
        self.request_model = request_model
        self.ended = False
        self.first_chunk_ns = 0
        self.chunks = 0  # streamed chunks received so far (the stream proxies count; the live view reads)
        #: input content kept for the end-of-call event when content capture goes to events
        self.event_content: dict[str, Any] | None = None
        # What the conventions ask for at span start (samplers may read it) goes through the SDK's
        # checks; the request parameters and tags follow through the fast path.
        start = {sc.OPERATION: operation, sc.PROVIDER: provider}
        if request_model:
            start[sc.REQUEST_MODEL] = request_model
        address = attributes.pop(sc.SERVER_ADDRESS, None)
        if address:
            start[sc.SERVER_ADDRESS] = address
            port = attributes.pop(sc.SERVER_PORT, None)
            if port:
                start[sc.SERVER_PORT] = port
        name = f"{operation} {request_model}" if request_model else operation
        self.span = span = telemetry.tracer.start_span(
            name, kind=_CLIENT, attributes=start, start_time=start_time_ns
        )
        self.start_ns = time.monotonic_ns()
        tags = current_tags()
        if tags:
            attributes.update(tags)
        if attributes and span.is_recording():
            set_attributes_fast(span, attributes)
        if telemetry.live is not None:
            telemetry.live.started(self)

    # -- context: the span is current while the client's own code runs (HTTP child spans nest) --------
    def activate(self) -> object:
        return otel_context.attach(trace.set_span_in_context(self.span))

    @staticmethod
    def deactivate(token: object) -> None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:  # pragma: no cover - a foreign context mix-up must not reach the user
            guard.report("context.detach", exc)

    def mark_first_chunk(self) -> None:
        if not self.first_chunk_ns:
            self.first_chunk_ns = time.monotonic_ns()

    # -- opt-in content (message JSON built by content_capture.py) -------------------------------------
    def record_input(
        self, messages: list[dict[str, Any]] | None, system: list[dict[str, Any]] | None = None
    ) -> None:
        """Input messages and system instructions: on the span now, and/or kept for the end-of-call event."""
        capture = self.telemetry.capture
        attrs: dict[str, Any] = {}
        if messages is not None:
            attrs[sc.INPUT_MESSAGES] = to_json(messages)
        if system:
            attrs[sc.SYSTEM_INSTRUCTIONS] = to_json(system)
        if not attrs:
            return
        if capture.on_span:
            self.span.set_attributes(attrs)
        if capture.on_event:
            self.event_content = attrs

    def record_output(self, messages: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
        """Output messages: into the end attributes, and/or one event carrying input and output together."""
        capture = self.telemetry.capture
        encoded = to_json(messages)
        if capture.on_span:
            attrs[sc.OUTPUT_MESSAGES] = encoded
        if capture.on_event:
            event = dict(self.event_content or {})
            event[sc.OUTPUT_MESSAGES] = encoded
            self.span.add_event(sc.EVENT_INFERENCE_DETAILS, event)

    # -- ends -----------------------------------------------------------------------------------------
    def end_ok(
        self, outcome: Outcome | None, *, abandoned: bool = False, end_time_ns: int | None = None
    ) -> None:
        """End as a success. ``end_time_ns`` (epoch ns) is for calls reported after the fact."""
        if self.ended:
            return
        self.ended = True
        try:
            span = self.span
            if span.is_recording():
                set_attributes_fast(span, self._end_attributes(outcome, abandoned))
        except Exception as exc:
            guard.report("span.end_attributes", exc)
        self._end_span(end_time_ns)

    def end_error(self, exc: BaseException, outcome: Outcome | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            span = self.span
            if span.is_recording():
                attrs = self._end_attributes(outcome, False)
                attrs[sc.ERROR_TYPE] = error_type(exc)
                span.set_attributes(attrs)
                span.record_exception(exc)
                span.set_status(Status(_ERROR, str(exc)[:512] or type(exc).__name__))
        except Exception as inner:
            guard.report("span.end_error", inner)
        self._end_span()

    def _end_span(self, end_time_ns: int | None = None) -> None:
        try:
            self.span.end(end_time_ns)
        except Exception as exc:
            guard.report("span.end", exc)
        if self.telemetry.live is not None:
            self.telemetry.live.ended(self)

    def _end_attributes(self, outcome: Outcome | None, abandoned: bool) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.first_chunk_ns:
            attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_chunk_ns - self.start_ns) / 1e9
        if abandoned:
            attrs[sc.STREAM_ABANDONED] = True
        if outcome is None:
            return attrs
        if outcome.response_model:
            attrs[sc.RESPONSE_MODEL] = outcome.response_model
        if outcome.response_id:
            attrs[sc.RESPONSE_ID] = outcome.response_id
        if outcome.finish_reasons:
            attrs[sc.RESPONSE_FINISH_REASONS] = tuple(outcome.finish_reasons)
        input_tokens = outcome.input_tokens
        output_tokens = outcome.output_tokens
        if input_tokens is not None:
            attrs[sc.USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attrs[sc.USAGE_OUTPUT_TOKENS] = output_tokens
        if outcome.cache_read_tokens is not None:
            attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = outcome.cache_read_tokens
        if outcome.cache_write_tokens is not None:
            attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] = outcome.cache_write_tokens
        if outcome.reasoning_tokens is not None:
            attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = outcome.reasoning_tokens
        if outcome.attributes:
            attrs.update(outcome.attributes)
        prices = self.telemetry.prices
        if prices is not None:
            status, source, total, cost_in, cost_out = prices.cost_floats(
                self.provider,
                outcome.response_model or self.request_model,
                input_tokens,
                output_tokens,
                outcome.cache_read_tokens,
                outcome.cache_write_tokens,
                outcome.reasoning_tokens,
            )
            attrs[sc.PRICING_STATUS] = status
            if source:
                attrs[sc.PRICING_SOURCE] = source
            if total is not None:
                attrs[sc.USAGE_COST] = total
                if cost_in is not None:
                    attrs[sc.COST_INPUT] = cost_in
                if cost_out is not None:
                    attrs[sc.COST_OUTPUT] = cost_out
        if outcome.output_messages is not None and self.telemetry.capture.enabled:
            self.record_output(outcome.output_messages, attrs)
        return attrs
