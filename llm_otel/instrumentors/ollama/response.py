"""Response side of an Ollama call: an :class:`Outcome` from the response model or from stream chunks.

Reads the response model, or a stream's final ``done`` chunk: tokens are ``prompt_eval_count`` /
``eval_count`` (absent stays unset, never 0), the finish reason is ``done_reason``, and the server's
nanosecond timings become seconds (with output tokens per second when both are known). Message text,
thinking and tool calls are kept only when content capture is on.
"""

from __future__ import annotations

from typing import Any

from ... import guard
from ... import semconv as sc
from ...content import truncate
from ...values import MAX_TOKENS
from .. import content_capture as cc
from ..call import Outcome

#: response field (nanoseconds) -> attribute (seconds)
_TIMINGS: tuple[tuple[str, str], ...] = (
    ("total_duration", sc.OLLAMA_TOTAL_DURATION),
    ("load_duration", sc.OLLAMA_LOAD_DURATION),
    ("prompt_eval_duration", sc.OLLAMA_PROMPT_EVAL_DURATION),
    ("eval_duration", sc.OLLAMA_EVAL_DURATION),
)


#: Largest duration taken as real, in nanoseconds (Go's time.Duration is an int64: 292 years).
_MAX_NS = 2**63


def _timings(response: Any, output_tokens: Any) -> dict[str, Any] | None:
    attrs: dict[str, Any] = {}
    for field, name in _TIMINGS:
        value = getattr(response, field, None)
        if value is not None:
            cls = value.__class__
            if (cls is int or cls is float) and 0 <= value < _MAX_NS:  # NaN fails the comparison
                attrs[name] = value / 1e9
            else:
                guard.reject("ollama.response", f"{field} {value!r:.40} is not a duration in nanoseconds")
    eval_seconds = attrs.get(sc.OLLAMA_EVAL_DURATION)
    if eval_seconds and output_tokens.__class__ is int and 0 <= output_tokens <= MAX_TOKENS:
        attrs[sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND] = output_tokens / eval_seconds
    return attrs or None


def outcome(response: Any, operation: str, capture: bool = False, limit: int = 0) -> Outcome:
    """Outcome of a non-stream response, or of a stream's final ``done`` chunk."""
    out = Outcome()
    out.response_model = getattr(response, "model", None)
    reason = getattr(response, "done_reason", None)
    if reason:
        out.finish_reasons = [reason]
    out.input_tokens = getattr(response, "prompt_eval_count", None)
    out.output_tokens = getattr(response, "eval_count", None)
    out.attributes = _timings(response, out.output_tokens)
    if capture and operation != sc.OP_EMBEDDINGS:
        try:  # odd content loses the captured output, nothing else
            out.output_messages = _output(response, operation, reason, limit)
        except Exception as exc:
            guard.report("ollama.output", exc)
    return out


def _output(response: Any, operation: str, reason: Any, limit: int) -> list[dict[str, Any]]:
    """The captured output message of a chat or generate response."""
    if operation == sc.OP_CHAT:
        message = getattr(response, "message", None)
        parts = _parts(
            getattr(message, "thinking", None),
            getattr(message, "content", None),
            getattr(message, "tool_calls", None),
            limit,
        )
    else:
        parts = _parts(getattr(response, "thinking", None), getattr(response, "response", None), None, limit)
    return [{"role": "assistant", "parts": parts, "finish_reason": _message_reason(reason, parts)}]


def _message_reason(reason: Any, parts: list[dict[str, Any]]) -> str:
    """The conventions' finish reason: Ollama says ``stop`` also when the model called tools."""
    if reason == "stop" and any(p["type"] == "tool_call" for p in parts):
        return "tool_call"
    return cc.finish_reason(reason)


def _parts(thinking: str | None, text: str | None, tool_calls: Any, limit: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if thinking:
        parts.append({"type": "reasoning", "content": truncate(thinking, limit)})
    if text:
        parts.append({"type": "text", "content": truncate(text, limit)})
    for call in tool_calls or ():
        fn = getattr(call, "function", None)
        args = getattr(fn, "arguments", None)
        if args is not None and not isinstance(args, (dict, str)):
            args = dict(args)  # a Mapping model
        parts.append(cc.tool_call_part(getattr(call, "id", None), getattr(fn, "name", None), args, limit))
    return parts


class OllamaChunks:
    """Stream accumulator: keeps the last chunk (the final one carries counts and timings); text only
    when content capture is on. Ollama never hides a chunk."""

    __slots__ = ("operation", "limit", "last", "texts", "thinking", "tool_calls")

    def __init__(self, operation: str, capture: bool, limit: int) -> None:
        self.operation = operation
        self.limit = limit
        self.last: Any = None
        self.texts: list[str] | None = [] if capture else None
        self.thinking: list[str] = []
        self.tool_calls: list[Any] = []

    def add(self, item: Any) -> bool:
        self.last = item
        if self.texts is not None:
            self._keep(item)
        return False

    def _keep(self, item: Any) -> None:
        assert self.texts is not None
        source = getattr(item, "message", None) if self.operation == sc.OP_CHAT else item
        if source is None:
            return
        text = getattr(source, "content" if self.operation == sc.OP_CHAT else "response", None)
        if text:
            self.texts.append(text)
        thinking = getattr(source, "thinking", None)
        if thinking:
            self.thinking.append(thinking)
        calls = getattr(source, "tool_calls", None)
        if calls:
            self.tool_calls.extend(calls)

    def complete(self) -> bool:
        """The final ``done: true`` chunk came."""
        last = self.last
        return last is not None and bool(getattr(last, "done", False))

    def outcome(self) -> Outcome:
        last = self.last
        if last is not None and getattr(last, "done", False):
            out = outcome(last, self.operation)
        else:  # unfinished stream: the model is known, counts are not
            out = Outcome()
            out.response_model = getattr(last, "model", None)
        if self.texts is not None:
            reason = out.finish_reasons[0] if out.finish_reasons else None
            parts = _parts("".join(self.thinking), "".join(self.texts), self.tool_calls, self.limit)
            out.output_messages = [
                {"role": "assistant", "parts": parts, "finish_reason": _message_reason(reason, parts)}
            ]
        return out
