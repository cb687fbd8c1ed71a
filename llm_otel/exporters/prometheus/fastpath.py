"""Cheap writers for prometheus-client children and span attributes, for a per-call hot path.

``Counter.inc`` and ``Histogram.observe`` re-check on every call that the child has its labels, and
``observe`` walks the buckets in a Python loop; span ``attributes`` build a read-only proxy whose ``get``
goes through two Python frames. On a path that runs after every LLM call those checks cost about half of
the processor's time, so each child is turned, once, into a plain callable writing to prometheus-client's
value objects (the same ones its own methods write to: in-memory or, in multiprocess mode, mmap files).

These touch private attributes of prometheus-client (``_value``, ``_sum``, ``_buckets``,
``_upper_bounds``) and of the OpenTelemetry SDK (``BoundedAttributes._dict``). Each is feature-checked
when the child is created and falls back to the public API if the shape ever changes, so a library
upgrade can make this slower but not wrong.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes

Writer = Callable[[float], None]
_EMPTY: Mapping[str, Any] = {}


def _value_inc(child: Any) -> Writer | None:
    inc = getattr(getattr(child, "_value", None), "inc", None)
    return inc if callable(inc) else None


def counter_writer(child: Any) -> Writer:
    """``w(amount)`` adds ``amount`` (>= 0, checked by the caller) to a Counter child."""
    return _value_inc(child) or child.inc


def gauge_writer(child: Any) -> Writer:
    """``w(delta)`` adds ``delta`` (may be negative) to a Gauge child."""
    return _value_inc(child) or child.inc


def histogram_writer(child: Any) -> Writer:
    """``w(value)`` observes ``value`` in a Histogram child (same bucket rule: first bound >= value)."""
    sum_value = getattr(child, "_sum", None)
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    sum_inc = getattr(sum_value, "inc", None)
    if (
        not callable(sum_inc)
        or not isinstance(buckets, list)
        or not isinstance(bounds, (list, tuple))
        or len(buckets) != len(bounds)
        or not bounds
        or bounds[-1] != float("inf")
        or not all(callable(getattr(b, "inc", None)) for b in buckets)
    ):
        observe: Writer = child.observe
        return observe
    upper = tuple(bounds)
    incs = tuple(b.inc for b in buckets)

    def write(value: float) -> None:
        sum_inc(value)
        incs[bisect_left(upper, value)](1)

    return write


def span_attributes(span: Any) -> Mapping[str, Any]:
    """The attributes of a finished SDK span as a plain dict (no proxy, no copy); any other span works
    through its public ``attributes``."""
    raw = getattr(span, "_attributes", None)
    if raw.__class__ is BoundedAttributes:
        return raw._dict  # type: ignore[no-any-return]
    return span.attributes or _EMPTY
