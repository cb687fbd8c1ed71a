"""Setting llm-otel's own attribute values without the SDK's per-value validation.

``Span.set_attributes`` validates and copies every value (about 6k instructions per attribute, the largest
avoidable cost of a call). The request parameters and end-of-call values are ones llm-otel built: plain
str/int/float/bool or tuples of str. When the span is the SDK's own type, no value-length limit is set and
the count limit cannot be reached, they go straight into the span's attribute dict under the span's lock;
in every other case (another SDK version, limits configured, an unexpected value) the public API is used.
tests/test_fast_paths.py checks both paths give the same span.

Either way every string value (also inside a tuple) is made encodable first (``values.clean_text``: a
lone surrogate from a response or a tag would fail the OTLP batch, the Prometheus scrape, the cost spool);
the check is one ``isascii()`` per string, done in the same pass that checks the value types. Values
checked where they were built (the end of a call) skip that pass: :func:`write_checked`.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.attributes import BoundedAttributes

from ..values import encodable_attributes

_SCALARS = frozenset({int, float, bool})


def set_attributes_fast(span: Any, attrs: dict[str, Any]) -> None:
    plain = True  # only str, int, float, bool and tuples
    ascii_only = True
    for value in attrs.values():
        cls = value.__class__
        if cls is str:
            if not value.isascii():
                ascii_only = False
        elif cls is tuple:
            for item in value:
                if item.__class__ is str and not item.isascii():
                    ascii_only = False
        elif cls not in _SCALARS:
            plain = False
    if not (plain and ascii_only):
        attrs = encodable_attributes(attrs)  # a string that may not be encodable, or an odd value
        if not plain:
            span.set_attributes(attrs)
            return
    write_checked(span, attrs)


def write_checked(span: Any, attrs: dict[str, Any]) -> None:
    """The second half of :func:`set_attributes_fast`, for values already known to be plain and ASCII
    (str, int, float, bool, tuples of str), e.g. the end attributes ``GenAICall`` checked one by one."""
    bounded = getattr(span, "_attributes", None)
    lock = getattr(span, "_lock", None)
    if (
        bounded.__class__ is BoundedAttributes
        and lock is not None
        and bounded.max_value_len is None  # type: ignore[union-attr]
        and (bounded.maxlen is None or len(bounded) + len(attrs) <= bounded.maxlen)  # type: ignore[union-attr,arg-type]
    ):
        with lock:
            if getattr(span, "_end_time", 0) is None:
                bounded._dict.update(attrs)  # type: ignore[union-attr]
                return
    span.set_attributes(attrs)
