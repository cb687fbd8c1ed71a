"""Helpers shared by the cost exporter test files: the reference server on a thread, spans, metrics."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Tracer

from llm_otel.cost_server import CostAPIServer, make_server
from llm_otel.exporters.cost import CostRecordProcessor
from llm_otel.metrics_registry import REGISTRY
from llm_otel.semconv import SCOPE_NAME

KEY = "exporter-test-key"
COST = 0.000000123456


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"llm_otel_cost_export_{name}", labels) or 0.0


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecordOnlySampler(Sampler):
    """What ``instrument()`` does to a span the trace sampler drops: recorded, not sampled."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


def tracer_for(processor: CostRecordProcessor, sampler: Sampler | None = None) -> Tracer:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "svc", "llm_otel.organization_id": "org-7"}),
        sampler=sampler,
        shutdown_on_exit=False,
    )
    provider.add_span_processor(processor)
    return provider.get_tracer(SCOPE_NAME)


def emit(tracer: Tracer, n: int, model: str = "gpt-4o-mini") -> None:
    for _ in range(n):
        with tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model, "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
                "gen_ai.usage.cost": COST, "llm_otel.pricing.status": "priced", "llm_otel.tag.tenant": "acme",
            })  # fmt: skip


class Server:
    """The reference server on a thread; ``port`` may be fixed so it can come up after the exporter."""

    def __init__(self, db: Path, port: int = 0) -> None:
        self.srv: CostAPIServer = make_server(str(db), port=port, api_key=KEY)
        self.url = self.srv.url
        self._thread = threading.Thread(
            target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def count(self) -> int:
        return self.srv.store.count()

    def totals(self) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + "/v1/costs?group_by=model", headers={"Authorization": f"Bearer {KEY}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.srv.store.close()


def dropped_total() -> float:
    """Every record the exporters counted as lost, whatever the reason."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "llm_otel_cost_export_records_dropped"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
