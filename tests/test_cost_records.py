"""Span -> cost record mapping, field by field, and every mapped record passes the server's validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from llm_otel.cost_contract import RECORD_FIELDS
from llm_otel.cost_server.validation import validate
from llm_otel.exporters.cost.records import cost_string, rfc3339_utc, span_to_record
from llm_otel.semconv import SCOPE_NAME


def finished_span(
    attrs: dict[str, Any], resource: dict[str, Any] | None = None, error: bool = False
) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(resource or {"service.name": "svc"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer(SCOPE_NAME).start_span("chat x", start_time=1_700_000_000_000_000_000)
    span.set_attributes(attrs)
    if error:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=1_700_000_000_250_000_000)
    return exporter.get_finished_spans()[0]


BASE = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}


def test_full_record() -> None:
    span = finished_span(
        {
            **BASE,
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.cache_read.input_tokens": 64,
            "gen_ai.usage.reasoning.output_tokens": 8,
            "gen_ai.usage.cost": 0.000123456789,
            "llm_otel.pricing.status": "priced",
            "llm_otel.tag.tenant": "acme",
            "llm_otel.tag.feature": "search",
        },
        {"service.name": "billing", "llm_otel.organization_id": "org-res"},
    )
    rec = span_to_record(span)
    assert rec is not None
    ctx = span.context
    assert ctx is not None
    assert rec["id"] == f"{ctx.trace_id:032x}-{ctx.span_id:016x}"
    assert rec["trace_id"] == f"{ctx.trace_id:032x}" and rec["span_id"] == f"{ctx.span_id:016x}"
    assert rec["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert rec["organization_id"] == "org-res" and rec["service_name"] == "billing"
    assert (
        rec["model_id"] == "gpt-4o-2024-08-06" and rec["provider"] == "openai" and rec["operation"] == "chat"
    )
    assert (rec["input_tokens"], rec["output_tokens"], rec["total_tokens"]) == (100, 20, 120)
    assert (rec["cached_input_tokens"], rec["reasoning_tokens"]) == (64, 8)
    assert rec["cost_usd"] == "0.000123456789" and Decimal(rec["cost_usd"]) == Decimal("0.000123456789")
    assert rec["latency_ms"] == 250.0
    assert rec["status"] == "ok" and rec["error_type"] is None
    assert rec["attributes"] == {"tenant": "acme", "feature": "search"}
    assert tuple(rec) == RECORD_FIELDS  # exactly the contract's fields
    assert validate(rec) is None
    assert span_to_record(span, organization_id="org-set")["organization_id"] == "org-set"  # type: ignore[index]


def test_error_unpriced_and_missing_usage() -> None:
    rec = span_to_record(
        finished_span({**BASE, "error.type": "RateLimitError", "llm_otel.pricing.status": "unpriced"})
    )
    assert rec is not None
    assert rec["status"] == "error" and rec["error_type"] == "RateLimitError"
    assert rec["cost_usd"] is None and rec["model_id"] == "gpt-4o"
    assert rec["input_tokens"] == rec["output_tokens"] == rec["total_tokens"] == 0
    assert rec["organization_id"] == "default"
    assert validate(rec) is None
    status_only = span_to_record(finished_span(BASE, error=True))
    assert status_only is not None and status_only["error_type"] == "_OTHER"


def test_local_model_costs_zero_and_non_genai_spans_are_skipped() -> None:
    rec = span_to_record(
        finished_span({**BASE, "gen_ai.usage.cost": 0.0, "llm_otel.pricing.status": "local"})
    )
    assert rec is not None and rec["cost_usd"] == "0"
    assert span_to_record(finished_span({"http.method": "GET"})) is None


def test_cost_string_is_exact_and_never_exponent() -> None:
    assert cost_string(1.23e-7) == "0.000000123"
    assert cost_string(0.000000123456) == "0.000000123456"
    assert cost_string(12.5) == "12.5"
    assert cost_string(float("nan")) is None and cost_string(-1.0) is None and cost_string("1") is None
    assert rfc3339_utc(0) == "1970-01-01T00:00:00.000000Z"


def test_records_of_odd_spans_always_pass_validation() -> None:
    """Whatever another instrumentation (or a bug) left on a span, a token count or a string of the record
    the exporter spools is one the server accepts, and the record encodes as UTF-8 (the spool insert)."""
    from llm_otel.cost_contract import MAX_TOKENS
    from llm_otel.exporters.cost.records import encode

    span = finished_span(
        {
            **BASE,
            "gen_ai.operation.name": "chat\ud800",
            "gen_ai.response.model": "m\ud800",
            "gen_ai.usage.input_tokens": 2**63,
            "gen_ai.usage.output_tokens": 1e308,
            "gen_ai.usage.cache_read.input_tokens": -4,
            "gen_ai.usage.reasoning.output_tokens": float("nan"),
            "error.type": "Err\udfff",
            "llm_otel.tag.t\ud800": "v\ud800",
        },
        {"service.name": "svc\ud800"},
    )
    rec = span_to_record(span)
    assert rec is not None
    assert validate(rec) is None, validate(rec)
    encode(rec).encode("utf-8")
    assert rec["input_tokens"] == rec["output_tokens"] == rec["total_tokens"] == 0
    assert rec["cached_input_tokens"] == rec["reasoning_tokens"] == 0
    assert rec["model_id"] == "m\ufffd" and rec["service_name"] == "svc\ufffd"
    assert rec["operation"] == "chat\ufffd" and rec["error_type"] == "Err\ufffd"
    assert rec["attributes"] == {"t\ufffd": "v\ufffd"}
    most = finished_span({**BASE, "gen_ai.usage.input_tokens": MAX_TOKENS, "gen_ai.usage.output_tokens": 5})
    capped = span_to_record(most)
    assert capped is not None and validate(capped) is None
    assert capped["input_tokens"] == MAX_TOKENS and capped["total_tokens"] == MAX_TOKENS


def test_spooled_row_is_the_record_as_json() -> None:
    """The exporter spools ``span_to_row``'s template-written JSON: it must parse back to exactly the
    record ``span_to_record`` maps (every field, null cost and error, odd strings, tags, a second resource,
    costs the fast path and the Decimal path each format), be valid UTF-8 and pass the server's validation."""
    import json

    from llm_otel.exporters.cost.records import span_to_row

    cases = [
        finished_span({**BASE, "gen_ai.usage.cost": 0.000123456789, "llm_otel.tag.tenant": 'a"c\\me'}),
        finished_span({**BASE, "gen_ai.usage.cost": 1.23e-7, "error.type": "Timeout"}, {"service.name": "b"}),
        finished_span({**BASE, "gen_ai.usage.cost": 0.0, "llm_otel.pricing.status": "unpriced"}, error=True),
        finished_span({**BASE, "gen_ai.usage.cost": 12.5, "gen_ai.response.model": "m\ud800 ü", "x": 1}),
        finished_span({**BASE, "llm_otel.record.id": "mine-1", "llm_otel.tag.t\ud800": "v\u2028"}),
    ]
    for span in cases:
        rec, row = span_to_record(span, "org"), span_to_row(span, "org")
        assert rec is not None and row is not None
        assert row[0] == rec["id"]
        assert json.loads(row[1]) == rec
        assert list(json.loads(row[1])) == list(RECORD_FIELDS)
        row[1].encode("utf-8")
        assert validate(json.loads(row[1])) is None
    assert span_to_row(finished_span({"http.method": "GET"})) is None


def test_a_span_built_by_hand_maps_like_an_sdk_span() -> None:
    """A ReadableSpan made directly (a plain dict of attributes, as another pipeline might hand over) maps
    to the same record as the SDK's own finished span with those attributes."""
    sdk_span = finished_span({**BASE, "gen_ai.usage.input_tokens": 7, "llm_otel.tag.tenant": "acme"})
    by_hand = ReadableSpan(
        name=sdk_span.name,
        context=sdk_span.context,
        attributes=dict(sdk_span.attributes or {}),
        resource=sdk_span.resource,
        start_time=sdk_span.start_time,
        end_time=sdk_span.end_time,
        instrumentation_scope=sdk_span.instrumentation_scope,
    )
    assert type(by_hand._attributes) is dict  # the other path of the attribute read
    assert span_to_record(by_hand) == span_to_record(sdk_span)
    assert span_to_record(by_hand)["attributes"] == {"tenant": "acme"}  # type: ignore[index]
