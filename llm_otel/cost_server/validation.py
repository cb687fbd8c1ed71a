"""Validation of one usage record against :mod:`llm_otel.cost_contract`: every problem becomes a clear
per-record error message."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from .. import cost_contract as c

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_COST_QUANTUM = Decimal(1).scaleb(-c.MAX_COST_PLACES)
_COST_CTX = Context(prec=60)


class TimeOutOfRange(ValueError):
    """A well-formed time outside the range allowed."""


#: A lone UTF-16 surrogate: JSON lets ``"\\ud800"`` through, UTF-8 (SQLite, any consumer) does not.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _text_ok(value: str) -> bool:
    """Valid Unicode text (storing it cannot fail); the common ASCII case costs one call."""
    return value.isascii() or _SURROGATE.search(value) is None


def parse_time(value: str) -> datetime:
    """RFC 3339 (``Z`` or offset) or a plain date -> aware UTC datetime; ValueError otherwise (also for a
    time whose UTC equivalent is outside what ``datetime`` holds, such as ``0001-01-01T00:00:00+01:00``)."""
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
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise TimeOutOfRange("time out of range") from None


def epoch_us(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (also before 1970) for an aware datetime."""
    return (when - _EPOCH) // _MICROSECOND


def parse_cost(value: Any) -> Decimal | None:
    """``cost_usd``: null, or a string holding a decimal in the contract's range -> that Decimal in canonical
    form (no exponent beyond what the value needs, no trailing zeros, ``0`` for any zero), else ValueError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(
            f"{c.COST_USD} must be a decimal string or null (a JSON number would lose precision)"
        )
    if len(value) > c.MAX_TEXT_CHARS:
        raise ValueError(f"{c.COST_USD} must be at most {c.MAX_TEXT_CHARS} characters")
    try:
        dec = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{c.COST_USD} {value[:40]!r} is not a decimal number") from None
    if not dec.is_finite() or not 0 <= dec < c.MAX_COST_USD:
        raise ValueError(f"{c.COST_USD} must be a finite decimal >= 0 and < {c.MAX_COST_USD}")
    # Below MAX_COST_USD, the value at MAX_COST_PLACES places has at most 27 digits: _COST_CTX never rounds
    # it, so the quantized value differs from ``dec`` exactly when ``dec`` has more places.
    exact = dec.quantize(_COST_QUANTUM, context=_COST_CTX)
    if exact != dec:
        raise ValueError(f"{c.COST_USD} must have at most {c.MAX_COST_PLACES} decimal places")
    return exact.normalize(_COST_CTX) if exact else Decimal(0)


def validate(record: Any) -> str | None:
    """None when ``record`` is a valid usage record, else the reason it is not."""
    try:
        _validate(record)
    except ValueError as exc:
        return str(exc)
    return None


def checked(record: Any) -> tuple[datetime, Decimal | None] | str:
    """Validate ``record``: its parsed time and cost (what the store needs, so it does not parse them
    again), or the reason it is invalid.

    The common record (what llm-otel's exporter writes: ASCII strings, the exporter's timestamp form, a
    plain decimal cost) is accepted by :func:`_fast`; anything it does not accept outright goes through
    the full validation, which gives the same result for a valid record and the message for an invalid one.
    """
    fast = _fast(record)
    if fast is not None:
        return fast
    try:
        return _validate(record)
    except ValueError as exc:
        return str(exc)


_STRINGS = c.STRING_FIELDS
_TOKENS = c.TOKEN_FIELDS
_MAX_TEXT = c.MAX_TEXT_CHARS
_MAX_TOKENS = c.MAX_TOKENS
_MIN_TIME, _MAX_TIME = c.MIN_TIMESTAMP, c.MAX_TIMESTAMP
_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


def _fast(rec: Any) -> tuple[datetime, Decimal | None] | None:
    """The parsed (time, cost) of a record that is valid in its common form, else None (not decided).

    One type check per field (``__class__ is``, ASCII strings only), the timestamp only in the form
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the cost only as ``0.<digits>`` without trailing zero (its canonical
    form already): a subset of what :func:`_validate` accepts, with the same parsed values (tested)."""
    if rec.__class__ is not dict:
        return None
    get = rec.get
    rid = get(c.ID)
    if rid.__class__ is not str or not rid or len(rid) > _MAX_TEXT or not rid.isascii():
        return None
    for name in _STRINGS:
        value = get(name)
        if value.__class__ is not str or not value or len(value) > _MAX_TEXT or not value.isascii():
            return None
    for name in _TOKENS:
        value = get(name)
        if value.__class__ is not int or not 0 <= value <= _MAX_TOKENS:
            return None
    stamp = get(c.TIMESTAMP)
    if stamp.__class__ is not str or len(stamp) != 27 or stamp[26] != "Z" or stamp[10] != "T":
        return None
    try:
        when = _fromisoformat(stamp[:26])
    except ValueError:
        return None
    if when.tzinfo is not None:
        return None
    when = when.replace(tzinfo=_UTC)
    if not _MIN_TIME <= when <= _MAX_TIME:
        return None
    cost_text = get(c.COST_USD)
    cost: Decimal | None = None
    if cost_text is not None:
        if (
            cost_text.__class__ is not str
            or not 3 <= len(cost_text) <= 2 + c.MAX_COST_PLACES
            or cost_text[:2] != "0."
            or cost_text[-1] == "0"
            or not cost_text.isascii()
            or not cost_text[2:].isdigit()
        ):
            return None
        cost = Decimal(cost_text)
    latency = get(c.LATENCY_MS)
    if (latency.__class__ is not float and latency.__class__ is not int) or not (
        0 <= latency < c.MAX_LATENCY_MS
    ):
        return None
    status = get(c.STATUS)
    error_type = get(c.ERROR_TYPE)
    if status == c.STATUS_OK:
        if error_type is not None and (
            error_type.__class__ is not str or len(error_type) > _MAX_TEXT or not error_type.isascii()
        ):
            return None
    elif (
        status != c.STATUS_ERROR
        or error_type.__class__ is not str
        or not 0 < len(error_type) <= _MAX_TEXT
        or not error_type.isascii()
    ):
        return None
    trace_id, span_id = get(c.TRACE_ID), get(c.SPAN_ID)
    if trace_id.__class__ is not str or span_id.__class__ is not str:
        return None
    if _HEX32.fullmatch(trace_id) is None or _HEX16.fullmatch(span_id) is None:
        return None
    attributes = get(c.ATTRIBUTES, _NO_ATTRIBUTES)
    if attributes.__class__ is not dict or len(attributes) > c.MAX_ATTRIBUTES:
        return None
    max_value = c.MAX_ATTRIBUTE_VALUE_CHARS
    for key, value in attributes.items():
        if (
            value.__class__ is not str
            or len(key) > _MAX_TEXT
            or len(value) > max_value
            or not key.isascii()
            or not value.isascii()
        ):
            return None
    return when, cost


_NO_ATTRIBUTES: dict[str, str] = {}


def _validate(rec: Any) -> tuple[datetime, Decimal | None]:
    if not isinstance(rec, dict):
        raise ValueError("record must be a JSON object")
    max_text = c.MAX_TEXT_CHARS
    rid = rec.get(c.ID)
    if not isinstance(rid, str) or not rid or len(rid) > max_text or not _text_ok(rid):
        raise ValueError(f"{c.ID} must be a non-empty string (at most {max_text} characters)")
    stamp = rec.get(c.TIMESTAMP)
    if not isinstance(stamp, str) or len(stamp) > c.MAX_TIMESTAMP_CHARS:
        raise ValueError(
            f"{c.TIMESTAMP} must be an RFC 3339 string (at most {c.MAX_TIMESTAMP_CHARS} characters)"
        )
    try:
        when = parse_time(stamp)
        if not c.MIN_TIMESTAMP <= when <= c.MAX_TIMESTAMP:
            raise TimeOutOfRange
    except TimeOutOfRange:
        span = f"{_iso(c.MIN_TIMESTAMP)} .. {_iso(c.MAX_TIMESTAMP)}"
        raise ValueError(f"{c.TIMESTAMP} {stamp[:40]!r} is outside {span} (UTC)") from None
    except ValueError:
        raise ValueError(f"{c.TIMESTAMP} {stamp[:40]!r} is not RFC 3339 with a UTC offset") from None
    for name in c.STRING_FIELDS:
        value = rec.get(name)
        if not isinstance(value, str) or not value or len(value) > max_text:
            raise ValueError(f"{name} must be a non-empty string (at most {max_text} characters)")
        if not _text_ok(value):
            raise ValueError(f"{name} holds a lone UTF-16 surrogate (not valid Unicode text)")
    for name in c.TOKEN_FIELDS:
        value = rec.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= c.MAX_TOKENS:
            raise ValueError(f"{name} must be an integer from 0 to {c.MAX_TOKENS}")
    cost = parse_cost(rec.get(c.COST_USD))
    latency = rec.get(c.LATENCY_MS)
    if (
        isinstance(latency, bool)
        or not isinstance(latency, (int, float))
        or not 0 <= latency < c.MAX_LATENCY_MS
    ):
        raise ValueError(f"{c.LATENCY_MS} must be a non-negative number")
    status = rec.get(c.STATUS)
    if status not in c.STATUSES:
        raise ValueError(f'{c.STATUS} must be "{c.STATUS_OK}" or "{c.STATUS_ERROR}"')
    error_type = rec.get(c.ERROR_TYPE)
    if error_type is not None and (
        not isinstance(error_type, str) or len(error_type) > max_text or not _text_ok(error_type)
    ):
        raise ValueError(f"{c.ERROR_TYPE} must be a string or null")
    if status == c.STATUS_ERROR and not error_type:
        raise ValueError(f'{c.ERROR_TYPE} is required when {c.STATUS} is "{c.STATUS_ERROR}"')
    trace_id, span_id = rec.get(c.TRACE_ID), rec.get(c.SPAN_ID)
    if not isinstance(trace_id, str) or not _HEX32.fullmatch(trace_id):
        raise ValueError(f"{c.TRACE_ID} must be 32 lowercase hex digits")
    if not isinstance(span_id, str) or not _HEX16.fullmatch(span_id):
        raise ValueError(f"{c.SPAN_ID} must be 16 lowercase hex digits")
    attributes = rec.get(c.ATTRIBUTES, {})
    if not isinstance(attributes, dict) or len(attributes) > c.MAX_ATTRIBUTES:
        raise ValueError(f"{c.ATTRIBUTES} must be an object of at most {c.MAX_ATTRIBUTES} entries")
    max_value = c.MAX_ATTRIBUTE_VALUE_CHARS
    for key, value in attributes.items():
        if not isinstance(value, str) or len(key) > max_text or len(value) > max_value:
            raise ValueError(
                f"{c.ATTRIBUTES}[{key[:40]!r}] must be a string (at most {max_value} characters)"
            )
        if not (_text_ok(key) and _text_ok(value)):
            raise ValueError(f"{c.ATTRIBUTES}[{key[:40]!r}] holds a lone UTF-16 surrogate")
    return when, cost


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
