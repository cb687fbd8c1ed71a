"""Shared fixtures: one global SDK TracerProvider with an in-memory exporter, the fake LLM server, and
per-test instrumentors bound to a fresh :class:`Telemetry`."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_otel.content import CaptureMode
from llm_otel.instrumentors.call import Telemetry
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.pricing import PriceTable
from llm_otel.testing import FakeLLMServer

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)


class SpanReader:
    """Finished spans, read back from the in-memory exporter."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def genai(self) -> list[ReadableSpan]:
        return [
            s for s in self.all() if s.instrumentation_scope and s.instrumentation_scope.name == "llm_otel"
        ]

    def one(self) -> ReadableSpan:
        spans = self.genai()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture(scope="session")
def provider() -> TracerProvider:
    return _PROVIDER


@pytest.fixture
def spans() -> Iterator[SpanReader]:
    # Finish what earlier tests abandoned, then move every survivor to the permanent generation: later
    # collections (the tests' own, and the interpreter's) scan only what this test creates, which keeps
    # the suite fast once the client libraries' large object graphs are loaded.
    gc.collect()
    gc.freeze()
    _EXPORTER.clear()
    yield SpanReader(_EXPORTER)
    _EXPORTER.clear()


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture
def server(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry(
        tracer=make_tracer(_PROVIDER), prices=PriceTable.bundled(), capture=CaptureMode.NO_CONTENT
    )


def _instrumented(instrumentor: Any, telemetry: Telemetry) -> Iterator[Telemetry]:
    instrumentor.instrument(tracer_provider=_PROVIDER, llm_otel_telemetry=telemetry)
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def openai_instrumented(telemetry: Telemetry, spans: SpanReader) -> Iterator[Telemetry]:
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    yield from _instrumented(OpenAIInstrumentor(), telemetry)


@pytest.fixture
def ollama_instrumented(telemetry: Telemetry, spans: SpanReader) -> Iterator[Telemetry]:
    from llm_otel.instrumentors.ollama import OllamaInstrumentor

    yield from _instrumented(OllamaInstrumentor(), telemetry)
