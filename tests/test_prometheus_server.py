"""Serving: start_metrics_server, the WSGI/ASGI apps, and `promtool check metrics` on what they serve."""

from __future__ import annotations

import asyncio
import io
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_fixture import Samples, promtool, scrape

from llm_otel import semconv as sc
from llm_otel.errors import ConfigError
from llm_otel.exporters.prometheus import (
    PrometheusMetricsProcessor,
    make_asgi_app,
    make_wsgi_app,
    start_metrics_server,
)
from llm_otel.exporters.prometheus.server import PortInUseError


def populate(latest: bool) -> CollectorRegistry:
    """A registry holding every family llm-otel writes, with samples (including a tag label)."""
    registry = CollectorRegistry()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(
        PrometheusMetricsProcessor(registry=registry, label_tags=("tenant",), latest_semconv=latest)
    )
    tracer = provider.get_tracer(sc.SCOPE_NAME)
    base = {
        sc.OPERATION: "chat",
        sc.PROVIDER: "openai",
        sc.REQUEST_MODEL: "gpt-4o",
        sc.TAG_PREFIX + "tenant": "a",
    }
    end: dict[str, Any] = {
        sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.USAGE_INPUT_TOKENS: 10,
        sc.USAGE_OUTPUT_TOKENS: 5,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: 2,
        sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 1,
        sc.USAGE_REASONING_OUTPUT_TOKENS: 3,
        sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.2,
        sc.USAGE_COST: 0.01,
        sc.PRICING_STATUS: "priced",
    }
    span = tracer.start_span("chat gpt-4o", attributes=base)
    span.set_attributes(end)
    span.end()
    span = tracer.start_span("chat x", attributes={**base, sc.REQUEST_MODEL: "x"})
    span.set_attributes({sc.PRICING_STATUS: "unpriced", sc.ERROR_TYPE: "openai.APIError"})
    span.set_status(StatusCode.ERROR)
    span.end()
    tracer.start_span("embeddings e", attributes={**base, sc.OPERATION: "embeddings"}).end()
    tracer.start_span("chat open", attributes=base)  # stays in flight
    return registry


def test_server_on_a_free_port_serves_and_stops() -> None:
    registry = populate(latest=False)
    server = start_metrics_server("127.0.0.1", 0, registry=registry)
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        samples = scrape(server.url)
        assert samples.value("llm_otel_active_requests", provider="openai", operation="chat") == 1
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


def test_default_registry_is_llm_otels() -> None:
    from llm_otel import guard

    guard.report("test.server", RuntimeError("counted"))
    server = start_metrics_server(port="0")  # type: ignore[arg-type]  # env values arrive as strings
    try:
        samples = scrape(server.url)
    finally:
        server.stop()
    assert samples.value("llm_otel_instrumentation_errors_total", site="test.server") >= 1


@pytest.mark.parametrize(
    ("host", "port", "setting"),
    [
        ("", 9464, "prometheus_host"),
        ("a b", 9464, "prometheus_host"),
        (None, 9464, "prometheus_host"),
        ("127.0.0.1", -1, "prometheus_port"),
        ("127.0.0.1", 65536, "prometheus_port"),
        ("127.0.0.1", "nine", "prometheus_port"),
        ("127.0.0.1", True, "prometheus_port"),
        ("127.0.0.1", 1.5, "prometheus_port"),
        ("no-such-host.invalid", 0, "prometheus_host"),
    ],
)
def test_bad_host_or_port_raises_config_error(host: Any, port: Any, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        start_metrics_server(host, port)
    assert info.value.setting == setting


def test_port_in_use_raises_config_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen") as info:
            start_metrics_server("127.0.0.1", port)
    assert info.value.setting == "prometheus_port"
    assert isinstance(info.value, PortInUseError)  # instrument() warns and runs on instead


def test_wsgi_app_serves_the_registry() -> None:
    app = make_wsgi_app(populate(latest=False))
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
    }
    body = b"".join(app(environ, lambda s, headers: status.append(s)))
    assert status == ["200 OK"]
    assert Samples(body.decode()).value("llm_otel_active_requests", provider="openai", operation="chat") == 1


def test_asgi_app_serves_the_registry() -> None:
    app = make_asgi_app(populate(latest=False))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert Samples(text).value("llm_otel_unpriced_requests_total", provider="openai", model="x") == 1


@pytest.mark.parametrize("latest", [False, True], ids=["default-names", "latest-names"])
def test_promtool_check_metrics_passes(latest: bool) -> None:
    server = start_metrics_server("127.0.0.1", 0, registry=populate(latest))
    try:
        text = scrape(server.url).text
    finally:
        server.stop()
    assert "llm_otel_cost_usd_total" in text and "llm_otel_tokens_total" in text
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stderr.strip() == ""


def test_promtool_check_metrics_can_fail() -> None:
    bad = "# HELP llm_tokens Tokens.\n# TYPE llm_tokens counter\nllm_tokens 1\n"
    result = promtool("check", "metrics", stdin=bad)
    assert result.returncode != 0
    assert "_total" in result.stderr + result.stdout
