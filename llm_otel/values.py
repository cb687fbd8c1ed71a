"""Values from outside (a response, the user's arguments and tags) made safe to record.

Every string llm-otel records must be encodable as UTF-8: OTLP protobuf, the Prometheus text format and
SQLite all refuse a lone UTF-16 surrogate (``"\\ud800"``, which JSON allows as an escape and Python keeps
in a ``str``). One such value would otherwise fail a whole OTLP batch, every later ``/metrics`` scrape or
every spool insert. :func:`clean_text` replaces each lone surrogate with U+FFFD (a valid surrogate pair
becomes its character); it costs one ``isascii()`` for the usual ASCII value.

Token counts are taken only as integers from 0 to :data:`~llm_otel.cost_contract.MAX_TOKENS` (an
integral float is converted); anything else (a string, a bool, ``1e308``, ``2**63``) is left off and
counted by :func:`llm_otel.guard.reject`, so pricing and the cost metrics stay finite.

These are the slow paths: callers test the common case inline (``value.__class__ is str and
value.isascii()``, ``value.__class__ is int and 0 <= value <= MAX_TOKENS``) and call here otherwise.
"""

from __future__ import annotations

from typing import Any

from . import guard
from .cost_contract import MAX_TOKENS

__all__ = ["MAX_TOKENS", "clean_text", "count", "encodable_attributes", "text"]

_REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (the same object when there is none)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass joins a valid pair into its character; "replace" turns a lone one
        # into exactly one U+FFFD.
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _short(value: Any) -> str:
    try:
        return repr(value)[:80]  # repr escapes surrogates: safe to log
    except Exception:  # pragma: no cover - a hostile __repr__
        return f"<{type(value).__name__}>"


def text(value: Any, site: str, what: str) -> str | None:
    """A string value made encodable; anything but a (non-empty) string is rejected (None)."""
    if isinstance(value, str):
        return clean_text(value) or None
    guard.reject(site, f"{what} {_short(value)} is not a string")
    return None


def count(value: Any, site: str, what: str) -> int | None:
    """A token count as an int from 0 to MAX_TOKENS; anything else is rejected (None)."""
    if value.__class__ is int and 0 <= value <= MAX_TOKENS:
        return value  # type: ignore[no-any-return]
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_TOKENS:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS:
        return int(value)  # an int subclass (an IntEnum, numpy's int64 is not one)
    guard.reject(site, f"{what} {_short(value)} is not a whole number of tokens in 0..2**53")
    return None


def _clean_value(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return clean_text(value)
    if cls is tuple or cls is list:
        return tuple(clean_text(v) if v.__class__ is str else v for v in value)
    return value


def encodable_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` whose string values (and strings inside tuples/lists) are encodable."""
    return {clean_text(k) if k.__class__ is str else k: _clean_value(v) for k, v in attrs.items()}
