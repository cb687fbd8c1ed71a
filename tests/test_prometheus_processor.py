"""PrometheusMetricsProcessor: spans from a real SDK TracerProvider in, the /metrics text out."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_fixture import Samples, scrape

from llm_otel import guard
from llm_otel import semconv as sc
from llm_otel.errors import ConfigError
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor, start_metrics_server
from llm_otel.exporters.prometheus.fastpath import counter_writer, histogram_writer

T0 = 1_700_000_000_000_000_000  # span start, ns
SERVICE = "checkout"
DUR = "gen_ai_client_operation_duration_seconds"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
EMBED_MODEL = "text-embedding-3-small"
OPENAI_CHAT = {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "gpt-4o-mini"}
#: GenAI-convention labels of a successful OPENAI_CHAT call, and of one that got no response.
OK = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "openai",
    "gen_ai_request_model": "gpt-4o-mini",
    "gen_ai_response_model": RESPONSE_MODEL,
}
NO_RESPONSE = {**OK, "gen_ai_response_model": ""}


class Harness:
    """A TracerProvider with only our processor, and its registry served over HTTP."""

    def __init__(self, **processor_kw: Any) -> None:
        self.registry = CollectorRegistry()
        self.processor = PrometheusMetricsProcessor(registry=self.registry, **processor_kw)
        self.provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer(sc.SCOPE_NAME)
        self.server = start_metrics_server("127.0.0.1", 0, registry=self.registry)

    def call(
        self,
        attributes: dict[str, Any],
        end: dict[str, Any] | None = None,
        seconds: float = 0.1,
        error: str | None = None,
    ) -> None:
        """One finished GenAI span lasting exactly ``seconds``."""
        span = self.tracer.start_span(
            f"chat {attributes.get(sc.REQUEST_MODEL)}", attributes=attributes, start_time=T0
        )
        if end:
            span.set_attributes(end)
        if error:
            span.set_attribute(sc.ERROR_TYPE, error)
            span.set_status(StatusCode.ERROR, "boom")
        span.end(end_time=T0 + round(seconds * 1e9))

    def scrape(self) -> Samples:
        return scrape(f"http://127.0.0.1:{self.server.port}/metrics")

    def close(self) -> None:
        self.server.stop()
        self.provider.shutdown()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(label_tags=("tenant",), latest_semconv=False)
    yield h
    h.close()


def usage(inp: int, out: int, cost: float | None, **extra: Any) -> dict[str, Any]:
    end: dict[str, Any] = {sc.RESPONSE_MODEL: RESPONSE_MODEL, sc.USAGE_INPUT_TOKENS: inp}
    end[sc.USAGE_OUTPUT_TOKENS] = out
    if cost is not None:
        end[sc.USAGE_COST] = cost
        end[sc.PRICING_STATUS] = "priced"
    end.update(extra)
    return end


def test_counts_sums_buckets_and_errors(harness: Harness) -> None:
    harness.call(OPENAI_CHAT, usage(100, 10, 0.25, **{sc.USAGE_CACHE_READ_INPUT_TOKENS: 64}), seconds=0.05)
    harness.call(OPENAI_CHAT, usage(1000, 20, 0.5, **{sc.USAGE_REASONING_OUTPUT_TOKENS: 8}), seconds=0.5)
    harness.call(OPENAI_CHAT, usage(5000, 30, 0.125), seconds=3.0)
    harness.call(OPENAI_CHAT, seconds=0.32, error="openai.RateLimitError")
    m = harness.scrape()

    resp = {"provider": "openai", "model": RESPONSE_MODEL}
    assert m.value("llm_otel_requests_total", **resp, operation="chat", status="ok") == 3
    # The failed call got no response: its model label is the requested model.
    asked = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat"}
    assert m.value("llm_otel_requests_total", **asked, status="error") == 1
    assert m.value("llm_otel_tokens_total", **resp, type="input") == 6100
    assert m.value("llm_otel_tokens_total", **resp, type="output") == 60
    assert m.value("llm_otel_tokens_total", **resp, type="cache_read") == 64
    assert m.value("llm_otel_tokens_total", **resp, type="reasoning") == 8
    assert m.series("llm_otel_tokens_total", type="cache_write") == []
    assert m.value("llm_otel_cost_usd_total", **resp, service=SERVICE) == 0.875
    assert m.series("llm_otel_unpriced_requests_total") == []
    assert m.value("llm_otel_active_requests", provider="openai", operation="chat") == 0

    assert m.value(DUR + "_count", **OK) == 3
    assert m.value(DUR + "_sum", **OK) == pytest.approx(3.55, abs=1e-9)
    b = m.buckets(DUR, **OK)
    assert [b[0.04], b[0.08], b[0.32], b[0.64], b[2.56], b[5.12], b[math.inf]] == [0, 1, 1, 2, 2, 3, 3]
    failed = m.buckets(DUR, **NO_RESPONSE, error_type="openai.RateLimitError")
    assert (failed[0.16], failed[0.32]) == (0, 1)  # a value on a bound goes in that bucket

    t = m.buckets("gen_ai_client_token_usage", **OK, gen_ai_token_type="input")
    assert [t[64], t[256], t[1024], t[4096], t[16384]] == [0, 1, 2, 2, 3]
    assert m.value("gen_ai_client_token_usage_sum", **OK, gen_ai_token_type="output") == 60
    assert m.series("gen_ai_client_operation_time_to_first_chunk_seconds_count") == []


def test_stream_time_to_first_chunk_and_unpriced(harness: Harness) -> None:
    stream = {**OPENAI_CHAT, sc.REQUEST_STREAM: True}
    harness.call(stream, usage(10, 5, 0.001, **{sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.3}), seconds=1.0)
    ollama = {sc.OPERATION: "chat", sc.PROVIDER: "ollama", sc.REQUEST_MODEL: "mystery:7b"}
    harness.call(ollama, {sc.USAGE_INPUT_TOKENS: 7, sc.PRICING_STATUS: "unpriced"})
    harness.call(ollama, {sc.USAGE_INPUT_TOKENS: 7, sc.PRICING_STATUS: "unpriced"})
    m = harness.scrape()

    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds"
    assert m.value(ttfc + "_count", **OK) == 1
    assert (m.buckets(ttfc, **OK)[0.16], m.buckets(ttfc, **OK)[0.32]) == (0, 1)
    assert m.value("llm_otel_unpriced_requests_total", provider="ollama", model="mystery:7b") == 2
    assert m.series("llm_otel_cost_usd_total", provider="ollama") == []
    ollama_labels = {"provider": "ollama", "model": "mystery:7b", "operation": "chat"}
    assert m.value("llm_otel_requests_total", **ollama_labels, status="ok") == 2


def test_in_flight_gauge_goes_up_and_back_to_zero(harness: Harness) -> None:
    first = harness.tracer.start_span("chat", attributes=OPENAI_CHAT)
    second = harness.tracer.start_span("chat", attributes=OPENAI_CHAT)
    assert harness.scrape().value("llm_otel_active_requests", provider="openai", operation="chat") == 2
    first.end()
    assert harness.scrape().value("llm_otel_active_requests", provider="openai", operation="chat") == 1
    second.set_status(StatusCode.ERROR)
    second.end()
    m = harness.scrape()
    assert m.value("llm_otel_active_requests", provider="openai", operation="chat") == 0
    # status ERROR without error.type: the conventions' fallback value.
    assert m.value(DUR + "_count", gen_ai_operation_name="chat", gen_ai_provider_name="openai",
                   gen_ai_request_model="gpt-4o-mini", error_type="_OTHER") == 1  # fmt: skip


def test_label_cardinality_is_capped() -> None:
    h = Harness(max_models=50, latest_semconv=False)
    try:
        for i in range(10_000):
            h.call({sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: f"model-{i}"})
        h.processor.drain()  # fold the 10,000 first-seen combinations here, not inside the scrape's timeout
        m = h.scrape()
    finally:
        h.close()
    models = {lab["model"]: v for lab, v in m.series("llm_otel_requests_total")}
    assert len(models) == 51
    assert models["other"] == 10_000 - 50
    assert sum(models.values()) == 10_000
    assert len({lab["gen_ai_request_model"] for lab, _ in m.series(DUR + "_count")}) == 51
    assert m.value("llm_otel_active_requests", provider="openai", operation="chat") == 0


def test_allow_listed_tag_becomes_a_label(harness: Harness) -> None:
    tags = {sc.TAG_PREFIX + "tenant": "acme", sc.TAG_PREFIX + "user": "u-123"}
    harness.call({**OPENAI_CHAT, **tags}, usage(1, 1, 0.5))
    harness.call(OPENAI_CHAT, usage(1, 1, 0.25))
    m = harness.scrape()
    cost = {"provider": "openai", "model": RESPONSE_MODEL, "service": SERVICE}
    assert m.value("llm_otel_cost_usd_total", **cost, tenant="acme") == 0.5
    assert m.value("llm_otel_cost_usd_total", **cost) == 0.25
    requests = {"provider": "openai", "model": RESPONSE_MODEL, "operation": "chat", "status": "ok"}
    assert m.value("llm_otel_requests_total", **requests, tenant="acme") == 1
    assert m.value("llm_otel_requests_total", **requests) == 1
    assert all("tenant" not in lab for lab, _ in m.series("llm_otel_tokens_total"))
    assert all("tenant" not in lab for lab, _ in m.series(DUR + "_count"))
    assert "user" not in m.text and "u-123" not in m.text  # not allow-listed: never a label


def test_tags_are_not_labels_unless_allow_listed() -> None:
    h = Harness(latest_semconv=False)
    try:
        h.call({**OPENAI_CHAT, sc.TAG_PREFIX + "tenant": "acme"}, usage(1, 1, 0.5))
        m = h.scrape()
    finally:
        h.close()
    assert "acme" not in m.text
    assert m.value("llm_otel_cost_usd_total", provider="openai", model=RESPONSE_MODEL, service=SERVICE) == 0.5


def test_odd_attribute_values_never_crash(harness: Harness) -> None:
    errors_before = _guard_errors()
    odd = {**OPENAI_CHAT, sc.REQUEST_MODEL: ["a", "b"], sc.TAG_PREFIX + "tenant": ["x", "y"]}
    harness.call(odd, {sc.USAGE_INPUT_TOKENS: "12", sc.USAGE_OUTPUT_TOKENS: -3, sc.USAGE_COST: True})
    # A span not made by the SDK: plain dict attributes, with values the SDK would have refused.
    weird = ReadableSpan(
        name="chat",
        attributes={
            **OPENAI_CHAT,
            sc.REQUEST_MODEL: {"no": "dict"},
            sc.RESPONSE_MODEL: None,
            sc.TAG_PREFIX + "tenant": ["t"],
            sc.USAGE_INPUT_TOKENS: 5,
        },
        resource=Resource.create({"service.name": ["not", "a", "string"]}),
        instrumentation_scope=InstrumentationScope(sc.SCOPE_NAME),
        start_time=T0,
        end_time=T0 + 10**9,
    )
    harness.processor.on_start(weird)  # type: ignore[arg-type]
    harness.processor.on_end(weird)
    harness.processor.on_end(weird)  # the unhashable key stays on the slow path
    m = harness.scrape()
    assert _guard_errors() == errors_before
    ok = {"provider": "openai", "operation": "chat", "status": "ok"}
    assert m.value("llm_otel_requests_total", **ok, model="a,b", tenant="x,y") == 1
    assert m.value("llm_otel_requests_total", **ok, model="other", tenant="t") == 2
    assert m.value("llm_otel_tokens_total", provider="openai", model="other", type="input") == 10
    assert m.series("llm_otel_tokens_total", model="a,b") == []  # "12", -3: not token counts
    assert m.series("llm_otel_cost_usd_total") == []  # True is not a cost


def test_other_scopes_are_ignored(harness: Harness) -> None:
    harness.provider.get_tracer("some.http.client").start_span("GET", attributes=OPENAI_CHAT).end()
    m = harness.scrape()
    assert m.series("llm_otel_requests_total") == []
    assert m.series("llm_otel_active_requests") == []


def test_internal_failure_goes_to_guard(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(harness.processor, "_record", broken)
    monkeypatch.setattr(harness.processor, "_active", None)  # on_start's dict lookup now raises
    before_end, before_start = _guard_errors("metrics.fold_end"), _guard_errors("metrics.fold_start")
    harness.call(OPENAI_CHAT, usage(1, 1, 0.1))  # must not raise (the caller only queues the span)
    harness.processor.drain()  # the fold reports, and goes on
    assert _guard_errors("metrics.fold_end") == before_end + 1
    assert _guard_errors("metrics.fold_start") == before_start + 1


def test_latest_semconv_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    h = Harness()
    assert h.processor.latest_semconv is True
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN")  # decided at construction: no effect any more
    try:
        extra = {sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.05, sc.USAGE_CACHE_READ_INPUT_TOKENS: 4}
        h.call(OPENAI_CHAT, usage(40, 2, 0.5, **extra), seconds=0.7)
        h.call(OPENAI_CHAT, seconds=0.2, error="TimeoutError")
        embed = {sc.OPERATION: "embeddings", sc.PROVIDER: "openai", sc.REQUEST_MODEL: EMBED_MODEL}
        h.call(embed, {sc.USAGE_INPUT_TOKENS: 9})
        m = h.scrape()
    finally:
        h.close()
    names = m.names()
    assert "gen_ai_client_token_usage_count" not in names
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_count" not in names
    ok, failed = OK, {**NO_RESPONSE, "error_type": "TimeoutError"}
    unknown = {"gen_ai_token_modality": "unknown"}
    inference = "gen_ai_client_inference_"
    assert m.value(inference + "duration_seconds_sum", **ok) == pytest.approx(0.7, abs=1e-9)
    assert m.value(inference + "duration_seconds_count", **failed) == 1
    assert m.value(inference + "time_to_first_chunk_seconds_count", **ok) == 1
    assert m.value(inference + "usage_input_tokens_total", **ok, **unknown) == 40
    assert m.value(inference + "usage_output_tokens_total", **ok, **unknown) == 2
    assert m.value(inference + "usage_cache_read_input_tokens_total", **ok, **unknown) == 4
    # A failed inference still records usage, as 0 (the conventions' rule).
    assert m.value(inference + "usage_input_tokens_total", **NO_RESPONSE, **unknown) == 0
    assert m.value(inference + "operation_input_tokens_count", **failed) == 1
    assert m.value(inference + "operation_input_tokens_sum", **ok) == 40
    # Embeddings are not inference: the operation-duration histogram, no usage counters.
    embed_labels = {**OK, "gen_ai_operation_name": "embeddings", "gen_ai_request_model": EMBED_MODEL}
    assert m.value(DUR + "_count", **{**embed_labels, "gen_ai_response_model": ""}) == 1
    assert m.series(inference + "usage_input_tokens_total", gen_ai_operation_name="embeddings") == []
    assert m.value("llm_otel_tokens_total", provider="openai", model=EMBED_MODEL, type="input") == 9


def test_default_names_are_the_current_instrumentations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    h = Harness()
    try:
        h.call(OPENAI_CHAT, usage(3, 4, 0.5))
        m = h.scrape()
    finally:
        h.close()
    assert h.processor.latest_semconv is False
    assert not any(name.startswith("gen_ai_client_inference") for name in m.names())
    assert m.total("gen_ai_client_token_usage_count") == 2


def test_families_are_reused_or_replaced() -> None:
    registry = CollectorRegistry()
    provider = TracerProvider()
    provider.add_span_processor(PrometheusMetricsProcessor(registry=registry, latest_semconv=False))
    provider.add_span_processor(PrometheusMetricsProcessor(registry=registry, latest_semconv=False))
    provider.get_tracer(sc.SCOPE_NAME).start_span("chat", attributes=OPENAI_CHAT).end()
    # Two processors on one registry share the families (a repeated instrument() must not crash).
    labels = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat", "status": "ok"}
    assert registry.get_sample_value("llm_otel_requests_total", labels) == 2
    PrometheusMetricsProcessor(registry=registry, label_tags=("team",), latest_semconv=False)
    names = {m.name: m for m in registry.collect()}
    assert names["llm_otel_requests"].samples == []  # replaced by the family with the team label


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"label_tags": ("bad-name",)}, "label_tags"),
        ({"label_tags": ("provider",)}, "label_tags"),
        ({"label_tags": ("__x",)}, "label_tags"),
        ({"label_tags": (3,)}, "label_tags"),
        ({"max_models": 0}, "max_models"),
        ({"max_models": True}, "max_models"),
        ({"max_models": "10"}, "max_models"),
    ],
)
def test_bad_configuration_raises_config_error(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        PrometheusMetricsProcessor(registry=CollectorRegistry(), **kwargs)
    assert info.value.setting == setting


def test_fast_writers_match_the_public_api() -> None:
    from prometheus_client import Counter, Histogram

    registry = CollectorRegistry()
    bounds = (0.01, 0.32, 5.12)
    fast = Histogram("fast", "h", ["k"], buckets=bounds, registry=registry).labels("x")
    public = Histogram("public", "h", ["k"], buckets=bounds, registry=registry).labels("x")
    write = histogram_writer(fast)
    for value in (0.0, 0.01, 0.011, 0.32, 0.33, 5.12, 6.0, float("inf")):
        write(value)
        public.observe(value)
    for le in ("0.01", "0.32", "5.12", "+Inf"):
        assert registry.get_sample_value("fast_bucket", {"k": "x", "le": le}) == registry.get_sample_value(
            "public_bucket", {"k": "x", "le": le}
        )
    assert registry.get_sample_value("fast_bucket", {"k": "x", "le": "0.32"}) == 4

    class Unusual:  # a child without prometheus-client's internals: the public method is used
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

        def inc(self, value: float = 1) -> None:
            self.seen.append(value)

    odd = Unusual()
    histogram_writer(odd)(2.5)
    counter_writer(odd)(3)
    assert odd.seen == [2.5, 3]
    counter = Counter("c", "c", registry=registry)
    counter_writer(counter)(2)
    assert registry.get_sample_value("c_total") == 2


def _guard_errors(site: str | None = None) -> float:
    return sum(
        s.value
        for metric in guard.INSTRUMENTATION_ERRORS.collect()
        for s in metric.samples
        if s.name.endswith("_total") and (site is None or s.labels.get("site") == site)
    )
