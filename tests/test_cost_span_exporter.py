"""CostAPIExporter is also a plain OpenTelemetry SpanExporter (behind any span processor)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from llm_otel.exporters.cost import CostAPIExporter
from llm_otel.exporters.cost.spool import count_records
from llm_otel.semconv import SCOPE_NAME


def test_exporter_api_queues_only_genai_spans(tmp_path: Path) -> None:
    exporter = CostAPIExporter(
        "http://127.0.0.1:9",
        "k",
        spool_path=tmp_path / "spool.sqlite",
        flush_interval=0.05,
        retry_initial=30,
        retry_max=30,
    )
    assert isinstance(exporter, SpanExporter)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer(SCOPE_NAME).start_span(
        "chat gpt-4o-mini", attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    )
    span.end()
    provider.get_tracer("someone.else").start_span("other").end()
    assert exporter.export([]) is SpanExportResult.SUCCESS
    exporter.shutdown(timeout=0.5)  # API unreachable: the record stays spooled for the next process
    assert count_records(tmp_path / "spool.sqlite") == 1
