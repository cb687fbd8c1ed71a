"""``llm_otel.track()`` and ``llm_otel.record_usage()``: calls through clients llm-otel does not patch get
the same span, cost, metrics and cost record as an instrumented call."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from tests_support import run_child

import llm_otel
from llm_otel import guard, manual, pipeline
from llm_otel import semconv as sc
from llm_otel.exporters.cost.records import span_to_record

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
#: What an instrumented call and a tracked one must agree on (ids, times and server address aside).
SAME = (
    sc.OPERATION,
    sc.PROVIDER,
    sc.REQUEST_MODEL,
    sc.RESPONSE_MODEL,
    sc.RESPONSE_FINISH_REASONS,
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
    sc.USAGE_COST,
    sc.COST_INPUT,
    sc.COST_OUTPUT,
    sc.PRICING_STATUS,
    sc.PRICING_SOURCE,
    sc.REQUEST_TEMPERATURE,
)


@pytest.fixture
def tracked(telemetry: Any, spans: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """track() bound to the test's telemetry (as it is bound to instrument()'s in an application)."""
    monkeypatch.setattr(manual, "_fallback", telemetry)
    monkeypatch.setattr(pipeline, "_active", None)
    guard._logged_sites.clear()  # each test sees its own first warning
    return telemetry


def test_track_matches_an_instrumented_call(
    openai_instrumented: Any, tracked: Any, spans: Any, server: Any
) -> None:
    server.configure(cached_tokens=3, reasoning_tokens=2)
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)
    instrumented = spans.one()
    spans.clear()
    usage = result.usage
    with llm_otel.track("chat", provider="openai", model="gpt-4o-mini", temperature=0.2) as call:
        call.set_response(model=result.model, id=result.id, finish_reasons=[result.choices[0].finish_reason])
        call.set_usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=usage.prompt_tokens_details.cached_tokens,
            reasoning_tokens=usage.completion_tokens_details.reasoning_tokens,
        )
    mine = spans.one()
    assert mine.name == instrumented.name == "chat gpt-4o-mini"
    assert mine.kind is instrumented.kind
    for key in SAME:
        assert mine.attributes.get(key) == instrumented.attributes.get(key), key
    assert mine.attributes[sc.USAGE_COST] > 0
    record, expected = span_to_record(mine), span_to_record(instrumented)
    assert record is not None and expected is not None
    for key in ("id", "timestamp", "latency_ms", "trace_id", "span_id"):
        record.pop(key), expected.pop(key)
    assert record == expected


def test_track_forms_sync_async_decorator(tracked: Any, spans: Any) -> None:
    @llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5")
    def sync_call() -> str:
        current = llm_otel.current_call()
        assert current is not None
        current.set_usage(input_tokens=10, output_tokens=5)
        return "answer"

    @llm_otel.track("embeddings", provider="mistral_ai", model="mistral-embed")
    async def async_call() -> int:
        current = llm_otel.current_call()
        assert current is not None
        current.set_usage(input_tokens=7)
        return 42

    async def block() -> None:
        async with llm_otel.track("chat", provider="gcp.gemini", model="gemini-2.5-flash") as call:
            await asyncio.sleep(0)
            call.set_usage(input_tokens=3, output_tokens=4)

    assert sync_call() == "answer"
    assert sync_call() == "answer"  # each decorated call is its own span
    assert asyncio.run(async_call()) == 42
    asyncio.run(block())
    assert llm_otel.current_call() is None
    got = sorted(
        (s.attributes[sc.PROVIDER], s.attributes[sc.OPERATION], s.attributes.get(sc.USAGE_INPUT_TOKENS))
        for s in spans.genai()
    )
    assert got == [
        ("anthropic", "chat", 10),
        ("anthropic", "chat", 10),
        ("gcp.gemini", "chat", 3),
        ("mistral_ai", "embeddings", 7),
    ]


def test_stream_chunks_give_time_to_first_chunk(tracked: Any, spans: Any) -> None:
    with llm_otel.track("chat", provider="deepseek", model="deepseek-chat", stream=True) as call:
        for _ in range(5):
            call.chunk()
    assert call.chunks == 5
    attrs = spans.one().attributes
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0


def test_exception_ends_span_as_error_and_propagates(tracked: Any, spans: Any) -> None:
    class GatewayDown(RuntimeError):
        pass

    with (
        pytest.raises(GatewayDown, match="502"),
        llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5"),
    ):
        raise GatewayDown("502 from gateway")
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE].endswith("GatewayDown")
    assert [e.name for e in span.events] == ["exception"]


def test_span_is_current_inside_the_block(tracked: Any, spans: Any, server: Any) -> None:
    """A client span started inside the block (here: the user's own) nests under the GenAI span."""
    tracer = trace.get_tracer("user-http")
    body = {"model": "m", "messages": MESSAGES, "stream": False}
    with (
        llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5"),
        tracer.start_as_current_span("POST /v1/messages"),
    ):
        httpx.post(server.base_url + "/api/chat", json=body)
    by_name = {s.name: s for s in spans.all()}
    child, parent = by_name["POST /v1/messages"], by_name["chat claude-sonnet-4-5"]
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def test_track_around_and_inside_an_instrumented_call(
    openai_instrumented: Any, tracked: Any, spans: Any, server: Any
) -> None:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    with llm_otel.track("invoke_agent", provider="openai", model="planner"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5") as inner:
            inner.set_usage(input_tokens=1, output_tokens=1)
    by_name = {s.name: s for s in spans.genai()}
    outer = by_name["invoke_agent planner"]
    for name in ("chat gpt-4o-mini", "chat claude-sonnet-4-5"):
        assert by_name[name].parent.span_id == outer.context.span_id


@pytest.mark.parametrize(
    ("usage", "kept"),
    [
        ({"input_tokens": -1, "output_tokens": 5}, {sc.USAGE_OUTPUT_TOKENS: 5}),
        ({"input_tokens": 2.5, "output_tokens": "7"}, {}),
        ({"input_tokens": True, "output_tokens": 2**60}, {}),
        ({"input_tokens": 4.0, "output_tokens": 3}, {sc.USAGE_INPUT_TOKENS: 4, sc.USAGE_OUTPUT_TOKENS: 3}),
    ],
)
def test_wrong_values_are_left_off(
    tracked: Any, spans: Any, caplog: pytest.LogCaptureFixture, usage: dict[str, Any], kept: dict[str, int]
) -> None:
    with llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5", temperature="hot") as call:
        call.set_usage(**usage)
        call.set_attributes({"app.request": {"not": "primitive"}, "app.route": "/ask"})
    attrs = spans.one().attributes
    tokens = {k: v for k, v in attrs.items() if k in (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS)}
    assert tokens == kept
    assert sc.REQUEST_TEMPERATURE not in attrs
    assert attrs["app.route"] == "/ask" and "app.request" not in attrs
    assert "temperature" in caplog.text


def test_empty_model_and_a_repeated_warning_are_logged_once(
    tracked: Any, spans: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        with llm_otel.track("chat", provider="anthropic", model="  "):
            pass
    assert [s.name for s in spans.genai()] == ["chat"] * 3
    assert all(sc.REQUEST_MODEL not in s.attributes for s in spans.genai())
    assert caplog.text.count("model=") == 1


def test_record_usage_with_explicit_times_and_tags(tracked: Any, spans: Any) -> None:
    end = datetime(2026, 11, 1, 12, 0, 5, 123457, tzinfo=timezone.utc)  # microseconds survive exactly
    llm_otel.record_usage(
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=1000,
        output_tokens=200,
        start_time=end - timedelta(seconds=5),
        end_time=end,
        tags={"tenant": "acme", "not a name": "x"},
        id="batch-7:line-12",
    )
    span = spans.one()
    assert span.end_time - span.start_time == 5_000_000_000
    assert span.end_time == 1_793_534_405_123_457_000
    attrs = span.attributes
    assert attrs[sc.PRICING_STATUS] == "priced" and attrs[sc.USAGE_COST] > 0
    assert attrs[sc.TAG_PREFIX + "tenant"] == "acme"
    record = span_to_record(span)
    assert record is not None
    assert record["id"] == "batch-7:line-12"
    assert record["attributes"] == {"tenant": "acme"}
    assert record["latency_ms"] == 5000.0


CHILD = """
    import json, os, llm_otel
    from llm_otel.cost_server import make_server
    handle = llm_otel.instrument(prometheus_port=0, instrumentors=(), cost_api_url=os.environ["COST_URL"],
                                 cost_api_key="secret", spool_path=os.environ["SPOOL"])
    for _ in range(2):  # the same usage submitted twice: one record
        llm_otel.record_usage(provider="anthropic", model="claude-sonnet-4-5", input_tokens=100,
                              output_tokens=10, id="gateway-report-1")
    with llm_otel.track("chat", provider="openai", model="gpt-4o-mini") as call:
        call.set_usage(input_tokens=5, output_tokens=5)
    assert handle.flush(10_000)
    from llm_otel.metrics_registry import REGISTRY
    total = sum(s.value for m in REGISTRY.collect() if m.name == "llm_otel_requests"
                for s in m.samples if s.name == "llm_otel_requests_total")
    print(json.dumps({"requests": total}))
"""


def test_record_usage_delivered_once_and_counted_with_sampler_off(tmp_path: Any) -> None:
    from llm_otel.cost_server import make_server

    server = make_server(str(tmp_path / "costs.sqlite"), "127.0.0.1", 0, "secret", 8 << 20, True)
    import threading

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        env = {
            "OTEL_TRACES_SAMPLER": "always_off",
            "COST_URL": server.url,
            "SPOOL": str(tmp_path / "spool.sqlite"),
        }
        out = run_child(CHILD, env)
        assert out["requests"] == 3  # sampled out, still metered
        assert server.store.count() == 2  # the repeated id once, plus the tracked call
    finally:
        server.shutdown()
        server.server_close()
        server.store.close()
