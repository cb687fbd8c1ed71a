"""Setting llm-otel's own attribute values without the SDK's per-value validation.

``Span.set_attributes`` validates and copies every value (about 6k instructions per attribute, the largest
avoidable cost of a call). The request parameters and end-of-call values are ones llm-otel built: plain
str/int/float/bool or tuples of str. When the span is the SDK's own type, no value-length limit is set and
the count limit cannot be reached, they go straight into the span's attribute dict under the span's lock;
in every other case (another SDK version, limits configured, an unexpected value) the public API is used.
tests/test_fast_paths.py checks both paths give the same span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.attributes import BoundedAttributes

_PLAIN = frozenset({str, int, float, bool, tuple})


def set_attributes_fast(span: Any, attrs: dict[str, Any]) -> None:
    bounded = getattr(span, "_attributes", None)
    lock = getattr(span, "_lock", None)
    if (
        bounded.__class__ is BoundedAttributes
        and lock is not None
        and bounded.max_value_len is None  # type: ignore[union-attr]
        and (bounded.maxlen is None or len(bounded) + len(attrs) <= bounded.maxlen)  # type: ignore[union-attr,arg-type]
        and all(v.__class__ in _PLAIN for v in attrs.values())
    ):
        with lock:
            if getattr(span, "_end_time", 0) is None:
                bounded._dict.update(attrs)  # type: ignore[union-attr]
                return
    span.set_attributes(attrs)
