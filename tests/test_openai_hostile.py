"""One odd LLM response must not break the pipeline (issue 9): hostile values from a real OpenAI client call,
followed from the span through Prometheus (a real scrape), the cost API (reference server) and OTLP encoding.

Responses are given to the fake server with its public ``respond_with``; spans come from the real client.
"""

from __future__ import annotations

import json
import threading
import time
import wsgiref.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import llm_otel
from llm_otel import guard, values
from llm_otel import semconv as sc
from llm_otel.cost_server import make_server
from llm_otel.exporters.cost import build_cost_processor
from llm_otel.exporters.cost.spool import count_records, dead_letter_path
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor, make_wsgi_app
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.metrics_registry import REGISTRY

MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
KEY = "hostile-key"
BAD = "\ud800"  # a lone surrogate: valid as a JSON escape, not encodable as UTF-8


def chat_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-odd",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    body.update(over)
    return body


def errors(site: str) -> float:
    return REGISTRY.get_sample_value("llm_otel_instrumentation_errors_total", {"site": site}) or 0.0


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Pipeline:
    """Spans of the instrumented client go to: memory, a Prometheus processor, the cost API (reference
    server with its SQLite store, through the exporter's spool)."""

    def __init__(self, tmp_path: Path) -> None:
        self.memory = InMemorySpanExporter()
        self.registry = CollectorRegistry()
        self.cost_server = make_server(str(tmp_path / "api.sqlite"), port=0, api_key=KEY)
        threading.Thread(
            target=self.cost_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.spool = tmp_path / "spool.sqlite"
        self.cost = build_cost_processor(
            self.cost_server.url, KEY, spool_path=self.spool, flush_interval=0.02, retry_initial=0.05
        )
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "hostile"}), shutdown_on_exit=False
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.provider.add_span_processor(
            PrometheusMetricsProcessor(registry=self.registry, label_tags=("tenant",))
        )
        self.provider.add_span_processor(self.cost)

    def spans(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def scrape(self) -> tuple[str, str]:
        """GET /metrics through the WSGI app: (status line, body)."""
        app = make_wsgi_app(self.registry)
        environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""}
        wsgiref.util.setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h: status.append(s)))
        return status[0], body.decode("utf-8")

    def delivered(self) -> int:
        return self.cost_server.store.count()

    def stop(self) -> None:
        self.cost.shutdown()
        self.cost_server.shutdown()
        self.cost_server.server_close()
        self.cost_server.store.close()


@pytest.fixture
def pipeline(openai_instrumented: Any, tmp_path: Path) -> Iterator[Pipeline]:
    rig = Pipeline(tmp_path)
    openai_instrumented.tracer = make_tracer(rig.provider)
    yield rig
    rig.stop()


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def assert_encodes(spans: list[ReadableSpan]) -> None:
    """The OTLP protobuf encoder takes the whole batch (a surrogate in a span name fails all of it)."""
    assert encode_spans(spans).SerializeToString()


# -- 1. strings that cannot be encoded ---------------------------------------------------------------------


def test_surrogates_in_response_model_and_tag_break_nothing(
    pipeline: Pipeline, server: Any, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond_with(body=chat_body(model=BAD + "x", id="chatcmpl-" + BAD))
    with llm_otel.attributes(tenant=BAD):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = pipeline.one()
    attrs = span.attributes or {}
    assert attrs[sc.RESPONSE_MODEL] == "\ufffdx" and attrs[sc.RESPONSE_ID] == "chatcmpl-\ufffd"
    assert attrs[sc.TAG_PREFIX + "tenant"] == "\ufffd"
    assert attrs[sc.USAGE_INPUT_TOKENS] == 12 and attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)

    status, text = pipeline.scrape()
    assert status.startswith("200"), status
    assert 'tenant="\ufffd"' in text and 'model="\ufffdx"' in text
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # a normal call after it
    assert pipeline.scrape()[0].startswith("200")

    assert wait_for(lambda: pipeline.delivered() == 2), pipeline.delivered()
    assert wait_for(lambda: count_records(pipeline.spool) == 0)  # acknowledged: nothing stuck
    assert not dead_letter_path(pipeline.spool).exists()

    caplog.clear()
    assert_encodes(pipeline.spans())
    assert "Failed to encode" not in caplog.text  # no attribute was dropped by the encoder either


def test_surrogate_in_request_model_and_params(
    pipeline: Pipeline, server: Any, client: openai.OpenAI
) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the client cannot encode the body: whatever it raises
        client.chat.completions.create(
            model="gpt-4o-" + BAD, messages=MESSAGES, stop=["a" + BAD], service_tier=BAD
        )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = pipeline.spans()
    assert len(spans) == 2
    bad = spans[0]
    assert bad.name == "chat gpt-4o-\ufffd"
    attrs = bad.attributes or {}
    assert attrs[sc.REQUEST_MODEL] == "gpt-4o-\ufffd"
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("a\ufffd",)
    assert attrs[sc.OPENAI_REQUEST_SERVICE_TIER] == "\ufffd"
    assert_encodes(spans)
    assert pipeline.scrape()[0].startswith("200")
    assert wait_for(lambda: pipeline.delivered() == 2), pipeline.delivered()


def test_surrogates_in_names_of_a_call_through_the_span_lifecycle(telemetry: Any, spans: Any) -> None:
    """Operation and provider come from the user for ``track()``: they name the span too."""
    from llm_otel.instrumentors.call import GenAICall, Outcome

    call = GenAICall(telemetry, "chat" + BAD, "acme" + BAD, "m" + BAD, {"llm_otel.tag.t": BAD})
    outcome = Outcome()
    outcome.finish_reasons = ["stop" + BAD, None]  # type: ignore[list-item]
    call.end_ok(outcome)
    failed = GenAICall(telemetry, "chat", "openai", "m", {})
    failed.end_error(ValueError(f"model {BAD!s} does not exist"))
    ok, bad = spans.genai()
    assert ok.name == "chat\ufffd m\ufffd"
    attrs = ok.attributes or {}
    assert attrs[sc.PROVIDER] == "acme\ufffd" and attrs["llm_otel.tag.t"] == "\ufffd"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop\ufffd",)
    assert bad.status.description == "model \ufffd does not exist"
    (event,) = bad.events
    assert (event.attributes or {})["exception.message"] == "model \ufffd does not exist"
    assert_encodes([ok, bad])


def test_valid_non_ascii_text_is_unchanged(pipeline: Pipeline, server: Any, client: openai.OpenAI) -> None:
    server.respond_with(body=chat_body(model="modèle-😀"))
    with llm_otel.attributes(tenant="zürich"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = pipeline.one().attributes or {}
    assert attrs[sc.RESPONSE_MODEL] == "modèle-😀" and attrs[sc.TAG_PREFIX + "tenant"] == "zürich"


# -- 2. absurd numbers -------------------------------------------------------------------------------------


def test_absurd_token_counts_are_left_off_and_counted(
    pipeline: Pipeline, server: Any, client: openai.OpenAI
) -> None:
    before = errors("span.usage")
    usage = {"prompt_tokens": 9223372036854775808, "completion_tokens": 1e308, "total_tokens": 1}
    server.respond_with(body=chat_body(usage=usage))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = pipeline.one().attributes or {}
    assert sc.USAGE_INPUT_TOKENS not in attrs and sc.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[sc.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18" and attrs[sc.RESPONSE_ID] == "chatcmpl-odd"
    assert errors("span.usage") == before + 2
    cost = attrs.get(sc.USAGE_COST)
    assert cost is None or 0 <= cost < 1

    status, text = pipeline.scrape()
    assert status.startswith("200")
    for line in text.splitlines():
        if line.startswith(("llm_otel_cost_usd_total", "llm_otel_tokens_total")):
            assert float(line.rsplit(" ", 1)[1]) < 1e6, line
    assert wait_for(lambda: pipeline.delivered() == 1), pipeline.delivered()
    assert not dead_letter_path(pipeline.spool).exists()


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": 12.5, "completion_tokens": 3},
        {"prompt_tokens": 2**53 + 1, "completion_tokens": 3},
    ],
)
def test_out_of_range_count_drops_only_that_count(
    pipeline: Pipeline, server: Any, client: openai.OpenAI, usage: dict[str, Any]
) -> None:
    server.respond_with(body=chat_body(usage={**usage, "total_tokens": 3}))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = pipeline.one().attributes or {}
    assert sc.USAGE_INPUT_TOKENS not in attrs and attrs[sc.USAGE_OUTPUT_TOKENS] == 3
    assert attrs[sc.PRICING_STATUS] == "priced" and 0 < attrs[sc.USAGE_COST] < 1


def test_integral_float_count_is_taken(pipeline: Pipeline, server: Any, client: openai.OpenAI) -> None:
    server.respond_with(body=chat_body(usage={"prompt_tokens": 12.0, "completion_tokens": 3}))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = pipeline.one().attributes or {}
    assert attrs[sc.USAGE_INPUT_TOKENS] == 12 and attrs[sc.USAGE_INPUT_TOKENS].__class__ is int


# -- 3. one odd field must not lose the rest ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "lost"),
    [
        (
            {"usage": {"prompt_tokens": "ten", "completion_tokens": 3, "total_tokens": 15}},
            sc.USAGE_INPUT_TOKENS,
        ),
        ({"model": 5}, sc.RESPONSE_MODEL),
        ({"id": ["x"]}, sc.RESPONSE_ID),
        (
            {
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": 3,
                    "total_tokens": 15,
                    "prompt_tokens_details": {"cached_tokens": "four"},
                }
            },
            sc.USAGE_CACHE_READ_INPUT_TOKENS,
        ),
        ({"service_tier": {"odd": 1}, "system_fingerprint": 7}, None),
    ],
)
def test_one_odd_field_keeps_every_other_attribute(
    pipeline: Pipeline, server: Any, client: openai.OpenAI, over: dict[str, Any], lost: str | None
) -> None:
    server.respond_with(body=chat_body(**over))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = dict(pipeline.one().attributes or {})
    expected = {
        sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.RESPONSE_ID: "chatcmpl-odd",
        sc.RESPONSE_FINISH_REASONS: ("stop",),
        sc.USAGE_INPUT_TOKENS: 12,
        sc.USAGE_OUTPUT_TOKENS: 3,
    }
    for name, value in expected.items():
        if name == lost:
            assert name not in attrs
        else:
            assert attrs.get(name) == value, name
    if lost != sc.USAGE_INPUT_TOKENS:
        assert attrs[sc.PRICING_STATUS] == "priced" and attrs[sc.USAGE_COST] > 0
    assert lost is None or lost not in attrs
    assert_encodes(pipeline.spans())


def stream_chunk(**over: Any) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}],
    }
    chunk.update(over)
    return chunk


@pytest.mark.parametrize("user_asked_usage", [True, False])
def test_null_choices_on_the_usage_chunk_keeps_usage(
    pipeline: Pipeline, server: Any, client: openai.OpenAI, user_asked_usage: bool
) -> None:
    server.respond_with(
        chunks=[
            stream_chunk(),
            stream_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            stream_chunk(choices=None, usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}),
        ]
    )
    options: Any = {"stream_options": {"include_usage": True}} if user_asked_usage else {}
    seen = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **options)
    )
    assert len(seen) == (3 if user_asked_usage else 2)  # the injected usage chunk stays hidden
    attrs = pipeline.one().attributes or {}
    assert attrs[sc.USAGE_INPUT_TOKENS] == 7 and attrs[sc.USAGE_OUTPUT_TOKENS] == 2
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",) and attrs[sc.RESPONSE_ID] == "chatcmpl-s"


def test_stream_with_odd_chunk_fields_keeps_usage(
    pipeline: Pipeline, server: Any, client: openai.OpenAI
) -> None:
    server.respond_with(
        chunks=[
            stream_chunk(model=BAD),
            stream_chunk(choices=[{"index": None, "delta": {}, "finish_reason": "stop"}]),
            stream_chunk(
                choices=[],
                usage={"prompt_tokens": 7, "completion_tokens": "two", "total_tokens": 9},
            ),
        ]
    )
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    attrs = pipeline.one().attributes or {}
    assert attrs[sc.USAGE_INPUT_TOKENS] == 7 and sc.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[sc.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert_encodes(pipeline.spans())


def test_surrogates_in_captured_content(
    pipeline: Pipeline, openai_instrumented: Any, server: Any, client: openai.OpenAI
) -> None:
    from llm_otel.content import CaptureMode

    openai_instrumented.capture = CaptureMode.SPAN_AND_EVENT
    server.respond_with(
        body=chat_body(
            choices=[{"index": 0, "message": {"role": "assistant", "content": "a" + BAD}, "finish_reason": 3}]
        )
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(Exception):  # noqa: B017 - the client cannot encode this request body
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q" + BAD}])
    answered, refused = pipeline.spans()
    attrs = answered.attributes or {}
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "a\ufffd"
    assert attrs[sc.USAGE_INPUT_TOKENS] == 12 and attrs[sc.RESPONSE_FINISH_REASONS] == ("3",)
    attrs = refused.attributes or {}
    assert json.loads(attrs[sc.INPUT_MESSAGES])[0]["parts"][0]["content"] == "q\ufffd"
    event = [e for e in refused.events if e.name == sc.EVENT_INFERENCE_DETAILS]
    assert not event or "\ud800" not in str(dict(event[0].attributes or {}))
    assert_encodes(pipeline.spans())
    assert wait_for(lambda: pipeline.delivered() == 2), pipeline.delivered()


def test_count_and_text_checks() -> None:
    """What the span takes as a token count or a text, beyond what a client lets through."""
    assert values.count(12, "test.values", "n") == 12 and values.count(12.0, "test.values", "n") == 12
    assert values.count(2**53, "test.values", "n") == 2**53
    for odd in (True, False, -1, 12.5, 2**53 + 1, 1e308, float("nan"), float("inf"), "12", None, [1]):
        assert values.count(odd, "test.values", "n") is None, odd
    assert values.text("m", "test.values", "t") == "m" and values.text(5, "test.values", "t") is None
    assert values.clean_text("a\ud800b") == "a\ufffdb"
    assert values.clean_text("\ud83d\ude00") == "\U0001f600"  # a valid pair becomes its character
    assert values.clean_text("zürich") == "zürich" and values.clean_text("x\udfff\ud800") == "x\ufffd\ufffd"
    plain = "ascii"
    assert values.clean_text(plain) is plain


def test_guard_reject_logs_once_per_site(caplog: pytest.LogCaptureFixture) -> None:
    before = errors("test.reject")
    guard.reject("test.reject", "odd value")
    guard.reject("test.reject", "odd value")
    assert errors("test.reject") == before + 2
    assert caplog.text.count("test.reject") == 1
