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
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import guard, values
from .. import semconv as sc
from ..attribution import current_tags
from ..content import CaptureMode, to_json_capped
from ..values import MAX_TOKENS, clean_text, encodable_attributes
from .content_events import ContentEvents
from .fast_attributes import set_attributes_fast, write_checked

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
    #: Cap of each captured content attribute (message JSON), in characters: trailing messages are dropped.
    max_total_chars: int = 131_072
    #: The live view's registry (llm_otel.live): told when a call starts and ends; None = off.
    live: Any = None
    #: Where content events go (a log record when there is a LoggerProvider, else a span event).
    events: ContentEvents = field(default_factory=ContentEvents)


class Outcome:
    """What a response told us. Unknown values stay None (never invented).

    Values are taken as the response gave them; ``GenAICall`` checks each one where the span's end
    attributes are built, so one odd field (a string token count, an integer model) is left off alone.
    """

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
        "billable",
        "modality_tokens",
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
        #: False for a call that is no new generation (a fetch of a response already recorded): the span
        #: then carries no pricing attributes at all, neither a cost nor "unpriced".
        self.billable = True
        #: Per-modality counts the response reported, attribute name -> count (``gen_ai.usage.audio.
        #: input_tokens`` ...); None when it reported none (the usual case).
        self.modality_tokens: dict[str, Any] | None = None


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
        "last_chunk_ns",
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
        self.last_chunk_ns = 0  # monotonic ns of the latest chunk (time per output chunk at the end)
        self.chunks = 0  # streamed chunks received so far (the stream proxies count; the live view reads)
        #: input content kept for the end-of-call event when content capture goes to events
        self.event_content: dict[str, Any] | None = None
        # What the conventions ask for at span start (samplers may read it) goes through the SDK's
        # checks; the request parameters and tags follow through the fast path.
        # Names and the span name must be encodable: one lone surrogate in a span name fails the whole
        # OTLP batch. One isascii() each in the usual case; anything else takes the slow path.
        try:
            plain = operation.isascii() and provider.isascii()
        except AttributeError:
            plain = False
        if not plain:
            operation, provider = clean_text(str(operation)), clean_text(str(provider))
            self.provider = provider
        start = {sc.OPERATION: operation, sc.PROVIDER: provider}
        if request_model:
            try:
                plain = request_model.isascii()
            except AttributeError:
                plain = False
            if not plain:
                self.request_model = request_model = clean_text(str(request_model))
            start[sc.REQUEST_MODEL] = request_model
        address = attributes.pop(sc.SERVER_ADDRESS, None)
        if address:
            if address.__class__ is not str or not address.isascii():
                address = clean_text(str(address))
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
        if attributes:  # a non-recording span takes them through its no-op set_attributes
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

    def mark_chunk(self) -> None:
        """One streamed chunk arrived (for callers outside the stream proxies, which inline this)."""
        now = time.monotonic_ns()
        if not self.first_chunk_ns:
            self.first_chunk_ns = now
        self.last_chunk_ns = now
        self.chunks += 1

    # -- opt-in content (message JSON built by content_capture.py) -------------------------------------
    def record_input(
        self,
        messages: list[dict[str, Any]] | None,
        system: list[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        """Input messages, system instructions and tool definitions: on the span now, and/or kept for the
        end-of-call event."""
        capture = self.telemetry.capture
        cap = self.telemetry.max_total_chars
        attrs: dict[str, Any] = {}
        cut = False
        if messages is not None:
            attrs[sc.INPUT_MESSAGES], cut = to_json_capped(messages, cap)
        if system:
            attrs[sc.SYSTEM_INSTRUCTIONS], cut_system = to_json_capped(system, cap)
            cut = cut or cut_system
        if tools:
            attrs[sc.TOOL_DEFINITIONS], cut_tools = to_json_capped(tools, cap)
            cut = cut or cut_tools
        if not attrs:
            return
        if cut:
            attrs[sc.CONTENT_TRUNCATED] = True
        if capture.on_span:
            self.span.set_attributes(attrs)
        if capture.on_event:
            self.event_content = attrs

    def record_output(self, messages: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
        """Output messages: into the end attributes, and/or one event carrying input and output together
        (a log record through the Logs API when the application has a LoggerProvider, see
        content_events.py)."""
        capture = self.telemetry.capture
        encoded, cut = to_json_capped(messages, self.telemetry.max_total_chars)
        if capture.on_span:
            attrs[sc.OUTPUT_MESSAGES] = encoded
            if cut:
                attrs[sc.CONTENT_TRUNCATED] = True
        if capture.on_event:
            event = dict(self.event_content or {})
            self.event_content = None  # sent: a later error path must not send it again
            event[sc.OUTPUT_MESSAGES] = encoded
            if cut:
                event[sc.CONTENT_TRUNCATED] = True
            self.telemetry.events.emit(self.span, event, attrs)

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
                attrs, checked = self._end_attrs(outcome, abandoned)
                if checked:
                    write_checked(span, attrs)
                else:
                    set_attributes_fast(span, attrs)
        except Exception as exc:
            guard.report("span.end_attributes", exc)
        self._end_span(end_time_ns)

    def end_incomplete(self, outcome: Outcome | None) -> None:
        """End a stream that stopped without its final chunk (a server that cut it off) as failed, though
        the client raised nothing: ``error.type`` says so, and the metrics count it as an error."""
        if self.ended:
            return
        self.ended = True
        try:
            span = self.span
            if span.is_recording():
                attrs = self._end_attributes(outcome, False)
                attrs[sc.ERROR_TYPE] = sc.ERROR_STREAM_INCOMPLETE
                set_attributes_fast(span, attrs)
                span.set_status(Status(_ERROR, "the stream ended without its final chunk"))
        except Exception as exc:
            guard.report("span.end_incomplete", exc)
        self._end_span()

    def end_error(self, exc: BaseException, outcome: Outcome | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            span = self.span
            if span.is_recording():
                attrs = self._end_attributes(outcome, False)
                attrs[sc.ERROR_TYPE] = error_type(exc)
                if self.event_content is not None:  # the input content's event, with the error
                    self.telemetry.events.emit(span, self.event_content, attrs)
                    self.event_content = None
                span.set_attributes(encodable_attributes(attrs))
                message = str(exc)
                if message.isascii():
                    span.record_exception(exc)
                else:  # the message may echo a value that cannot be encoded (a model name, say)
                    message = clean_text(message)
                    stacktrace = clean_text("".join(traceback.format_exception(exc)))
                    span.record_exception(
                        exc, {"exception.message": message, "exception.stacktrace": stacktrace}
                    )
                span.set_status(Status(_ERROR, message[:512] or type(exc).__name__))
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
        return self._end_attrs(outcome, abandoned)[0]

    def _end_attrs(self, outcome: Outcome | None, abandoned: bool) -> tuple[dict[str, Any], bool]:
        """The end attributes, and whether every value was checked here (plain and ASCII: the span can
        take them without another pass, see fast_attributes.write_checked)."""
        attrs: dict[str, Any] = {}
        first = self.first_chunk_ns
        if first:
            attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = (first - self.start_ns) / 1e9
            chunks = self.chunks
            attrs[sc.STREAM_CHUNKS] = chunks
            if chunks > 1:
                attrs[sc.STREAM_TIME_PER_OUTPUT_CHUNK] = (self.last_chunk_ns - first) / 1e9 / (chunks - 1)
        if abandoned:
            attrs[sc.STREAM_ABANDONED] = True
        if outcome is None:
            return attrs, True
        checked = True
        # Each value is checked on its own (cheap type tests first), so one odd field is left off alone.
        model = outcome.response_model
        if model:
            if model.__class__ is not str or not model.isascii():
                model = values.text(model, "span.response", "response model")
            if model:
                attrs[sc.RESPONSE_MODEL] = model
        response_id = outcome.response_id
        if response_id:
            if response_id.__class__ is not str or not response_id.isascii():
                response_id = values.text(response_id, "span.response", "response id")
            if response_id:
                attrs[sc.RESPONSE_ID] = response_id
        if outcome.finish_reasons:
            reasons: tuple[Any, ...] = tuple(outcome.finish_reasons)
            for reason in reasons:
                if reason.__class__ is not str:
                    reasons = _reasons(reasons)
                    checked = False
                    break
                if not reason.isascii():
                    checked = False
            if reasons:
                attrs[sc.RESPONSE_FINISH_REASONS] = reasons
        input_tokens = outcome.input_tokens
        if input_tokens is not None:
            if input_tokens.__class__ is not int or not 0 <= input_tokens <= MAX_TOKENS:
                input_tokens = values.count(input_tokens, "span.usage", "input tokens")
            if input_tokens is not None:
                attrs[sc.USAGE_INPUT_TOKENS] = input_tokens
        output_tokens = outcome.output_tokens
        if output_tokens is not None:
            if output_tokens.__class__ is not int or not 0 <= output_tokens <= MAX_TOKENS:
                output_tokens = values.count(output_tokens, "span.usage", "output tokens")
            if output_tokens is not None:
                attrs[sc.USAGE_OUTPUT_TOKENS] = output_tokens
        cache_read = outcome.cache_read_tokens
        if cache_read is not None:
            if cache_read.__class__ is not int or not 0 <= cache_read <= MAX_TOKENS:
                cache_read = values.count(cache_read, "span.usage", "cache read tokens")
            if cache_read is not None:
                attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = cache_read
        cache_write = outcome.cache_write_tokens
        if cache_write is not None:
            if cache_write.__class__ is not int or not 0 <= cache_write <= MAX_TOKENS:
                cache_write = values.count(cache_write, "span.usage", "cache write tokens")
            if cache_write is not None:
                attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write
        reasoning = outcome.reasoning_tokens
        if reasoning is not None:
            if reasoning.__class__ is not int or not 0 <= reasoning <= MAX_TOKENS:
                reasoning = values.count(reasoning, "span.usage", "reasoning tokens")
            if reasoning is not None:
                attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = reasoning
        audio_in = audio_out = None
        if outcome.modality_tokens:
            audio_in, audio_out = _modality_tokens(outcome.modality_tokens, attrs)
        extra = outcome.attributes
        if extra:
            attrs.update(extra)
            for value in extra.values():
                if value.__class__ is not str or not value.isascii():
                    checked = False
        prices = self.telemetry.prices
        if prices is not None and outcome.billable:
            status, source, total, cost_in, cost_out = prices.cost_floats(
                self.provider,
                model or self.request_model,
                input_tokens,
                output_tokens,
                cache_read,
                cache_write,
                reasoning,
                audio_in,
                audio_out,
            )
            attrs[sc.PRICING_STATUS] = status
            if source:
                attrs[sc.PRICING_SOURCE] = source
                if source.__class__ is not str or not source.isascii():
                    checked = False
            elif status == sc.PRICING_UNPRICED:
                attrs[sc.PRICING_REASON] = prices.unpriced_reason(self.provider, model or self.request_model)
            if total is not None:
                attrs[sc.USAGE_COST] = total
                if cost_in is not None:
                    attrs[sc.COST_INPUT] = cost_in
                if cost_out is not None:
                    attrs[sc.COST_OUTPUT] = cost_out
        if outcome.output_messages is not None and self.telemetry.capture.enabled:
            self.record_output(outcome.output_messages, attrs)
            checked = False
        return attrs, checked


def _modality_tokens(counts: dict[str, Any], attrs: dict[str, Any]) -> tuple[int | None, int | None]:
    """Per-modality counts onto the span (each checked on its own); the audio ones, for pricing."""
    for name, value in counts.items():
        if value.__class__ is not int or not 0 <= value <= MAX_TOKENS:
            value = values.count(value, "span.usage", name)
        if value is not None:
            attrs[name] = value
    return attrs.get(sc.USAGE_AUDIO_INPUT_TOKENS), attrs.get(sc.USAGE_AUDIO_OUTPUT_TOKENS)


def _reasons(reasons: tuple[Any, ...]) -> tuple[str, ...]:
    """Finish reasons that are not all strings: strings kept, ``None`` and odd values left off (counted)."""
    kept = []
    for reason in reasons:
        if isinstance(reason, str):
            kept.append(reason)
        else:
            guard.reject("span.response", f"finish reason {reason!r:.80} is not a string")
    return tuple(kept)
