"""Opt-in capture of prompt and completion text (off by default).

The mode comes from ``instrument(capture_content=)`` or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT:
``NO_CONTENT`` (default), ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``, case-insensitive. ``true`` is
accepted as ``SPAN_ONLY`` because most existing docs use it; ``false`` means off; anything else is a
configuration error. Captured text is bounded: each text part is cut at ``content_max_chars`` characters
(``LLM_OTEL_CONTENT_MAX_CHARS``). Both are read and validated in ``config.py``.
"""

from __future__ import annotations

import enum
import json
from typing import Any


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
    """JSON as the GenAI conventions put structured content on spans (a string attribute)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
