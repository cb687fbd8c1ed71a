"""Response side of an OpenAI call: an :class:`Outcome` from a response object or from stream chunks.

Everything is read with ``getattr`` so that a changed or partial client model still yields what is known.
Usage mapping (the same for Chat Completions, legacy Completions and the Responses API, whose fields are
named ``input_tokens``/``output_tokens``): input = prompt/input tokens (cached included), cache_read =
cached tokens, output = completion/output tokens (reasoning included), reasoning = reasoning tokens; the
price table relies on these inclusions. Stream usage is taken from the last chunk that carries it, never
summed (some compatible servers send cumulative usage).
"""

from __future__ import annotations

from typing import Any

from ... import guard
from ... import semconv as sc
from ...content import truncate
from .. import content_capture as cc
from ..call import Outcome
from . import unbilled

#: Highest number of choices taken from a stream (the API's own limit of ``n`` is 128): a chunk claiming
#: choice 1,000,000,000 must not make the span build a billion finish reasons.
MAX_CHOICES = 1024


_MISSING: Any = object()
_NO_FIELDS: dict[str, Any] = {}


def _usage_into(outcome: Outcome, usage: Any) -> None:
    """Token counts from a usage object. A client model's declared fields are read from its ``__dict__``
    (what ``getattr`` returns for them, without pydantic's attribute hook); anything else, e.g. a field
    only in pydantic's extras, with ``getattr``."""
    if usage is None:
        return
    own = getattr(usage, "__dict__", None) or _NO_FIELDS
    prompt = own.get("prompt_tokens", _MISSING)
    if prompt is _MISSING:
        prompt = getattr(usage, "prompt_tokens", None)
    if prompt is None:  # Responses API names
        prompt = getattr(usage, "input_tokens", None)
        completion = getattr(usage, "output_tokens", None)
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
    else:
        completion = own.get("completion_tokens", _MISSING)
        if completion is _MISSING:
            completion = getattr(usage, "completion_tokens", None)
        in_details = own.get("prompt_tokens_details", _MISSING)
        if in_details is _MISSING:
            in_details = getattr(usage, "prompt_tokens_details", None)
        out_details = own.get("completion_tokens_details", _MISSING)
        if out_details is _MISSING:
            out_details = getattr(usage, "completion_tokens_details", None)
    outcome.input_tokens = prompt
    outcome.output_tokens = completion
    if in_details is not None:
        _details_into(outcome, in_details, _INPUT_MODALITIES, "cached_tokens", "cache_write_tokens")
    if out_details is not None:
        _details_into(outcome, out_details, _OUTPUT_MODALITIES, "reasoning_tokens", None)


def _details_into(
    outcome: Outcome, details: Any, fields: tuple[tuple[str, str], ...], first: str, second: str | None
) -> None:
    """``*_tokens_details``: cache read and write (input) or reasoning (output) tokens, then the
    per-modality counts. A 0 modality count (OpenAI sends ``audio_tokens: 0`` on every text call) means
    the modality was not used and is left off, and nothing is derived (no text = total - audio).

    Read from the model's ``__dict__`` (and pydantic's extras), not with ``getattr``: a field the client's
    model does not declare makes pydantic's ``__getattr__`` raise, tens of thousands of instructions each.
    """
    own = getattr(details, "__dict__", None)
    if own is None:  # not a plain or pydantic object: ask it
        own = {name: getattr(details, name, None) for name in (first, second) if name}
        own.update((field, getattr(details, field, None)) for field, _ in fields)
    extra = getattr(details, "__pydantic_extra__", None)
    value = own.get(first, _MISSING)
    if value is _MISSING:
        value = getattr(details, first, None)
    if second is None:
        outcome.reasoning_tokens = value
    else:
        outcome.cache_read_tokens = value
        value = own.get(second, _MISSING)
        if value is _MISSING:
            value = getattr(details, second, None)
        outcome.cache_write_tokens = value
    for field, name in fields:
        value = own.get(field)
        if value is None and extra:
            value = extra.get(field)
        if value:
            counts = outcome.modality_tokens
            if counts is None:
                counts = outcome.modality_tokens = {}
            counts[name] = value


#: ``*_tokens_details`` field -> per-modality attribute. OpenAI's chat usage reports ``audio_tokens`` (and
#: in newer clients ``text_tokens``/``image_tokens``) in both details; the Responses API none so far (read
#: all the same: a server may send them, and the client keeps unknown fields).
_INPUT_MODALITIES = (
    ("text_tokens", sc.USAGE_TEXT_INPUT_TOKENS),
    ("image_tokens", sc.USAGE_IMAGE_INPUT_TOKENS),
    ("audio_tokens", sc.USAGE_AUDIO_INPUT_TOKENS),
)
_OUTPUT_MODALITIES = (
    ("text_tokens", sc.USAGE_TEXT_OUTPUT_TOKENS),
    ("image_tokens", sc.USAGE_IMAGE_OUTPUT_TOKENS),
    ("audio_tokens", sc.USAGE_AUDIO_OUTPUT_TOKENS),
)


def _openai_attrs(obj: Any) -> dict[str, Any] | None:
    attrs: dict[str, Any] = {}
    tier = getattr(obj, "service_tier", None)
    if tier:
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = str(tier)
    fingerprint = getattr(obj, "system_fingerprint", None)
    if fingerprint:
        attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = str(fingerprint)
    return attrs or None


def _message_parts(message: Any, limit: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = getattr(message, "content", None)
    if content:
        parts.append({"type": "text", "content": truncate(str(content), limit)})
    for call in getattr(message, "tool_calls", None) or ():
        fn = getattr(call, "function", None)
        parts.append(
            cc.tool_call_part(
                getattr(call, "id", None), getattr(fn, "name", None), getattr(fn, "arguments", None), limit
            )
        )
    legacy = getattr(message, "function_call", None)  # the deprecated ``functions`` API
    if legacy is not None:
        parts.append(
            cc.tool_call_part(None, getattr(legacy, "name", None), getattr(legacy, "arguments", None), limit)
        )
    return parts


def chat_outcome(response: Any, capture: bool = False, limit: int = 0) -> Outcome:
    outcome = Outcome()
    outcome.response_model = getattr(response, "model", None)
    outcome.response_id = getattr(response, "id", None)
    _usage_into(outcome, getattr(response, "usage", None))
    outcome.attributes = _openai_attrs(response)
    try:  # odd choices (not a list, odd items) lose the finish reasons and content, nothing else
        choices = getattr(response, "choices", None) or ()
        if choices:
            outcome.finish_reasons = [str(getattr(c, "finish_reason", None) or "error") for c in choices]
        if capture:
            outcome.output_messages = [
                {
                    "role": "assistant",
                    "parts": _message_parts(getattr(c, "message", None), limit),
                    "finish_reason": cc.finish_reason(getattr(c, "finish_reason", None)),
                }
                for c in choices
            ]
    except Exception as exc:
        guard.report("openai.choices", exc)
    return outcome


def completion_outcome(response: Any, capture: bool = False, limit: int = 0) -> Outcome:
    outcome = Outcome()
    outcome.response_model = getattr(response, "model", None)
    outcome.response_id = getattr(response, "id", None)
    _usage_into(outcome, getattr(response, "usage", None))
    outcome.attributes = _openai_attrs(response)
    try:  # odd choices lose the finish reasons and content, nothing else
        choices = getattr(response, "choices", None) or ()
        if choices:
            outcome.finish_reasons = [str(getattr(c, "finish_reason", None) or "error") for c in choices]
        if capture:
            outcome.output_messages = [
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "text", "content": truncate(str(getattr(c, "text", "") or ""), limit)}
                    ],
                    "finish_reason": cc.finish_reason(getattr(c, "finish_reason", None)),
                }
                for c in choices
            ]
    except Exception as exc:
        guard.report("openai.choices", exc)
    return outcome


_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


#: Statuses of a Responses API response still being generated (background mode): no usage yet.
_UNFINISHED = frozenset({"queued", "in_progress"})


def responses_outcome(response: Any, capture: bool = False, limit: int = 0) -> Outcome:
    """A created response; one still being generated (background) is remembered for its first fetch."""
    outcome = _responses_outcome(response, capture, limit)
    if outcome.input_tokens is None and getattr(response, "status", None) in _UNFINISHED:
        unbilled.remember(outcome.response_id)
    return outcome


def fetch_outcome(response: Any, capture: bool = False, limit: int = 0) -> Outcome:
    """A retrieved response (``fetch_response``): usage and cost only when no span has recorded them yet
    (``unbilled.py``); otherwise none, as the conventions ask, and no pricing attributes."""
    outcome = _responses_outcome(response, capture, limit)
    if not (outcome.input_tokens is not None and unbilled.settle(outcome.response_id)):
        _not_billed(outcome)
    return outcome


def _not_billed(outcome: Outcome) -> None:
    outcome.input_tokens = outcome.output_tokens = None
    outcome.cache_read_tokens = outcome.cache_write_tokens = outcome.reasoning_tokens = None
    outcome.modality_tokens = None
    outcome.billable = False


def _responses_outcome(response: Any, capture: bool, limit: int) -> Outcome:
    outcome = Outcome()
    outcome.response_model = getattr(response, "model", None)
    outcome.response_id = getattr(response, "id", None)
    _usage_into(outcome, getattr(response, "usage", None))
    tier = getattr(response, "service_tier", None)
    if tier:
        outcome.attributes = {sc.OPENAI_RESPONSE_SERVICE_TIER: str(tier)}
    try:  # odd output items lose the finish reasons and content, nothing else
        _responses_output(outcome, response, capture, limit)
    except Exception as exc:
        guard.report("openai.output", exc)
    return outcome


def _responses_output(outcome: Outcome, response: Any, capture: bool, limit: int) -> None:
    status = getattr(response, "status", None)
    reasons: list[str] = []
    parts: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            reason = "stop"
            if capture:
                for piece in getattr(item, "content", None) or ():
                    text = getattr(piece, "text", None)
                    if text:
                        parts.append({"type": "text", "content": truncate(str(text), limit)})
        elif kind == "function_call":
            reason = "tool_calls"
            if capture:
                parts.append(
                    cc.tool_call_part(
                        getattr(item, "call_id", None),
                        getattr(item, "name", None),
                        getattr(item, "arguments", None),
                        limit,
                    )
                )
        else:
            continue
        if reason not in reasons:
            reasons.append(reason)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        reasons = [_INCOMPLETE_REASONS.get(str(getattr(details, "reason", "")), "error")]
    elif status in ("failed", "cancelled"):
        reasons = ["error"]
    if reasons:
        outcome.finish_reasons = reasons
    if capture:
        outcome.output_messages = [
            {"role": "assistant", "parts": parts, "finish_reason": cc.finish_reason(_message_reason(reasons))}
        ]


def _message_reason(reasons: list[str]) -> str | None:
    """One reason for the single output message: a function call wins over the text beside it."""
    return "tool_calls" if "tool_calls" in reasons else (reasons[0] if reasons else None)


def embeddings_outcome(response: Any, capture: bool = False, limit: int = 0) -> Outcome:
    outcome = Outcome()
    outcome.response_model = getattr(response, "model", None)
    usage = getattr(response, "usage", None)
    if usage is not None:
        outcome.input_tokens = getattr(usage, "prompt_tokens", None)
    return outcome


#: Most tool calls kept per choice of a stream (a hostile index must not build millions of parts).
MAX_TOOL_CALLS = 128
#: Tool-call slot of a legacy ``function_call`` delta (it has no index of its own; sorts first).
_LEGACY_CALL = -1


class ChatChunks:
    """Chat Completions (and legacy Completions) stream: last chunk, last usage and finish reasons; text
    and tool calls only when capturing. Every chunk carries the response id and model, so the last one is
    enough.

    Tool calls arrive in pieces: the first delta of a call carries its ``index``, ``id`` and function
    name, later ones (same index) fragments of the arguments text. They are kept per choice and call index
    (``[id, name, fragments]``) and joined, then parsed, once at the end.
    """

    __slots__ = ("hide_usage", "limit", "last", "usage", "seen", "reasons", "texts", "text_attr", "tools")

    def __init__(self, hide_usage: bool, capture: bool, limit: int, text_attr: str = "delta") -> None:
        self.hide_usage = hide_usage
        self.limit = limit
        self.last: Any = None
        self.usage: Any = None
        self.seen = 0  # number of choices seen (highest index + 1)
        self.reasons: dict[int, str] = {}
        self.texts: dict[int, list[str]] | None = {} if capture else None
        self.text_attr = text_attr
        #: choice index -> call index -> [id, name, argument fragments]; filled only when capturing
        self.tools: dict[int, dict[int, list[Any]]] | None = {} if capture else None

    @property
    def common_chunk_inline(self) -> bool:
        """The stream proxy may test the common chunk itself (streams._chat_stream_chunks), as
        :meth:`add` does, and call :meth:`_add` for the others: true when content is not captured."""
        return self.texts is None

    def add(self, chunk: Any) -> bool:
        """Per chunk, the stream's hot path. The client's pydantic models keep their fields in
        ``__dict__`` (an attribute lookup on them costs several dict lookups): the common chunk (one
        choice, already seen, no finish reason, no usage, content capture off) returns after a few reads;
        everything else takes :meth:`_add`."""
        self.last = chunk
        try:
            fields = chunk.__dict__
            if fields["usage"] is None and self.texts is None:
                choices = fields["choices"]
                if len(choices) == 1:
                    choice = choices[0].__dict__
                    if choice["finish_reason"] is None and choice["index"] == 0 and self.seen:
                        return False
        except Exception:  # not a client model, or an odd one: the general path reads it
            pass
        return self._add(chunk)

    def _add(self, chunk: Any) -> bool:
        usage = getattr(chunk, "usage", None)
        if usage is not None:  # first: an odd ``choices`` (null, bad index) must not lose the usage
            self.usage = usage
        choices = getattr(chunk, "choices", None)
        if choices:
            for choice in choices:
                index: Any = getattr(choice, "index", None)
                try:
                    if index >= self.seen and not self._admit(index):
                        continue
                except TypeError:  # no usable index (null, a string): the choice cannot be placed
                    continue
                reason = getattr(choice, "finish_reason", None)
                if reason is not None:
                    self.reasons[index] = reason
                if self.texts is not None:  # content capture only
                    self._keep_text(index, choice)
        return usage is not None and self.hide_usage and not choices

    def _admit(self, index: Any) -> bool:
        """A new highest choice index: taken when it is a plausible one (the API allows n <= 128)."""
        if index.__class__ is int and index < MAX_CHOICES:
            self.seen = index + 1
            return True
        guard.reject("openai.stream_chunk", f"choice index {index!r:.40} is not one of 0..{MAX_CHOICES - 1}")
        return False

    def _keep_text(self, index: int, choice: Any) -> None:
        assert self.texts is not None
        if self.text_attr == "delta":
            delta = getattr(choice, "delta", None)
            piece = getattr(delta, "content", None)
            calls = getattr(delta, "tool_calls", None)
            if calls:
                self._keep_tool_calls(index, calls)
            legacy = getattr(delta, "function_call", None)
            if legacy is not None:
                self._keep_call(index, _LEGACY_CALL, None, legacy)
        else:
            piece = getattr(choice, "text", None)
        if piece:
            self.texts.setdefault(index, []).append(piece)

    def _keep_tool_calls(self, index: int, calls: Any) -> None:
        assert self.tools is not None
        for call in calls:
            slot = getattr(call, "index", None)
            call_id = getattr(call, "id", None)
            known = self.tools.get(index)
            if slot.__class__ is not int or not 0 <= slot < MAX_TOOL_CALLS:
                # no usable index (some compatible servers send none): a delta with an id opens a new call,
                # one without continues the last
                slot = (len(known) if call_id else max(known)) if known else 0
            elif known and call_id and slot in known and known[slot][0] not in (None, call_id):
                slot = max(known) + 1  # a server that numbers every call 0: a new id is a new call
            self._keep_call(index, slot, call_id, getattr(call, "function", None))

    def _keep_call(self, index: int, slot: int, call_id: Any, fn: Any) -> None:
        assert self.tools is not None
        calls = self.tools.setdefault(index, {})
        entry = calls.get(slot)
        if entry is None:
            if len(calls) >= MAX_TOOL_CALLS:
                return
            entry = calls[slot] = [None, None, []]
        if call_id:
            entry[0] = call_id
        name = getattr(fn, "name", None)
        if name:
            entry[1] = name
        fragment = getattr(fn, "arguments", None)
        if fragment:
            entry[2].append(fragment)

    def complete(self) -> bool:
        """Every choice got its finish reason (a stream cut off early has none, or no chunk at all)."""
        return self.seen > 0 and len(self.reasons) == self.seen

    def outcome(self) -> Outcome:
        outcome = Outcome()
        last = self.last
        if last is not None:
            outcome.response_model = getattr(last, "model", None) or None
            outcome.response_id = getattr(last, "id", None) or None
            outcome.attributes = _openai_attrs(last)
        reasons = [str(self.reasons.get(i) or "error") for i in range(self.seen)]
        if reasons:
            outcome.finish_reasons = reasons
        _usage_into(outcome, self.usage)
        if self.texts is not None:
            outcome.output_messages = [
                {"role": "assistant", "parts": self._parts(i), "finish_reason": cc.finish_reason(reasons[i])}
                for i in range(self.seen)
            ]
        return outcome

    def _parts(self, index: int) -> list[dict[str, Any]]:
        """Choice ``index``'s text (even empty, unless the choice only called tools), then its tool calls."""
        assert self.texts is not None and self.tools is not None
        text = "".join(self.texts.get(index, ()))
        calls = self.tools.get(index)
        parts: list[dict[str, Any]] = []
        if text or not calls:
            parts.append({"type": "text", "content": truncate(text, self.limit)})
        if calls:
            for slot in sorted(calls):
                call_id, name, fragments = calls[slot]
                parts.append(cc.tool_call_part(call_id, name, "".join(fragments), self.limit))
        return parts


_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponseEvents:
    """Responses API stream: the terminal event carries the whole response, usage included."""

    __slots__ = ("capture", "limit", "started", "final")

    def __init__(self, capture: bool, limit: int) -> None:
        self.capture = capture
        self.limit = limit
        self.started: Any = None
        self.final: Any = None

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind in _TERMINAL_EVENTS:
            self.final = event.response
        elif kind == "response.created":
            self.started = event.response
        return False

    def complete(self) -> bool:
        """The terminal event came (completed, incomplete or failed: the response says which)."""
        return self.final is not None

    def outcome(self) -> Outcome:
        if self.final is not None:
            return responses_outcome(self.final, self.capture, self.limit)
        outcome = Outcome()
        if self.started is not None:
            outcome.response_model = getattr(self.started, "model", None)
            outcome.response_id = getattr(self.started, "id", None)
            unbilled.remember(outcome.response_id)  # a resumed stream may still see it complete
        outcome.finish_reasons = ["error"]
        return outcome


class FetchEvents(ResponseEvents):
    """A resumed Responses stream (``responses.retrieve(id, stream=True)``): a ``fetch_response``."""

    __slots__ = ()

    def outcome(self) -> Outcome:
        if self.final is not None:
            return fetch_outcome(self.final, self.capture, self.limit)
        outcome = Outcome()
        if self.started is not None:
            outcome.response_model = getattr(self.started, "model", None)
            outcome.response_id = getattr(self.started, "id", None)
        outcome.finish_reasons = ["error"]
        outcome.billable = False
        return outcome
