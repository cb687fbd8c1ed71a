"""``llm_otel.instrument()``: validation, idempotence, provider reuse, OTLP export to real receivers,
sampling that never loses a call, and auto-instrumentation through the entry points."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from tests_support import run_child

import llm_otel
from llm_otel import ConfigError
from llm_otel.exporters.cost.records import span_to_record
from llm_otel.instrumentors.call import Telemetry
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.testing.otlp_receiver import OTLPGrpcReceiver, OTLPHttpReceiver

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"otlp_endpoint": "ftp://collector:4318"}, "otlp_endpoint"),
        ({"otlp_endpoint": "http://"}, "otlp_endpoint"),
        ({"prometheus_port": "nine"}, "prometheus_port"),
        ({"prometheus_port": 70000}, "prometheus_port"),
        ({"cost_api_url": "localhost:8787"}, "cost_api_url"),
        ({"instrumentors": "openai,anthropic"}, "instrumentors"),
        ({"prices": "/nonexistent/prices.json"}, "prices"),
        ({"provider_hosts": "no-equals-sign"}, "provider_hosts"),
        ({"label_tags": ["tenant", "not a name"]}, "label_tags"),
        ({"max_model_labels": 0}, "max_model_labels"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"shutdown_timeout": "soon"}, "shutdown_timeout"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        llm_otel.instrument(**kwargs)
    assert setting in str(raised.value)
    assert raised.value.setting in (setting, "prices")
    assert llm_otel._handle is None  # nothing half-started


def test_bad_environment_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_PROMETHEUS_PORT"):
        llm_otel.instrument()
    monkeypatch.delenv("OTEL_EXPORTER_PROMETHEUS_PORT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        llm_otel.instrument()


def test_instrument_is_idempotent_and_reuses_the_app_provider(
    provider: TracerProvider, spans: Any, server: Any
) -> None:
    handle = llm_otel.instrument(prometheus_port=0)
    try:
        assert llm_otel.instrument(prometheus_port=0) is handle
        assert handle.tracer_provider is provider and not handle.owns_provider
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(spans.genai()) == 1
    finally:
        llm_otel.uninstrument()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans.genai()) == 1  # uninstrumented: no new span


class _Collect(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[Any] = []

    def on_end(self, span: Any) -> None:
        self.ended.append(span)


@pytest.mark.parametrize("sampler", [ParentBased(ALWAYS_OFF), TraceIdRatioBased(0.01)], ids=["off", "1pct"])
def test_sampling_never_loses_a_call(sampler: Any, server: Any, telemetry: Telemetry) -> None:
    """With the app's own provider and a dropping sampler: exporters get only sampled spans, while the
    metrics/cost processors see every GenAI call (RECORD_ONLY)."""
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    app_provider = TracerProvider(sampler=sampler)
    exported = InMemorySpanExporter()
    app_provider.add_span_processor(SimpleSpanProcessor(exported))
    seen = _Collect()
    app_provider.add_span_processor(seen)
    telemetry.tracer = make_tracer(app_provider)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(llm_otel_telemetry=telemetry)
    try:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        for _ in range(100):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    assert len(seen.ended) == 100
    assert all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in seen.ended)
    # the start attributes too: metrics labels and cost records need operation, provider and model
    started = {
        (
            s.attributes["gen_ai.operation.name"],
            s.attributes["gen_ai.provider.name"],
            s.attributes["gen_ai.request.model"],
        )
        for s in seen.ended
    }
    assert started == {("chat", "openai", "gpt-4o-mini")}
    assert all(span_to_record(s) is not None for s in seen.ended)
    assert len(exported.get_finished_spans()) <= 10  # 0 for off, ~1 for 1 %
    # the application's other tracers keep their sampler untouched
    other = app_provider.get_tracer("app")
    assert other.sampler is sampler  # type: ignore[attr-defined]


CHILD = """
    import json, os, openai, llm_otel
    handle = llm_otel.instrument(prometheus_port=0)
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="sk-secret", max_retries=0)
    for _ in range(int(os.environ.get("CALLS", "1"))):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    handle.flush()
    from llm_otel.metrics_registry import REGISTRY
    total = sum(s.value for m in REGISTRY.collect() if m.name == "llm_otel_requests"
                for s in m.samples if s.name == "llm_otel_requests_total")
    print(json.dumps({"owns": handle.owns_provider, "requests": total}))
"""


def test_otlp_http_export_from_standard_env(server: Any) -> None:
    receiver = OTLPHttpReceiver().start()
    try:
        out = run_child(
            CHILD,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_SERVICE_NAME": "checkout",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
        )
        spans = receiver.wait_for(1)
    finally:
        receiver.stop()
    assert out["owns"] is True
    genai = [s for s in spans if s["scope"] == "llm_otel"]
    assert len(genai) == 1
    span = genai[0]
    assert span["name"] == "chat gpt-4o-mini"
    assert span["resource"]["service.name"] == "checkout"
    assert span["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert "sk-secret" not in json.dumps(span)


def test_otlp_grpc_export(server: Any) -> None:
    receiver = OTLPGrpcReceiver().start()
    try:
        run_child(
            CHILD,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
        )
        spans = receiver.wait_for(1)
    finally:
        receiver.stop()
    assert [s["name"] for s in spans if s["scope"] == "llm_otel"] == ["chat gpt-4o-mini"]


def test_sampler_from_env_drops_traces_but_counts_every_call(server: Any) -> None:
    receiver = OTLPHttpReceiver().start()
    try:
        out = run_child(
            CHILD,
            {
                "FAKE_URL": server.openai_base_url,
                "CALLS": "20",
                "OTEL_TRACES_SAMPLER": "always_off",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
        )
        spans = receiver.wait_for(1, timeout=1.0)
    finally:
        receiver.stop()
    assert spans == []
    assert out["requests"] == 20


def test_collector_down_does_not_affect_calls(server: Any) -> None:
    out = run_child(
        CHILD,
        {
            "FAKE_URL": server.openai_base_url,
            "CALLS": "3",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "OTEL_BSP_EXPORT_TIMEOUT": "500",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        },
    )
    assert out["requests"] == 3


def test_import_and_instrument_without_client_libraries() -> None:
    code = """
        import sys, json
        sys.modules["openai"] = None
        sys.modules["ollama"] = None
        import llm_otel
        handle = llm_otel.instrument(prometheus_port=0)
        print(json.dumps({"instrumentors": len(handle.instrumentors)}))
    """
    assert run_child(code, {}) == {"instrumentors": 0}


def test_uninstrumenting_one_library_leaves_the_other_traced(
    telemetry: Telemetry, spans: Any, server: Any
) -> None:
    import ollama

    from llm_otel.instrumentors.ollama import OllamaInstrumentor
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(llm_otel_telemetry=telemetry)
    OllamaInstrumentor().instrument(llm_otel_telemetry=telemetry)
    try:
        OpenAIInstrumentor().uninstrument()
        openai.OpenAI(base_url=server.openai_base_url, api_key="k").chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        ollama.Client(host=server.ollama_host).chat(model="llama3.2", messages=MESSAGES)
    finally:
        OllamaInstrumentor().uninstrument()
    assert [s.attributes["gen_ai.provider.name"] for s in spans.genai()] == ["ollama"]
