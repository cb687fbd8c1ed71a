"""The hot-path shortcuts give exactly what the slow, public paths give."""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanLimits, TracerProvider

from llm_otel.instrumentors.fast_attributes import set_attributes_fast

ATTRS = {
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop", "length"),
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.cost": 1.5e-06,
    "llm_otel.stream.abandoned": True,
}


def _span(provider: TracerProvider) -> object:
    return provider.get_tracer("t").start_span("s", attributes={"a": 1})


def test_fast_attributes_equal_public_api() -> None:
    provider = TracerProvider()
    fast, slow = _span(provider), _span(provider)
    set_attributes_fast(fast, dict(ATTRS))
    slow.set_attributes(dict(ATTRS))  # type: ignore[attr-defined]
    fast.end()  # type: ignore[attr-defined]
    slow.end()  # type: ignore[attr-defined]
    assert dict(fast.attributes) == dict(slow.attributes)  # type: ignore[attr-defined]


def test_limits_fall_back_to_public_api() -> None:
    provider = TracerProvider(span_limits=SpanLimits(max_attribute_length=5, max_span_attributes=3))
    span = _span(provider)
    set_attributes_fast(span, dict(ATTRS))
    span.end()  # type: ignore[attr-defined]
    attrs = dict(span.attributes)  # type: ignore[attr-defined]
    assert len(attrs) == 3  # the count limit applied
    assert all(len(v) <= 5 for v in attrs.values() if isinstance(v, str))  # the length limit applied


def test_no_write_after_end() -> None:
    span = _span(TracerProvider())
    span.end()  # type: ignore[attr-defined]
    set_attributes_fast(span, {"late": 1})
    assert "late" not in span.attributes  # type: ignore[attr-defined]


def test_strings_are_made_encodable_on_both_paths() -> None:
    odd = {"m": "a\ud800", "r": ("x\udfff", "ok"), "ok": "zürich", "n": 3, "odd": ["l\ud800"]}
    for provider in (TracerProvider(), TracerProvider(span_limits=SpanLimits(max_attribute_length=50))):
        fast, plain = _span(provider), _span(provider)
        set_attributes_fast(fast, dict(odd))
        set_attributes_fast(plain, {k: v for k, v in odd.items() if k != "odd"})  # no list: fast path
        for span in (fast, plain):
            span.end()  # type: ignore[attr-defined]
            attrs = dict(span.attributes)  # type: ignore[attr-defined]
            assert attrs["m"] == "a\ufffd" and attrs["r"] == ("x\ufffd", "ok") and attrs["ok"] == "zürich"
        assert dict(fast.attributes)["odd"] == ("l\ufffd",)  # type: ignore[attr-defined]
