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


def span_to_record(span: ReadableSpan, organization_id: str | None = None) -> dict[str, Any] | None:
    """Map one finished span to a record; None when it is not a GenAI span (no operation name) or a
    ``fetch_response`` that records no usage. The record :func:`span_to_row` spools, as a dict."""
    row = span_to_row(span, organization_id)
    return None if row is None else json.loads(row[1])  # type: ignore[no-any-return]


_esc = encode_basestring  # JSON string literal, non-ASCII kept (ensure_ascii=False); C implementation


def _template() -> str:
    """The record's JSON with a ``%s`` per value; the values that are plain ASCII by construction (the
    timestamp, the hex ids, the cost's digits, the status) get their quotes here, not from an escape."""
    quoted = {c.TIMESTAMP, c.COST_USD, c.STATUS, c.TRACE_ID, c.SPAN_ID}
    parts = []
    for name in c.RECORD_FIELDS:
        value = '"%s"' if name in quoted else "%s"
        parts.append(f"{_esc(name)}:{value}")
    return "{" + ",".join(parts) + "}"


_TEMPLATE = _template()
# null cost / error type: the template quotes the cost, so a null one is rendered from its own template.
_TEMPLATE_NO_COST = _TEMPLATE.replace(f'{_esc(c.COST_USD)}:"%s"', f"{_esc(c.COST_USD)}:%s")
_OP, _PROVIDER, _RESP_MODEL, _REQ_MODEL = (
    semconv.OPERATION, semconv.PROVIDER, semconv.RESPONSE_MODEL, semconv.REQUEST_MODEL,
)  # fmt: skip
_IN, _OUT = semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS
_CACHED, _REASONING = semconv.USAGE_CACHE_READ_INPUT_TOKENS, semconv.USAGE_REASONING_OUTPUT_TOKENS
_PRICING, _UNPRICED, _COST = semconv.PRICING_STATUS, semconv.PRICING_UNPRICED, semconv.USAGE_COST
_TAG, _TAG_LEN = semconv.TAG_PREFIX, len(semconv.TAG_PREFIX)
_MAX = c.MAX_TOKENS
_ERROR = StatusCode.ERROR


def span_to_row(span: ReadableSpan, organization_id: str | None = None) -> tuple[str, str] | None:
    """``(id, compact JSON)`` of the record for ``span`` -- what the spool stores -- or None as above.

    The exporter's spooler does this for every call, so it is one straight function: the JSON is written
    from a template (field names escaped once, at import), each value is read with one type check for the
    form llm-otel's own span path writes (its attributes are already checked: strings made encodable,
    token counts 0..MAX_TOKENS) and falls back to the defensive readers above for anything else, and the
    whole JSON gets one ``clean_text`` (one ``isascii()`` in the usual case) instead of one per string.
    """
    # The SDK's finished span keeps its attributes in a BoundedAttributes over a plain dict, which no one
    # changes any more: read that dict (the Mapping protocol would cost as much as the rest); anything
    # else is copied through the public read-only mapping.
    attrs = getattr(getattr(span, "_attributes", None), "_dict", None)
    if attrs.__class__ is not dict:
        proxy = span.attributes
        attrs = dict(proxy) if proxy else {}
    get = attrs.get
    operation = get(_OP)
    if not isinstance(operation, str) or not operation:
        return None
    if operation == semconv.OP_FETCH_RESPONSE and _PRICING not in attrs:
        return None  # a fetch of a response already recorded: no new generation, nothing to bill
    ctx = span.context
    end = span.end_time
    if ctx is None or end is None:
        return None
    resource = span.resource
    if resource is not _resources.resource:
        _resources.get(resource)
    resource_org, service = _resources.fields
    provider = get(_PROVIDER)
    if provider.__class__ is not str or not provider:
        provider = _str(attrs, _LEGACY_SYSTEM, UNKNOWN)
    model = get(_RESP_MODEL)
    if model.__class__ is not str or not model:
        model = _str(attrs, _REQ_MODEL, UNKNOWN)
    input_tokens = get(_IN, 0)
    if input_tokens.__class__ is not int or not 0 <= input_tokens <= _MAX:
        input_tokens = _int(attrs, _IN)
    output_tokens = get(_OUT, 0)
    if output_tokens.__class__ is not int or not 0 <= output_tokens <= _MAX:
        output_tokens = _int(attrs, _OUT)
    cached = get(_CACHED, 0)
    if cached.__class__ is not int or not 0 <= cached <= _MAX:
        cached = _int(attrs, _CACHED)
    reasoning = get(_REASONING, 0)
    if reasoning.__class__ is not int or not 0 <= reasoning <= _MAX:
        reasoning = _int(attrs, _REASONING)
    template = _TEMPLATE
    cost: str | None = None
    if get(_PRICING) != _UNPRICED:
        value = get(_COST)
        if value.__class__ is float and value > 0:
            cost = repr(value)
            if "e" in cost or cost == "inf":
                cost = cost_string(value)
        else:
            cost = cost_string(value)
    if cost is None:
        template, cost = _TEMPLATE_NO_COST, "null"
    error_type = get(semconv.ERROR_TYPE)
    if error_type is not None:
        status, error = c.STATUS_ERROR, _esc(error_type if error_type.__class__ is str else str(error_type))
    elif span.status.status_code is _ERROR:
        status, error = c.STATUS_ERROR, '"_OTHER"'
    else:
        status, error = c.STATUS_OK, "null"
    start = span.start_time
    latency = (end - start if start is not None and end > start else 0) / 1e6
    sec, rem = divmod(end, 1_000_000_000)
    if sec != _clock.second:
        _clock.format(end)
    trace_id = f"{ctx.trace_id:032x}"
    span_id = f"{ctx.span_id:016x}"
    rid = get(semconv.RECORD_ID)
    if rid.__class__ is not str or not rid:
        rid = f"{trace_id}-{span_id}"
    elif not rid.isascii():
        rid = clean_text(rid)
    tags = [
        f"{_esc(key[_TAG_LEN:])}:{_esc(value if value.__class__ is str else str(value))}"
        for key, value in attrs.items()
        if key[:_TAG_LEN] == _TAG  # a slice compares cheaper than startswith's argument parsing
    ]
    total = input_tokens + output_tokens
    return rid, clean_text(
        template
        % (
            _esc(rid), f"{_clock.prefix}.{rem // 1000:06d}Z",
            _esc(organization_id or resource_org), _esc(service), _esc(provider), _esc(model),
            _esc(operation),
            input_tokens, output_tokens, total if total <= _MAX else _MAX, cached, reasoning,
            cost, repr(round(latency, 3)), status, error, trace_id, span_id,
            "{" + ",".join(tags) + "}",
        )
    )  # fmt: skip


def encode(record: dict[str, Any]) -> str:
    """Compact JSON, the form stored in the spool and concatenated verbatim into request bodies; always
    encodable as UTF-8 (a lone surrogate, had one reached here, becomes U+FFFD: the JSON stays valid)."""
    return clean_text(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
