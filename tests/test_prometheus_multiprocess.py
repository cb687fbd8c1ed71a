"""prometheus-client multiprocess mode: two worker processes write, one endpoint serves the sums."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_fixture import scrape

from llm_otel.exporters.prometheus import start_metrics_server

ROOT = Path(__file__).resolve().parent.parent

#: A gunicorn-style worker: PROMETHEUS_MULTIPROC_DIR is in its environment before anything imports
#: prometheus_client. argv: number of finished calls, then "hold" to keep one more call in flight until
#: a line arrives on stdin.
WORKER = """
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from llm_otel import semconv as sc
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "mp"}))
provider.add_span_processor(PrometheusMetricsProcessor(latest_semconv=False))
tracer = provider.get_tracer(sc.SCOPE_NAME)
attrs = {sc.OPERATION: "chat", sc.PROVIDER: "openai", sc.REQUEST_MODEL: "gpt-4o-mini"}
end = {sc.RESPONSE_MODEL: "gpt-4o-mini", sc.USAGE_INPUT_TOKENS: 100, sc.USAGE_OUTPUT_TOKENS: 10,
       sc.USAGE_COST: 0.5, sc.PRICING_STATUS: "priced"}
for _ in range(int(sys.argv[1])):
    span = tracer.start_span("chat gpt-4o-mini", attributes=attrs, start_time=0)
    span.set_attributes(end)
    span.end(end_time=250_000_000)
if sys.argv[2:] == ["hold"]:
    held = tracer.start_span("chat gpt-4o-mini", attributes=attrs)
    print("in flight", flush=True)
    sys.stdin.readline()
    held.set_attributes(end)
    held.end()
print("done", flush=True)
"""


def worker(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_one_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    first = worker(["3"], env)
    second = worker(["4", "hold"], env)
    try:
        assert second.stdout is not None and second.stdin is not None
        assert second.stdout.readline().strip() == "in flight", second.stderr.read() if second.stderr else ""
        out, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        assert out.strip() == "done"

        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the serving process's view
        server = start_metrics_server("127.0.0.1", 0)
        try:
            during = scrape(server.url)
            second.stdin.write("finish\n")
            second.stdin.flush()
            out, err = second.communicate(timeout=30)
            assert second.returncode == 0, err
            after = scrape(server.url)
        finally:
            server.stop()
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()

    assert {p.name[: -len(".db")].rsplit("_", 1)[0] for p in tmp_path.glob("*.db")} >= {
        "counter",
        "histogram",
    }
    ok = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat", "status": "ok"}
    in_flight = {"provider": "openai", "operation": "chat"}
    assert during.value("llm_otel_active_requests", **in_flight) == 1  # livesum over both workers
    assert during.value("llm_otel_requests_total", **ok) == 7
    assert after.value("llm_otel_active_requests", **in_flight) == 0
    assert after.value("llm_otel_requests_total", **ok) == 8
    assert after.value("llm_otel_tokens_total", provider="openai", model="gpt-4o-mini", type="input") == 800
    assert after.value("llm_otel_cost_usd_total", provider="openai", model="gpt-4o-mini", service="mp") == 4.0
    duration = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
        "gen_ai_response_model": "gpt-4o-mini",
    }
    assert after.value("gen_ai_client_operation_duration_seconds_count", **duration) == 8
    assert during.buckets("gen_ai_client_operation_duration_seconds", **duration)[0.32] == 7
