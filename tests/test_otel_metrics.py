"""Metrics through the OpenTelemetry Metrics API: the same calls, attributes and values as the Prometheus
endpoint, read back with the SDK's in-memory reader and from a real OTLP metrics receiver."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from tests_support import run_child

from llm_otel import semconv as sc
from llm_otel.config import Settings
from llm_otel.errors import ConfigError
from llm_otel.exporters.otel_metrics import OTelMetricsRecorder, meter_provider_for
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor
from llm_otel.testing.otlp_receiver import OTLPGrpcReceiver, OTLPHttpReceiver

# OTel instrument -> the Prometheus family with the same values (the exporter's naming rules).
PROM_NAMES = {
    "gen_ai.client.operation.duration": "gen_ai_client_operation_duration_seconds",
    "gen_ai.client.token.usage": "gen_ai_client_token_usage",
    "gen_ai.client.operation.time_to_first_chunk": "gen_ai_client_operation_time_to_first_chunk_seconds",
    "gen_ai.client.operation.time_per_output_chunk": "gen_ai_client_operation_time_per_output_chunk_seconds",
    "gen_ai.client.inference.duration": "gen_ai_client_inference_duration_seconds",
    "gen_ai.client.inference.time_to_first_chunk": "gen_ai_client_inference_time_to_first_chunk_seconds",
    "gen_ai.client.inference.time_per_output_chunk": "gen_ai_client_inference_time_per_output_chunk_seconds",
    "gen_ai.client.inference.usage.input_tokens": "gen_ai_client_inference_usage_input_tokens",
    "gen_ai.client.inference.usage.output_tokens": "gen_ai_client_inference_usage_output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens": (
        "gen_ai_client_inference_usage_cache_read_input_tokens"
    ),
    "gen_ai.client.inference.operation.input_tokens": "gen_ai_client_inference_operation_input_tokens",
    "gen_ai.client.inference.operation.output_tokens": "gen_ai_client_inference_operation_output_tokens",
    "llm_otel.cost": "llm_otel_cost_usd",
    "llm_otel.requests": "llm_otel_requests",
    "llm_otel.tokens": "llm_otel_tokens",
    "llm_otel.unpriced_requests": "llm_otel_unpriced_requests",
    "llm_otel.active_requests": "llm_otel_active_requests",
}

# Shared by the child processes: (name, sorted attribute items, field) -> value, for both sinks.
FLATTEN = r"""
import json
PROM_NAMES = json.loads(PROM_NAMES_JSON)
PROM_FAMILIES = {v: k for k, v in PROM_NAMES.items()}

def prom_values(registry):
    out = {}
    for family in registry.collect():
        name = PROM_FAMILIES.get(family.name)
        if name is None:
            continue
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if v and k != "le"))
            if s.name.endswith("_bucket") or s.name.endswith("_created"):
                continue
            field = "count" if s.name.endswith("_count") else "sum" if s.name.endswith("_sum") else "value"
            if family.type == "histogram" and field == "value":
                continue
            out[repr((name, labels, field))] = s.value
    return out
"""


def otel_values(points: list[dict[str, Any]]) -> dict[str, float]:
    """OTLP-decoded points -> the same keys as ``prom_values`` (dots in attribute keys -> underscores)."""
    out: dict[str, float] = {}
    for p in points:
        if p["name"] not in PROM_NAMES:
            continue
        labels = tuple(sorted((k.replace(".", "_"), v) for k, v in p["attributes"].items() if v))
        if p["kind"] == "histogram":
            out[repr((p["name"], labels, "count"))] = float(p["count"])
            out[repr((p["name"], labels, "sum"))] = float(p["sum"])
        else:
            out[repr((p["name"], labels, "value"))] = float(p["value"])
    return out


def _same(prom: dict[str, float], otel: dict[str, float]) -> None:
    assert prom, "no Prometheus values"
    assert set(prom) == set(otel), (sorted(set(prom) - set(otel)), sorted(set(otel) - set(prom)))
    for key, value in prom.items():
        assert math.isclose(value, otel[key], rel_tol=1e-9, abs_tol=1e-12), (key, value, otel[key])


CALLS = r"""
import os, openai
client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="sk-x", max_retries=0)
msgs = [{"role": "user", "content": "hi"}]
for _ in range(3):
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    except openai.APIStatusError:  # the errors test fails the first two
        pass
client.chat.completions.create(model="gpt-4o", messages=msgs)
for _ in client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                        stream_options={"include_usage": True}):
    pass
client.chat.completions.create(model="my-local-model", messages=msgs)  # unpriced
client.embeddings.create(model="text-embedding-3-small", input="hi")
"""

IN_MEMORY_CHILD = (
    FLATTEN
    + r"""
import llm_otel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from llm_otel.metrics_registry import REGISTRY
reader = InMemoryMetricReader()
handle = llm_otel.instrument(prometheus_port=0, live=False, label_tags=["tenant"],
                             meter_provider=MeterProvider(metric_readers=[reader]))
"""
    + CALLS
    + r"""
with llm_otel.attributes(tenant="acme"):
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
points = []
for rm in reader.get_metrics_data().resource_metrics:   # read first: collection drains the fold itself
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            kind = type(m.data).__name__.lower()
            for p in m.data.data_points:
                point = {"name": m.name, "kind": kind, "attributes": dict(p.attributes), "unit": m.unit}
                if kind == "histogram":
                    point.update(count=p.count, sum=p.sum, bounds=list(p.explicit_bounds))
                else:
                    point["value"] = p.value
                points.append(point)
print(json.dumps({"prom": prom_values(REGISTRY), "points": points}))
"""
)


def _child(code: str, env: dict[str, str]) -> dict[str, Any]:
    return run_child(f"PROM_NAMES_JSON = {json.dumps(json.dumps(PROM_NAMES))}\n" + code, env)


def test_in_memory_reader_equals_prometheus(server: Any) -> None:
    out = _child(IN_MEMORY_CHILD, {"FAKE_URL": server.openai_base_url})
    points = out["points"]
    _same(out["prom"], otel_values(points))
    by_name = {p["name"]: p for p in points}
    # the conventions' instruments, units and bucket boundaries
    duration = by_name["gen_ai.client.operation.duration"]
    assert duration["unit"] == "s"
    assert duration["bounds"] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                                  40.96, 81.92]  # fmt: skip
    usage = [p for p in points if p["name"] == "gen_ai.client.token.usage"]
    assert {p["attributes"]["gen_ai.token.type"] for p in usage} == {"input", "output"}
    assert by_name["gen_ai.client.token.usage"]["unit"] == "{token}"
    assert by_name["gen_ai.client.token.usage"]["bounds"][:3] == [1, 4, 16]
    assert "gen_ai.client.operation.time_to_first_chunk" in by_name  # the stream
    requests = {
        (p["attributes"].get("model"), p["attributes"].get("tenant"), p["attributes"]["status"]): p["value"]
        for p in points
        if p["name"] == "llm_otel.requests"
    }
    assert requests[("gpt-4o-mini", None, "ok")] == 4  # 3 chat + the stream (model as answered)
    assert requests[("gpt-4o-mini", "acme", "ok")] == 1  # the allow-listed tag, a label in both
    cost = sum(p["value"] for p in points if p["name"] == "llm_otel.cost")
    assert cost > 0
    assert any(p["name"] == "llm_otel.unpriced_requests" for p in points)
    # no call in flight at the end, in both
    assert all(p["value"] == 0 for p in points if p["name"] == "llm_otel.active_requests")


def test_errors_are_counted_alike(server: Any) -> None:
    server.set_fault("server_error", times=2, path="/v1/chat")
    code = IN_MEMORY_CHILD
    out = _child(code, {"FAKE_URL": server.openai_base_url})
    server.clear_faults()
    points = out["points"]
    _same(out["prom"], otel_values(points))
    errors = [
        p
        for p in points
        if p["name"] == "gen_ai.client.operation.duration" and "error.type" in p["attributes"]
    ]
    assert errors and sum(p["count"] for p in errors) == 2


OTLP_CHILD = (
    FLATTEN
    + r"""
import llm_otel
from llm_otel.metrics_registry import REGISTRY
handle = llm_otel.instrument(prometheus_port=0, live=False)   # OTEL_METRICS_EXPORTER=otlp asks for it
assert handle.owns_meter_provider
"""
    + CALLS
    + r"""
handle.shutdown()            # drains the fold into both sinks, then the MeterProvider exports once more
print(json.dumps({"prom": prom_values(REGISTRY)}))
"""
)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otlp_receiver_gets_the_prometheus_values(server: Any, protocol: str) -> None:
    receiver = (OTLPHttpReceiver() if protocol == "http/protobuf" else OTLPGrpcReceiver()).start()
    try:
        out = _child(
            OTLP_CHILD,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.endpoint
                + ("/v1/metrics" if protocol == "http/protobuf" else ""),
                "OTEL_METRIC_EXPORT_INTERVAL": "60000",
                "OTEL_SERVICE_NAME": "checkout",
            },
        )
        points = receiver.wait_for_metrics(1)
    finally:
        receiver.stop()
    assert {p["scope"] for p in points} == {"llm_otel"}
    assert points[0]["resource"]["service.name"] == "checkout"
    _same(out["prom"], otel_values(points))


# -- in process: the recorder on a processor, with spans made by hand --------------------------------------
def _feed(latest: bool) -> tuple[PrometheusMetricsProcessor, InMemoryMetricReader, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=True)
    processor = PrometheusMetricsProcessor(registry=registry, latest_semconv=latest)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    processor.attach(
        OTelMetricsRecorder(
            meters, latest_semconv=latest, drain=processor.drain, dropped=lambda: processor.dropped_total
        )
    )
    tracer = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    tracer.add_span_processor(processor)
    t = tracer.get_tracer(sc.SCOPE_NAME)
    attrs = {
        sc.OPERATION: "chat",
        sc.PROVIDER: "openai",
        sc.REQUEST_MODEL: "gpt-4o",
        sc.RESPONSE_MODEL: "gpt-4o",
    }
    for tpoc in (0.02, 0.04):
        span = t.start_span("chat gpt-4o", attributes=attrs)
        span.set_attributes({
            sc.USAGE_INPUT_TOKENS: 10, sc.USAGE_OUTPUT_TOKENS: 5, sc.USAGE_CACHE_READ_INPUT_TOKENS: 4,
            sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.1, sc.STREAM_TIME_PER_OUTPUT_CHUNK: tpoc, sc.USAGE_COST: 0.001,
        })  # fmt: skip
        span.end()
    return processor, reader, registry


def _reader_points(reader: InMemoryMetricReader) -> list[dict[str, Any]]:
    points = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = type(m.data).__name__.lower()
                for p in m.data.data_points:
                    point: dict[str, Any] = {"name": m.name, "kind": kind, "attributes": dict(p.attributes)}
                    if kind == "histogram":
                        point.update(count=p.count, sum=p.sum)
                    else:
                        point["value"] = p.value
                    points.append(point)
    return points


@pytest.mark.parametrize("latest", [False, True])
def test_time_per_output_chunk_in_both(latest: bool) -> None:
    processor, reader, registry = _feed(latest)
    points = _reader_points(reader)  # collecting drains the fold first
    prefix = "gen_ai_client_inference" if latest else "gen_ai_client_operation"
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
              "gen_ai_request_model": "gpt-4o", "gen_ai_response_model": "gpt-4o"}  # fmt: skip
    name = f"{prefix}_time_per_output_chunk_seconds"
    assert registry.get_sample_value(name + "_count", labels) == 2
    assert registry.get_sample_value(name + "_sum", labels) == pytest.approx(0.06)
    otel_name = (
        "gen_ai.client.inference" if latest else "gen_ai.client.operation"
    ) + ".time_per_output_chunk"
    (tpoc,) = [p for p in points if p["name"] == otel_name]
    assert tpoc["count"] == 2 and tpoc["sum"] == pytest.approx(0.06)
    assert tpoc["attributes"] == {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "gpt-4o",
                                  sc.RESPONSE_MODEL: "gpt-4o"}  # fmt: skip
    if latest:
        (cache,) = [p for p in points if p["name"] == "gen_ai.client.inference.usage.cache_read.input_tokens"]
        assert cache["value"] == 8 and cache["attributes"]["gen_ai.token.modality"] == "unknown"
    processor.shutdown()


def test_dropped_spans_are_counted_and_the_caller_never_waits() -> None:
    registry = CollectorRegistry(auto_describe=True)
    processor = PrometheusMetricsProcessor(registry=registry, max_queue=3, fold_interval=3600)
    tracer = TracerProvider()
    tracer.add_span_processor(processor)
    t = tracer.get_tracer(sc.SCOPE_NAME)
    attrs = {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "m"}
    for _ in range(5):
        t.start_span("chat m", attributes=attrs).end()
    assert processor.queued == 6  # 3 starts and 3 ends wait; 2 starts folded on the spot, 2 ends dropped
    labels = {"provider": "openai", "operation": "chat"}
    assert registry.get_sample_value("llm_otel_metrics_dropped_spans_total") == 2  # reading drains
    assert registry.get_sample_value("llm_otel_requests_total", {**labels, "model": "m", "status": "ok"}) == 3
    assert registry.get_sample_value("llm_otel_active_requests", labels) == 0  # never left at +2
    assert processor.queued == 0
    processor.shutdown()


def test_fold_runs_in_the_background() -> None:
    registry = CollectorRegistry(auto_describe=True)
    processor = PrometheusMetricsProcessor(registry=registry, fold_interval=0.01)
    tracer = TracerProvider()
    tracer.add_span_processor(processor)
    tracer.get_tracer(sc.SCOPE_NAME).start_span("chat m", attributes={sc.OPERATION: "chat"}).end()
    import time

    deadline = time.monotonic() + 10
    while processor.queued and time.monotonic() < deadline:
        time.sleep(0.01)
    assert processor.queued == 0  # folded without any reader
    processor.shutdown()


# -- which MeterProvider -------------------------------------------------------------------------------
def test_no_meter_provider_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert meter_provider_for(Settings.resolve()) is None  # the API's proxy provider: nobody wants metrics
    given = MeterProvider()
    assert meter_provider_for(Settings.resolve(), given) == (given, False)
    assert meter_provider_for(Settings.resolve(otel_metrics=False), given) is None
    with pytest.raises(ConfigError, match="meter_provider"):
        meter_provider_for(Settings.resolve(), object())


def test_metrics_exporter_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp, console")
    assert Settings.resolve().metrics_exporter == ("otlp", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "zipkin")
    with pytest.raises(ConfigError, match="OTEL_METRICS_EXPORTER"):
        Settings.resolve()
    monkeypatch.delenv("OTEL_METRICS_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings.resolve().otlp_metrics_endpoint == "http://collector:4318/v1/metrics"
    monkeypatch.setenv("LLM_OTEL_OTEL_METRICS", "off")
    assert Settings.resolve().otel_metrics is False


def test_in_flight_gauge_across_drains() -> None:
    registry = CollectorRegistry(auto_describe=True)
    processor = PrometheusMetricsProcessor(registry=registry, fold_interval=3600)
    tracer = TracerProvider()
    tracer.add_span_processor(processor)
    t = tracer.get_tracer(sc.SCOPE_NAME)
    attrs = {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "m"}
    labels = {"provider": "openai", "operation": "chat"}
    ok = {**labels, "model": "m", "status": "ok"}
    open_call = t.start_span("chat m", attributes=attrs)
    assert registry.get_sample_value("llm_otel_active_requests", labels) == 1  # read: drained
    t.start_span("chat m", attributes=attrs).end()  # starts and ends within the next drain
    assert registry.get_sample_value("llm_otel_active_requests", labels) == 1
    assert registry.get_sample_value("llm_otel_requests_total", ok) == 1
    open_call.end()  # its start was folded by an earlier drain
    assert registry.get_sample_value("llm_otel_active_requests", labels) == 0
    assert registry.get_sample_value("llm_otel_requests_total", ok) == 2
    processor.shutdown()
