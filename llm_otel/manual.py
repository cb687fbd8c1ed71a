"""Manual tracking for LLM calls the instrumentors don't patch: ``track()`` and ``record_usage()``.

Another provider's SDK, plain HTTP to a gateway, usage read from a batch job's report: these go through the
same :class:`~llm_otel.instrumentors.call.GenAICall` as an instrumented call, so they get the same span,
cost, Prometheus metrics and cost record. Values the user passes are checked here; a wrong one is logged
once and left off the span. Nothing in this module raises into the user's block.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from . import guard, values
from . import semconv as sc
from .cost_contract import MAX_TEXT_CHARS
from .instrumentors.call import GenAICall, Outcome, Telemetry

F = TypeVar("F", bound=Callable[..., Any])


#: Request parameters accepted as keywords of ``track()``, and the convention attribute each becomes.
REQUEST_PARAMS: dict[str, tuple[str, type]] = {
    "temperature": (sc.REQUEST_TEMPERATURE, float),
    "top_p": (sc.REQUEST_TOP_P, float),
    "top_k": (sc.REQUEST_TOP_K, float),
    "max_tokens": (sc.REQUEST_MAX_TOKENS, int),
    "frequency_penalty": (sc.REQUEST_FREQUENCY_PENALTY, float),
    "presence_penalty": (sc.REQUEST_PRESENCE_PENALTY, float),
    "seed": (sc.REQUEST_SEED, int),
    "choice_count": (sc.REQUEST_CHOICE_COUNT, int),
    "stop_sequences": (sc.REQUEST_STOP_SEQUENCES, tuple),
    "stream": (sc.REQUEST_STREAM, bool),
}
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)

_current: contextvars.ContextVar[TrackedCall | None] = contextvars.ContextVar(
    "llm_otel_tracked", default=None
)
_fallback: Telemetry | None = None
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _reject(site: str, what: str, value: Any, why: str) -> None:
    """A wrong value from the user: left off, counted and logged once per site (``guard.reject``)."""
    guard.reject(site, f"{what}={values.clean_text(repr(value)[:80])} {why}")


def _telemetry() -> Telemetry:
    """The telemetry of ``instrument()``; without it, one built from the environment like a standalone
    instrumentor's (global tracer provider, bundled prices)."""
    global _fallback
    from .pipeline import active_telemetry

    active = active_telemetry()
    if active is not None:
        return active
    if _fallback is None:
        from .instrumentors.tracer import telemetry_from_kwargs

        _fallback = telemetry_from_kwargs({})
    return _fallback


def _text(site: str, what: str, value: Any) -> str | None:
    """A non-blank string, made encodable; anything else is rejected (None)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        _reject(site, what, value, "is not a non-empty string")
        return None
    return values.clean_text(value)


def _request_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in params.items():
        spec = REQUEST_PARAMS.get(key)
        if spec is None:
            _reject(
                "track.request", key, value, f"is not a known request parameter ({', '.join(REQUEST_PARAMS)})"
            )
            continue
        if value is None:
            continue
        name, kind = spec
        if kind is tuple:
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                _reject("track.request", key, value, "is not a list of strings")
                continue
            attrs[name] = tuple(value)
        elif kind is bool:
            if not isinstance(value, bool):
                _reject("track.request", key, value, "is not true or false")
                continue
            attrs[name] = value
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                _reject("track.request", key, value, "is not an integer")
                continue
            attrs[name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                _reject("track.request", key, value, "is not a finite number")
                continue
            attrs[name] = float(value)
    return attrs


class TrackedCall:
    """One LLM call the user reports by hand. Use it once, as ``with``/``async with``, or as a decorator
    (each decorated call gets its own span; ``llm_otel.current_call()`` returns it inside the function)."""

    def __init__(self, operation: str, provider: str, model: str | None, params: dict[str, Any]) -> None:
        self._operation = operation
        self._provider = provider
        self._model = model
        self._params = params
        self._call: GenAICall | None = None
        self._outcome = Outcome()
        self._extra: dict[str, Any] = {}
        self._tokens: list[Any] = []
        self.chunks = 0

    # -- what the user reports ---------------------------------------------------------------------------
    def set_response(
        self, *, model: str | None = None, id: str | None = None, finish_reasons: Sequence[str] | None = None
    ) -> None:
        """The model that answered, the response id and the finish reason of each choice."""
        try:
            out = self._outcome
            if model is not None:
                out.response_model = _text("track.response", "response model", model)
            if id is not None:
                out.response_id = _text("track.response", "response id", id)
            if finish_reasons is not None:
                if isinstance(finish_reasons, str):
                    finish_reasons = [finish_reasons]
                if all(isinstance(r, str) for r in finish_reasons):
                    out.finish_reasons = list(finish_reasons)
                else:
                    _reject("track.response", "finish_reasons", finish_reasons, "is not a list of strings")
        except Exception as exc:
            guard.report("track.set_response", exc)

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        audio_input_tokens: int | None = None,
        audio_output_tokens: int | None = None,
    ) -> None:
        """Token counts as the conventions define them: input includes cached and audio, output includes
        reasoning and audio. Audio counts are billed at the model's audio prices (unpriced without one)."""
        try:
            out = self._outcome
            for name, value in zip(
                TOKEN_FIELDS,
                (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens),
                strict=True,
            ):
                if value is not None:
                    setattr(out, name, values.count(value, "track.usage", name))
            for attr, name, value in (
                (sc.USAGE_AUDIO_INPUT_TOKENS, "audio_input_tokens", audio_input_tokens),
                (sc.USAGE_AUDIO_OUTPUT_TOKENS, "audio_output_tokens", audio_output_tokens),
            ):
                if value is not None:
                    count = values.count(value, "track.usage", name)
                    if count:
                        out.modality_tokens = {**(out.modality_tokens or {}), attr: count}
        except Exception as exc:
            guard.report("track.set_usage", exc)

    def chunk(self) -> None:
        """One streamed chunk arrived: the first sets the time to first chunk."""
        self.chunks += 1
        call = self._call
        if call is not None:
            call.mark_chunk()  # time to first chunk, chunk count and timing, the live view's count

    def set_attributes(self, attributes: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Further span attributes (primitive values or lists of them), set when the call ends."""
        try:
            for key, value in {**(attributes or {}), **more}.items():
                if isinstance(value, (str, bool, int, float)):
                    self._extra[str(key)] = value
                elif isinstance(value, (list, tuple)) and all(
                    isinstance(v, (str, bool, int, float)) for v in value
                ):
                    self._extra[str(key)] = tuple(value)
                else:
                    _reject("track.attributes", str(key), value, "is not a primitive value or a list of them")
        except Exception as exc:
            guard.report("track.set_attributes", exc)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _start(self, start_time_ns: int | None = None) -> None:
        if not is_instrumentation_enabled():
            # inside suppress_instrumentation(): no span, no metrics, no cost record; current_call() still
            # returns this object, whose setters then have nothing to report to
            self._tokens = [None, _current.set(self)]
            return
        try:
            attrs = _request_attributes(self._params)
            self._call = GenAICall(
                _telemetry(), self._operation, self._provider, self._model, attrs, start_time_ns=start_time_ns
            )
            self._tokens = [self._call.activate(), _current.set(self)]
        except Exception as exc:
            guard.report("track.start", exc)
            self._call = None

    def _finish(self, exc: BaseException | None, end_time_ns: int | None = None) -> None:
        call = self._call
        if call is None:
            if self._tokens:  # suppressed: only current_call() to restore
                _current.reset(self._tokens[1])
                self._tokens = []
            return
        try:
            if self._tokens:
                ctx_token, current_token = self._tokens
                self._tokens = []
                _current.reset(current_token)
                call.deactivate(ctx_token)
            outcome = self._outcome
            if self._extra:
                outcome.attributes = {**(outcome.attributes or {}), **self._extra}
            if exc is None:
                call.end_ok(outcome, end_time_ns=end_time_ns)
            else:
                call.end_error(exc, outcome)
        except Exception as inner:
            guard.report("track.end", inner)

    def __enter__(self) -> TrackedCall:
        self._start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    async def __aenter__(self) -> TrackedCall:
        self._start()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    def _fresh(self) -> TrackedCall:
        return TrackedCall(self._operation, self._provider, self._model, self._params)

    def __call__(self, fn: F) -> F:
        """Decorator: every call of ``fn`` (sync or async) is one tracked call."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]


def track(operation: str = "chat", *, provider: str, model: str | None = None, **params: Any) -> TrackedCall:
    """Track one LLM call made through a client llm-otel does not patch.

    ``operation``: ``chat``, ``text_completion``, ``embeddings``, ... ; ``provider``: the conventions'
    ``gen_ai.provider.name`` (``anthropic``, ``aws.bedrock``, ``gcp.gemini``, ``mistral_ai``, ...; any
    string is accepted); ``model``: the requested model; ``params``: request parameters (``temperature``,
    ``top_p``, ``top_k``, ``max_tokens``, ``frequency_penalty``, ``presence_penalty``, ``seed``,
    ``choice_count``, ``stop_sequences``, ``stream``).
    """
    try:
        op = _text("track.call", "operation", operation) or "chat"
        prov = _text("track.call", "provider", provider) or "unknown"
        return TrackedCall(op, prov, _text("track.call", "model", model), dict(params))
    except Exception as exc:  # pragma: no cover - defensive: the user's block must still run
        guard.report("track", exc)
        return TrackedCall("chat", "unknown", None, {})


def current_call() -> TrackedCall | None:
    """The innermost ``track()`` block or decorated call running in this context, if any."""
    return _current.get()


def _ns(value: Any, what: str) -> int | None:
    """A datetime (naive = UTC) or epoch seconds (int/float) -> epoch nanoseconds, exact for datetimes."""
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return (aware - _EPOCH) // timedelta(microseconds=1) * 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return int(value * 1_000_000_000) if isinstance(value, float) else value * 1_000_000_000
    _reject("track.call", what, value, "is not a datetime or epoch seconds")
    return None


def record_usage(
    *,
    provider: str,
    model: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    audio_input_tokens: int | None = None,
    audio_output_tokens: int | None = None,
    operation: str = "chat",
    start_time: Any = None,
    end_time: Any = None,
    tags: Mapping[str, str] | None = None,
    id: str | None = None,
    response_model: str | None = None,
    response_id: str | None = None,
    finish_reasons: Sequence[str] | None = None,
) -> None:
    """Report a call whose usage is known after the fact (batch jobs, logs, a gateway's report).

    One span with the given times (``datetime`` or epoch seconds; default now), priced, metered and
    forwarded to the cost API like every other call. ``id`` makes the cost record's id stable, so
    submitting the same usage twice is counted once by the cost API. ``tags`` are attribution tags, as
    with ``llm_otel.attributes()``. Inside ``suppress_instrumentation()`` nothing is recorded.
    """
    if not is_instrumentation_enabled():
        return
    try:
        end_ns = _ns(end_time, "end_time")
        start_ns = _ns(start_time, "start_time")
        if start_ns is None and end_ns is None:
            start_ns = end_ns = time.time_ns()
        elif start_ns is None:
            start_ns = end_ns
        elif end_ns is None or end_ns < start_ns:
            if end_ns is not None:
                _reject("track.call", "end_time", end_time, "is before start_time")
            end_ns = start_ns
        call = track(operation, provider=provider, model=_text("track.call", "model", model))
        call.set_usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            audio_input_tokens=audio_input_tokens,
            audio_output_tokens=audio_output_tokens,
        )
        call.set_response(model=response_model, id=response_id, finish_reasons=finish_reasons)
        if id is not None:
            record_id = _text("track.call", "id", id)
            if record_id and len(record_id) > MAX_TEXT_CHARS:
                _reject("track.call", "id", record_id, f"is longer than {MAX_TEXT_CHARS} characters")
            elif record_id:
                call.set_attributes({sc.RECORD_ID: record_id})
        if tags:
            good = {}
            for key, value in tags.items():
                if isinstance(key, str) and key.isidentifier():
                    good[sc.TAG_PREFIX + key] = str(value)
                else:
                    _reject("track.call", "tag", key, "is not an identifier")
            call.set_attributes(good)
        call._start(start_time_ns=start_ns)
        call._finish(None, end_time_ns=end_ns)
    except Exception as exc:
        guard.report("record_usage", exc)
