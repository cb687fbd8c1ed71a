"""A real Prometheus server scrapes llm-otel's endpoint; promtool checks the shipped config and alert rules.

Prometheus is Debian's package (``apt-get install -y --no-install-recommends prometheus``); without it
these tests skip, except in CI where they fail (see tests/prometheus_fixture.py).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_fixture import PrometheusServer, promtool

from llm_otel import semconv as sc
from llm_otel.exporters.prometheus import MetricsServer, PrometheusMetricsProcessor, start_metrics_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Stack:
    """Our endpoint (fresh registry, free port) and a Prometheus scraping it every second."""

    def __init__(
        self, registry: CollectorRegistry, endpoint: MetricsServer, prometheus: PrometheusServer
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.prometheus = prometheus


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    registry = CollectorRegistry()
    endpoint = start_metrics_server("127.0.0.1", 0, registry=registry)
    prometheus = PrometheusServer([f"127.0.0.1:{endpoint.port}"], tmp_path_factory.mktemp("prometheus"))
    try:
        prometheus.start()
        yield Stack(registry, endpoint, prometheus)
    finally:
        prometheus.stop()
        endpoint.stop()


def test_real_prometheus_scrapes_the_totals(stack: Stack) -> None:
    run = uuid.uuid4().hex[:10]  # unique label values: no stale series from another run can match
    service, model = f"svc-{run}", f"model-{run}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        PrometheusMetricsProcessor(registry=stack.registry, label_tags=("tenant",), latest_semconv=False)
    )
    tracer = provider.get_tracer(sc.SCOPE_NAME)
    attrs = {
        sc.OPERATION: "chat",
        sc.PROVIDER: "openai",
        sc.REQUEST_MODEL: model,
        sc.TAG_PREFIX + "tenant": "acme",
    }
    for i in range(5):
        span = tracer.start_span(f"chat {model}", attributes=attrs, start_time=0)
        span.set_attributes(
            {
                sc.RESPONSE_MODEL: model,
                sc.USAGE_INPUT_TOKENS: 100 + i,
                sc.USAGE_OUTPUT_TOKENS: 20,
                sc.USAGE_COST: 0.25,
                sc.PRICING_STATUS: "priced",
            }
        )
        span.end(end_time=1_500_000_000)  # 1.5 s
    for _ in range(2):
        span = tracer.start_span(f"chat {model}", attributes=attrs, start_time=0)
        span.set_attribute(sc.ERROR_TYPE, "openai.InternalServerError")
        span.set_status(StatusCode.ERROR)
        span.end(end_time=100_000_000)
    held = tracer.start_span(f"chat {model}", attributes=attrs)  # in flight while Prometheus scrapes

    m, s, r = f'model="{model}"', f'service="{service}"', f'gen_ai_request_model="{model}"'
    duration = "gen_ai_client_operation_duration_seconds"
    expected = {
        f"sum(llm_otel_requests_total{{{m}}})": 7,
        f'sum(llm_otel_requests_total{{{m},status="error"}})': 2,
        f'sum(llm_otel_requests_total{{{m},tenant="acme",status="ok"}})': 5,
        f"sum(llm_otel_cost_usd_total{{{s}}})": 1.25,
        f'sum(llm_otel_tokens_total{{{m},type="input"}})': 510,
        f'sum(llm_otel_tokens_total{{{m},type="output"}})': 100,
        f"sum({duration}_count{{{r}}})": 7,
        f'sum({duration}_bucket{{{r},le="1.28"}})': 2,
        f'sum({duration}_bucket{{{r},le="2.56"}})': 7,
        'sum(llm_otel_active_requests{provider="openai",operation="chat"})': 1,
    }
    try:
        seen = stack.prometheus.wait_for(expected)
        assert seen == pytest.approx(expected), stack.prometheus.log()
        held.end()
        after = {'sum(llm_otel_active_requests{provider="openai",operation="chat"})': 0.0}
        assert stack.prometheus.wait_for(after, timeout=5) == after
        assert stack.prometheus.scalar('up{job="llm_otel_test"}') == 1
    finally:
        held.end()
        provider.shutdown()


def test_promtool_checks_the_example_config_and_rules() -> None:
    config = promtool("check", "config", str(EXAMPLES / "prometheus.yml"))
    assert config.returncode == 0, config.stderr + config.stdout
    rules = promtool("check", "rules", str(EXAMPLES / "alert_rules.yml"))
    assert rules.returncode == 0, rules.stderr + rules.stdout
    assert "SUCCESS: 4 rules found" in rules.stdout
    tested = promtool("test", "rules", str(EXAMPLES / "alert_rules_test.yml"))
    assert tested.returncode == 0, tested.stderr + tested.stdout


def test_alert_rule_tests_catch_a_wrong_rule(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "alert_rules_test.yml", tmp_path)
    rules = (EXAMPLES / "alert_rules.yml").read_text()
    assert "> 0.05" in rules
    (tmp_path / "alert_rules.yml").write_text(rules.replace("> 0.05", "> 0.5"))  # error alert never fires
    tested = promtool("test", "rules", "alert_rules_test.yml", cwd=tmp_path)
    assert tested.returncode == 1
    assert "LLMHighErrorRate" in tested.stdout + tested.stderr
