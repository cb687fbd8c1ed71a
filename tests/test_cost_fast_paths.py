"""The cheap paths of cost export decide exactly like the thorough ones they stand in front of.

The server's ``_fast`` check accepts a subset of what the full validation accepts, with the same parsed
time and cost; the exporter's row is the record, field by field, for spans in the form llm-otel writes and
for spans in any other form (which take the defensive readers)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_cost_records import BASE, finished_span

from llm_otel import cost_contract as c
from llm_otel.cost_server.validation import _fast, _validate, checked
from llm_otel.exporters.cost.records import span_to_row

GOOD: dict[str, Any] = {
    "id": "0123456789abcdef0123456789abcdef-0123456789abcdef",
    "timestamp": "2026-11-28T11:28:10.273759Z",
    "organization_id": "default", "service_name": "svc", "provider": "openai",
    "model_id": "gpt-4o-mini", "operation": "chat",
    "input_tokens": 812, "output_tokens": 143, "total_tokens": 955, "cached_input_tokens": 512,
    "reasoning_tokens": 0, "cost_usd": "0.0002076", "latency_ms": 12.5, "status": "ok", "error_type": None,
    "trace_id": "0123456789abcdef0123456789abcdef", "span_id": "0123456789abcdef",
    "attributes": {"tenant": "acme"},
}  # fmt: skip

VARIANTS: list[tuple[str, Any]] = [
    ("timestamp", "2026-11-28T11:28:10.273759+00:00"), ("timestamp", "2026-11-28T11:28:10.2+0100Z"),
    ("timestamp", "2026-11-28 11:28:10.273759Z"), ("timestamp", "2026-13-28T11:28:10.273759Z"),
    ("timestamp", "1900-01-01T00:00:00.000000Z"), ("timestamp", "9999-12-31T23:59:59.999999Z"),
    ("timestamp", " 2026-11-28T11:28:10.27375Z"), ("timestamp", 5),
    ("cost_usd", None), ("cost_usd", "0"), ("cost_usd", "0.0"), ("cost_usd", "0.00020760"),
    ("cost_usd", "12.5"), ("cost_usd", "0." + "1" * 18), ("cost_usd", "0." + "1" * 19),
    ("cost_usd", "0.1e-3"), ("cost_usd", "0.²"), ("cost_usd", 0.1), ("cost_usd", "-0.1"),
    ("input_tokens", True), ("input_tokens", -1), ("input_tokens", c.MAX_TOKENS),
    ("input_tokens", c.MAX_TOKENS + 1), ("input_tokens", 1.0),
    ("model_id", ""), ("model_id", "m\ud800"), ("model_id", "mü"), ("model_id", "x" * (c.MAX_TEXT_CHARS + 1)),
    ("latency_ms", True), ("latency_ms", float("nan")), ("latency_ms", -1), ("latency_ms", 0),
    ("status", "error"), ("status", "bad"), ("error_type", "Timeout"), ("error_type", ""),
    ("error_type", 3), ("trace_id", "0123456789ABCDEF0123456789abcdef"), ("span_id", "xyz"),
    ("attributes", None), ("attributes", {}), ("attributes", {"k": 1}), ("attributes", {"k": "v\ud800"}),
    ("attributes", {f"k{i}": "v" for i in range(c.MAX_ATTRIBUTES + 1)}), ("id", ""), ("id", 7),
]  # fmt: skip


def _cases() -> list[Any]:
    cases: list[Any] = [copy.deepcopy(GOOD), [GOOD], None]
    for field, value in VARIANTS:
        rec = copy.deepcopy(GOOD)
        rec[field] = value
        cases.append(rec)
        if field == "status":
            cases.append({**rec, "error_type": "Timeout"})
    gone = copy.deepcopy(GOOD)
    del gone["attributes"]
    cases.append(gone)
    return cases


@pytest.mark.parametrize("record", _cases())
def test_fast_validation_is_a_subset_with_the_same_result(record: Any) -> None:
    try:
        full: Any = _validate(record)
    except ValueError as exc:
        full = str(exc)
    fast = _fast(record)
    if fast is not None:
        assert not isinstance(full, str), f"fast path accepted an invalid record: {full}"
        assert fast == full and str(fast[1]) == str(full[1])
    assert checked(record) == full


def test_the_common_record_takes_the_fast_path() -> None:
    assert _fast(copy.deepcopy(GOOD)) is not None
    with_error = {**GOOD, "status": "error", "error_type": "RateLimitError", "cost_usd": None}
    assert _fast(with_error) is not None


def test_rows_of_spans_in_any_form_pass_the_server_and_round_trip() -> None:
    """A span whose attributes have the types llm-otel writes, and spans with other types (floats,
    bools, out-of-range counts, non-string tags and error types, surrogates), all map to a record the
    server's validation accepts; the common one also takes the server's fast path."""
    common = finished_span(
        {**BASE, "gen_ai.usage.input_tokens": 5, "gen_ai.usage.cost": 0.25, "llm_otel.tag.t": "v"}
    )
    row = span_to_row(common)
    assert row is not None
    assert _fast(json.loads(row[1])) is not None
    odd = [
        {**BASE, "gen_ai.usage.input_tokens": 5.0, "gen_ai.usage.output_tokens": True},
        {**BASE, "gen_ai.provider.name": 3, "gen_ai.system": "azure", "gen_ai.response.model": ""},
        {**BASE, "error.type": 404, "llm_otel.tag.n": 12, "gen_ai.usage.cost": 5},
        {**BASE, "llm_otel.record.id": "r\ud800", "gen_ai.usage.cost": float("inf")},
        {**BASE, "gen_ai.usage.cost": 1e-9, "gen_ai.usage.reasoning.output_tokens": 2**70},
    ]
    for attrs in odd:
        row = span_to_row(finished_span(attrs))
        assert row is not None
        rec = json.loads(row[1])
        assert _validate(rec) is not None and row[0] == rec["id"]
        row[1].encode("utf-8")
    rec = json.loads(span_to_row(finished_span(odd[0]))[1])  # type: ignore[index]
    assert (rec["input_tokens"], rec["output_tokens"]) == (5, 0)
    rec = json.loads(span_to_row(finished_span(odd[1]))[1])  # type: ignore[index]
    assert (rec["provider"], rec["model_id"]) == ("azure", "gpt-4o")
    rec = json.loads(span_to_row(finished_span(odd[2]))[1])  # type: ignore[index]
    assert rec["error_type"] == "404" and rec["attributes"] == {"n": "12"} and rec["cost_usd"] == "5"
    rec = json.loads(span_to_row(finished_span(odd[3]))[1])  # type: ignore[index]
    assert rec["id"] == "r\ufffd" and rec["cost_usd"] is None
    rec = json.loads(span_to_row(finished_span(odd[4]))[1])  # type: ignore[index]
    assert rec["cost_usd"] == "0.000000001" and rec["reasoning_tokens"] == 0
