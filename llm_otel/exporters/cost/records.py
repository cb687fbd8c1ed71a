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
from json.encoder import encode_basestring  # type: ignore[attr-defined]
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
    text = repr(value)
    if value.__class__ is float and value > 0 and "e" not in text and text != "inf":
        return text  # the shortest repr is already the exact decimal string (the common case)
    try:
        dec = Decimal(text)
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
    if value is None:
        return 0
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


class _Clock:
    """``rfc3339_utc`` with the formatted second remembered: records arrive in bursts within one second."""

    __slots__ = ("second", "prefix")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def format(self, ns: int) -> str:
        sec, rem = divmod(ns, 1_000_000_000)
        if sec != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self.second = sec
        return f"{self.prefix}.{rem // 1000:06d}Z"


class _ResourceFields:
    """(organization from the resource, service name) of the last resource seen: a provider's spans share
    one immutable resource, so it is read once, not once per record."""

    __slots__ = ("resource", "fields")

    def __init__(self) -> None:
        self.resource: object = None
        self.fields = (DEFAULT_ORGANIZATION_ID, "unknown_service")

    def get(self, resource: Any) -> tuple[str, str]:
        if resource is not self.resource:
            attrs = resource.attributes if resource is not None else {}
            self.fields = (
                _str(attrs, semconv.RESOURCE_ORGANIZATION_ID, DEFAULT_ORGANIZATION_ID),
                _str(attrs, _SERVICE_NAME, "unknown_service"),
            )
            self.resource = resource
        return self.fields


_clock = _Clock()
_resources = _ResourceFields()


def _values(span: ReadableSpan, organization_id: str | None) -> tuple[Any, ...] | None:
    """The record's values in :data:`~llm_otel.cost_contract.RECORD_FIELDS` order; None when ``span`` is
    not a GenAI span (no operation name). The one mapping both renderings below share."""
    # The SDK's finished span keeps its attributes in a BoundedAttributes over a plain dict, which no one
    # changes any more: read that dict (half the cost of this function otherwise goes to the Mapping
    # protocol); anything else is copied through the public read-only mapping.
    attrs = getattr(getattr(span, "_attributes", None), "_dict", None)
    if attrs.__class__ is not dict:
        proxy = span.attributes
        attrs = dict(proxy) if proxy else {}
    operation = attrs.get(semconv.OPERATION)
    if not isinstance(operation, str) or not operation:
        return None
    if operation == semconv.OP_FETCH_RESPONSE and semconv.PRICING_STATUS not in attrs:
        return None  # a fetch of a response already recorded: no new generation, nothing to bill
    operation = clean_text(operation)
    ctx = span.context
    end = span.end_time
    if ctx is None or end is None:
        return None
    resource_org, service = _resources.get(span.resource)
    org = organization_id or resource_org
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
    start = span.start_time if span.start_time is not None else end
    trace_id = f"{ctx.trace_id:032x}"
    span_id = f"{ctx.span_id:016x}"
    return (
        _str(attrs, semconv.RECORD_ID, "") or f"{trace_id}-{span_id}",
        _clock.format(end),
        org,
        service,
        provider,
        model,
        operation,
        input_tokens,
        output_tokens,
        min(input_tokens + output_tokens, c.MAX_TOKENS),
        _int(attrs, semconv.USAGE_CACHE_READ_INPUT_TOKENS),
        _int(attrs, semconv.USAGE_REASONING_OUTPUT_TOKENS),
        cost,
        round(max(0, end - start) / 1e6, 3),
        c.STATUS_ERROR if failed else c.STATUS_OK,
        error_type if failed else None,
        trace_id,
        span_id,
        _tags(attrs),
    )


def span_to_record(span: ReadableSpan, organization_id: str | None = None) -> dict[str, Any] | None:
    """Map one finished span to a record; None when it is not a GenAI span (no operation name) or a
    ``fetch_response`` that records no usage."""
    values = _values(span, organization_id)
    return None if values is None else dict(zip(c.RECORD_FIELDS, values, strict=True))


def span_to_row(span: ReadableSpan, organization_id: str | None = None) -> tuple[str, str] | None:
    """``(id, compact JSON)`` of the record for ``span`` -- what the spool stores -- or None as above.

    The JSON is written from a template (field names escaped once, at import) rather than by
    ``json.dumps`` of a dict: the exporter's spooler does this for every call. ``json.loads`` of it equals
    :func:`span_to_record` (tested).
    """
    values = _values(span, organization_id)
    if values is None:
        return None
    return values[0], _render(values)


_esc = encode_basestring  # JSON string literal, non-ASCII kept (ensure_ascii=False); C implementation


def _template() -> str:
    return "{" + ",".join(f"{_esc(name)}:%s" for name in c.RECORD_FIELDS) + "}"


_TEMPLATE = _template()


def _render_tags(tags: dict[str, str]) -> str:
    if not tags:
        return "{}"
    return "{" + ",".join(f"{_esc(k)}:{_esc(v)}" for k, v in tags.items()) + "}"


def _render(v: tuple[Any, ...]) -> str:
    """Compact JSON of a :func:`_values` tuple, in the form :func:`encode` gives a record; always UTF-8
    encodable (strings were cleaned when read, ``clean_text`` catches what a tag's ``str()`` let through)."""
    cost, error_type = v[12], v[15]
    return clean_text(
        _TEMPLATE
        % (
            _esc(v[0]), _esc(v[1]), _esc(v[2]), _esc(v[3]), _esc(v[4]), _esc(v[5]), _esc(v[6]),
            v[7], v[8], v[9], v[10], v[11],
            "null" if cost is None else _esc(cost),
            repr(v[13]),
            _esc(v[14]),
            "null" if error_type is None else _esc(error_type),
            _esc(v[16]), _esc(v[17]),
            _render_tags(v[18]),
        )
    )  # fmt: skip


def encode(record: dict[str, Any]) -> str:
    """Compact JSON, the form stored in the spool and concatenated verbatim into request bodies; always
    encodable as UTF-8 (a lone surrogate, had one reached here, becomes U+FFFD: the JSON stays valid)."""
    return clean_text(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
