"""Validation of one usage record: every problem becomes a clear per-record error message."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_RECORDS = 1000
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_STRINGS = ("organization_id", "service_name", "provider", "model_id", "operation")
_TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens")
_MAX_STR = 256
_MAX_TAGS = 64


def parse_time(value: str) -> datetime:
    """RFC 3339 (``Z`` or offset) or a plain date -> aware UTC datetime; ValueError otherwise."""
    text = value.strip()
    if not text:
        raise ValueError("empty time")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        if "T" in text or " " in text:
            raise ValueError("time without a UTC offset")
        parsed = parsed.replace(tzinfo=timezone.utc)  # a bare date means UTC midnight
    return parsed.astimezone(timezone.utc)


def parse_cost(value: Any) -> Decimal | None:
    """``cost_usd``: null, or a string holding a finite, non-negative Decimal (never a JSON number)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("cost_usd must be a decimal string or null (a JSON number would lose precision)")
    try:
        dec = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"cost_usd {value[:40]!r} is not a decimal number") from None
    if not dec.is_finite() or dec < 0:
        raise ValueError("cost_usd must be finite and non-negative")
    return dec


def validate(record: Any) -> str | None:
    """None when ``record`` is a valid usage record, else the reason it is not."""
    try:
        _validate(record)
    except ValueError as exc:
        return str(exc)
    return None


def _validate(rec: Any) -> None:
    if not isinstance(rec, dict):
        raise ValueError("record must be a JSON object")
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid or len(rid) > _MAX_STR:
        raise ValueError("id must be a non-empty string (at most 256 characters)")
    stamp = rec.get("timestamp")
    if not isinstance(stamp, str):
        raise ValueError("timestamp must be an RFC 3339 string")
    try:
        parse_time(stamp)
    except ValueError:
        raise ValueError(f"timestamp {stamp[:40]!r} is not RFC 3339 with a UTC offset") from None
    for name in _STRINGS:
        value = rec.get(name)
        if not isinstance(value, str) or not value or len(value) > _MAX_STR:
            raise ValueError(f"{name} must be a non-empty string (at most 256 characters)")
    for name in _TOKENS:
        value = rec.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    parse_cost(rec.get("cost_usd"))
    latency = rec.get("latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0 <= latency < 1e12:
        raise ValueError("latency_ms must be a non-negative number")
    status = rec.get("status")
    if status not in ("ok", "error"):
        raise ValueError('status must be "ok" or "error"')
    error_type = rec.get("error_type")
    if error_type is not None and (not isinstance(error_type, str) or len(error_type) > _MAX_STR):
        raise ValueError("error_type must be a string or null")
    if status == "error" and not error_type:
        raise ValueError('error_type is required when status is "error"')
    trace_id, span_id = rec.get("trace_id"), rec.get("span_id")
    if not isinstance(trace_id, str) or not _HEX32.fullmatch(trace_id):
        raise ValueError("trace_id must be 32 lowercase hex digits")
    if not isinstance(span_id, str) or not _HEX16.fullmatch(span_id):
        raise ValueError("span_id must be 16 lowercase hex digits")
    attributes = rec.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > _MAX_TAGS:
        raise ValueError("attributes must be an object of at most 64 entries")
    for key, value in attributes.items():
        if not isinstance(value, str) or len(key) > _MAX_STR or len(value) > 1024:
            raise ValueError(f"attributes[{key[:40]!r}] must be a string (at most 1024 characters)")
