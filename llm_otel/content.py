"""Opt-in capture of prompt and completion text (off by default).

The mode comes from ``instrument(capture_content=)`` or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT:
``NO_CONTENT`` (default), ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``, case-insensitive. ``true`` is
accepted as ``SPAN_ONLY`` because most existing docs use it; ``false`` means off; anything else means off
with one warning. Captured text is bounded: each text part is cut at ``content_max_chars`` characters
(``LLM_OTEL_CONTENT_MAX_CHARS``). Both are read and validated in ``config.py``.
"""

from __future__ import annotations

import enum
import json
import logging
from typing import Any

logger = logging.getLogger("llm_otel")

ENV_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


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


_ALIASES = {"true": CaptureMode.SPAN_ONLY, "false": CaptureMode.NO_CONTENT, "": CaptureMode.NO_CONTENT}


def parse_mode(value: str | bool | CaptureMode | None) -> CaptureMode:
    """Map a setting to a mode; unknown values fail closed (no content) with a warning."""
    if value is None:
        return CaptureMode.NO_CONTENT
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, bool):
        return CaptureMode.SPAN_ONLY if value else CaptureMode.NO_CONTENT
    text = value.strip().lower()
    if text in _ALIASES:
        return _ALIASES[text]
    for mode in CaptureMode:
        if mode.value == text:
            return mode
    logger.warning("llm-otel: unknown %s value %r; message content will not be captured", ENV_CAPTURE, value)
    return CaptureMode.NO_CONTENT


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


def to_json(value: Any) -> str:
    """JSON as the GenAI conventions put structured content on spans (a string attribute)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
