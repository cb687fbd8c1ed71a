"""Finished GenAI span -> usage record for the cost API, in the form :mod:`llm_otel.cost_contract` defines.

One record per LLM call: who (organization, service), what (provider, model, operation), how much (token
counts and the exact USD cost as a decimal string, null when unpriced), how it went (latency, status,
error type), the trace and span ids, and the attribution tags. Runs on the exporter's spooler thread (on
the application thread only when the in-memory queue is full), so it may be thorough: every field is read
defensively and a span with odd attribute types still yields a record of the right shape: strings made
encodable (a lone surrogate would fail the spool insert of the whole batch), token counts outside
0..MAX_TOKENS taken as unknown (0), so the server never answers 400 for a count (the record would be
dead-lettered) nor fails to store one.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from ... import cost_contract as c
from ... import semconv
from ...values import clean_text

#: organization_id when neither the settings nor the resource name one (the field is a required string).
DEFAULT_ORGANIZATION_ID = "default"
UNKNOWN = "unknown"
_SERVICE_NAME = "service.name"
_LEGACY_SYSTEM = "gen_ai.system"


def record_id(trace_id: int, span_id: int) -> str:
    """Stable per call, so the server can deduplicate replays: ``{trace_id:032x}-{span_id:016x}``."""
    return f"{trace_id:032x}-{span_id:016x}"


def rfc3339_utc(ns: int) -> str:
    """Nanoseconds since the epoch -> ``2026-01-02T03:04:05.123456Z`` (microsecond precision)."""
    sec, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{rem // 1000:06d}Z"


def cost_string(value: object) -> str | None:
    """The span's float cost as an exact Decimal string, or None when there is no usable cost.

    Pricing quantizes to 12 decimals, so ``repr`` of the float recovers that Decimal exactly; ``'f'``
    formatting avoids exponent notation (``1.23E-7``) that some consumers misread.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        dec = Decimal(repr(value))
    except InvalidOperation:
        return None
    if not dec.is_finite() or dec < 0:
        return None
    return format(dec.normalize() if dec == 0 else dec, "f")


def _str(attrs: Any, key: str, default: str) -> str:
    value = attrs.get(key)
    return clean_text(value) if isinstance(value, str) and value else default


def _int(attrs: Any, key: str) -> int:
    """A token count the contract accepts: 0..MAX_TOKENS; anything else (1e308, -1, NaN) is unknown, 0."""
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not 0 <= value <= c.MAX_TOKENS:  # NaN fails this too
        return 0
    return int(value)


def _tags(attrs: Any) -> dict[str, str]:
    start = len(semconv.TAG_PREFIX)
    return {
        clean_text(key[start:]): clean_text(str(value))
        for key, value in attrs.items()
        if key.startswith(semconv.TAG_PREFIX)
    }


def span_to_record(span: ReadableSpan, organization_id: str | None = None) -> dict[str, Any] | None:
    """Map one finished span to a record; None when it is not a GenAI span (no operation name) or a
    ``fetch_response`` that records no usage."""
    attrs = span.attributes or {}
    operation = attrs.get(semconv.OPERATION)
    if not isinstance(operation, str) or not operation:
        return None
    if operation == semconv.OP_FETCH_RESPONSE and semconv.PRICING_STATUS not in attrs:
        return None  # a fetch of a response already recorded: no new generation, nothing to bill
    operation = clean_text(operation)
    ctx = span.context
    if ctx is None or span.end_time is None:
        return None
    resource_attrs = span.resource.attributes if span.resource is not None else {}
    org = organization_id or _str(resource_attrs, semconv.RESOURCE_ORGANIZATION_ID, DEFAULT_ORGANIZATION_ID)
    provider = _str(attrs, semconv.PROVIDER, "") or _str(attrs, _LEGACY_SYSTEM, UNKNOWN)
    model = _str(attrs, semconv.RESPONSE_MODEL, "") or _str(attrs, semconv.REQUEST_MODEL, UNKNOWN)
    input_tokens = _int(attrs, semconv.USAGE_INPUT_TOKENS)
    output_tokens = _int(attrs, semconv.USAGE_OUTPUT_TOKENS)
    cost = None
    if attrs.get(semconv.PRICING_STATUS) != semconv.PRICING_UNPRICED:
        cost = cost_string(attrs.get(semconv.USAGE_COST))
    error_type = attrs.get(semconv.ERROR_TYPE)
    failed = error_type is not None or span.status.status_code is StatusCode.ERROR
    if failed:
        error_type = clean_text(str(error_type)) if error_type is not None else "_OTHER"
    start = span.start_time if span.start_time is not None else span.end_time
    return {
        c.ID: _str(attrs, semconv.RECORD_ID, "") or record_id(ctx.trace_id, ctx.span_id),
        c.TIMESTAMP: rfc3339_utc(span.end_time),
        c.ORGANIZATION_ID: org,
        c.SERVICE_NAME: _str(resource_attrs, _SERVICE_NAME, "unknown_service"),
        c.PROVIDER: provider,
        c.MODEL_ID: model,
        c.OPERATION: operation,
        c.INPUT_TOKENS: input_tokens,
        c.OUTPUT_TOKENS: output_tokens,
        c.TOTAL_TOKENS: min(input_tokens + output_tokens, c.MAX_TOKENS),
        c.CACHED_INPUT_TOKENS: _int(attrs, semconv.USAGE_CACHE_READ_INPUT_TOKENS),
        c.REASONING_TOKENS: _int(attrs, semconv.USAGE_REASONING_OUTPUT_TOKENS),
        c.COST_USD: cost,
        c.LATENCY_MS: round(max(0, span.end_time - start) / 1e6, 3),
        c.STATUS: c.STATUS_ERROR if failed else c.STATUS_OK,
        c.ERROR_TYPE: error_type if failed else None,
        c.TRACE_ID: f"{ctx.trace_id:032x}",
        c.SPAN_ID: f"{ctx.span_id:016x}",
        c.ATTRIBUTES: _tags(attrs),
    }


def encode(record: dict[str, Any]) -> str:
    """Compact JSON, the form stored in the spool and concatenated verbatim into request bodies; always
    encodable as UTF-8 (a lone surrogate, had one reached here, becomes U+FFFD: the JSON stays valid)."""
    return clean_text(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
