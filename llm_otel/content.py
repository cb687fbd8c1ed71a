"""Opt-in capture of prompt and completion text (off by default).

The mode comes from ``instrument(capture_content=)`` or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT:
``NO_CONTENT`` (default), ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``, case-insensitive. ``true`` is
accepted as ``SPAN_ONLY`` because most existing docs use it; ``false`` means off; anything else is a
configuration error. Captured text is bounded: each text part is cut at ``content_max_chars`` characters
(``LLM_OTEL_CONTENT_MAX_CHARS``), and each content attribute (the JSON of the input messages, of the system
instructions, of the output messages) at ``content_max_total_chars`` (``LLM_OTEL_CONTENT_MAX_TOTAL_CHARS``,
default 131,072): trailing messages (then trailing parts of the last one kept) are dropped so the JSON
stays valid, and the span gets ``llm_otel.content.truncated=true``. All are read and validated in
``config.py``.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from .values import clean_text


class CaptureMode(enum.Enum):
    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        return self is not CaptureMode.NO_CONTENT


_ALIASES = {
    **dict.fromkeys(("true", "1", "yes", "on"), CaptureMode.SPAN_ONLY),
    **dict.fromkeys(("false", "0", "no", "off", ""), CaptureMode.NO_CONTENT),
}


def parse_mode(value: str | bool | CaptureMode | None) -> CaptureMode:
    """Map a setting to a mode; an unknown value raises ``ValueError`` (config.py turns it into a
    ``ConfigError`` naming the setting)."""
    if value is None:
        return CaptureMode.NO_CONTENT
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, bool):
        return CaptureMode.SPAN_ONLY if value else CaptureMode.NO_CONTENT
    if not isinstance(value, str):
        raise ValueError("expected a content capture mode")
    text = value.strip().lower()
    if text in _ALIASES:
        return _ALIASES[text]
    for mode in CaptureMode:
        if mode.value == text:
            return mode
    raise ValueError(
        "expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, or true/false (true = SPAN_ONLY)"
    )


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


def to_json(value: Any) -> str:
    """JSON as the GenAI conventions put structured content on spans (a string attribute); always
    encodable (a lone surrogate in the text becomes U+FFFD, which keeps the JSON valid)."""
    return clean_text(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")))


def to_json_capped(items: list[Any], limit: int) -> tuple[str, bool]:
    """``to_json(items)`` in at most ``limit`` characters, and whether anything was dropped.

    Keeps the longest prefix of ``items`` that fits; when the first item left out is a message whose
    ``parts`` could fit in part, that message is kept with its leading parts. Always a valid JSON list.
    """
    text = to_json(items)
    if len(text) <= limit:
        return text, False
    pieces: list[str] = []
    used = 2  # the brackets
    for item in items:
        piece = to_json(item)
        extra = len(piece) + (1 if pieces else 0)
        if used + extra <= limit:
            pieces.append(piece)
            used += extra
            continue
        partial = _leading_parts(item, limit - used - (1 if pieces else 0))
        if partial is not None:
            pieces.append(partial)
        break
    return "[" + ",".join(pieces) + "]", True


def _leading_parts(message: Any, room: int) -> str | None:
    """The JSON of ``message`` with as many of its leading ``parts`` as fit in ``room``; None if none fit."""
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(parts, list) or len(parts) < 2:
        return None
    used = len(to_json({**message, "parts": []}))
    count = 0
    for part in parts:
        used += len(to_json(part)) + (1 if count else 0)
        if used > room:
            break
        count += 1
    if not count:
        return None
    return to_json({**message, "parts": parts[:count]})
