"""How a stream ends, as the span tells it: a stream the server cut off (200 and the event-stream headers,
then the body ends early) is failed though the client raised nothing; a ``close()`` that raises is
recorded as the span's error (and still reaches the caller); every stream records its chunk count and the
mean time per chunk. Real openai/ollama clients against the fake server, sync and async."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_fixture import scrape
from tests_support import HAS_RESPONSES

from llm_otel import semconv as sc
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor, start_metrics_server
from llm_otel.instrumentors.call import Telemetry
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.pricing import PriceTable

MESSAGES = [{"role": "user", "content": "Tell me a story"}]
CHAT = "/v1/chat/completions"
LEGACY = "/v1/completions"
RESPONSES = "/v1/responses"

_BASE = {"id": "chatcmpl-cut", "created": 1731368639, "model": "gpt-4o-mini-2024-07-18"}


def _chat_chunk(text: str, reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": reason}
    return {**_BASE, "object": "chat.completion.chunk", "choices": [choice]}


def _legacy_chunk(text: str, reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": reason}
    return {**_BASE, "object": "text_completion", "choices": [choice]}


_RESPONSE = {
    "id": "resp_cut",
    "object": "response",
    "created_at": 1731368639,
    "model": "gpt-4o-mini-2024-07-18",
    "status": "in_progress",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}
_RESPONSE_EVENTS = [
    {"type": "response.created", "sequence_number": 0, "response": _RESPONSE},
    {
        "type": "response.output_text.delta",
        "sequence_number": 1,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Once",
        "logprobs": [],
    },
]

#: (path, pieces a cut-off server sent) per OpenAI stream kind; each without its final chunk / event.
CUT_OFF = {
    "chat-no-chunk": (CHAT, []),
    "chat-no-finish-reason": (CHAT, [_chat_chunk("Once"), _chat_chunk(" upon")]),
    "legacy-no-chunk": (LEGACY, []),
    "legacy-no-finish-reason": (LEGACY, [_legacy_chunk("Once"), _legacy_chunk(" upon")]),
    "responses-no-event": (RESPONSES, []),
    "responses-no-terminal-event": (RESPONSES, _RESPONSE_EVENTS),
}
if not HAS_RESPONSES:
    del CUT_OFF["responses-no-event"], CUT_OFF["responses-no-terminal-event"]


def _open(client: Any, path: str) -> Any:
    if path == CHAT:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    if path == LEGACY:
        return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once", stream=True)
    return client.responses.create(model="gpt-4o-mini", input="Tell me a story", stream=True)


def _client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


def _aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


def _cut_off(span: Any) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == sc.ERROR_STREAM_INCOMPLETE
    assert sc.STREAM_ABANDONED not in span.attributes
    assert not span.events  # nothing was raised: no exception event


def _ok(span: Any) -> None:
    assert span.status.status_code is StatusCode.UNSET
    assert sc.ERROR_TYPE not in span.attributes


def _dump(items: list[Any]) -> list[Any]:
    return [item.model_dump() if hasattr(item, "model_dump") else dict(item) for item in items]


# -- cut-off streams ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CUT_OFF))
def test_cut_off_openai_stream_is_failed(
    case: str, server: Any, spans: Any, telemetry: Telemetry, provider: Any
) -> None:
    path, pieces = CUT_OFF[case]
    server.respond_with(chunks=pieces, path=path, done=False)
    plain = _dump(list(_open(_client(server), path)))  # what an uninstrumented client yields
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
    try:
        server.respond_with(chunks=pieces, path=path, done=False)
        got = _dump(list(_open(_client(server), path)))
    finally:
        instrumentor.uninstrument()
    assert got == plain and len(got) == len(pieces)  # the caller sees the same, and no exception
    span = spans.one()
    _cut_off(span)
    assert span.attributes.get(sc.STREAM_CHUNKS, 0) == len(pieces)
    if pieces and path != RESPONSES:
        assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("error",)


@pytest.mark.parametrize("case", list(CUT_OFF))
async def test_cut_off_async_openai_stream_is_failed(
    case: str, server: Any, spans: Any, openai_instrumented: Any
) -> None:
    path, pieces = CUT_OFF[case]
    server.respond_with(chunks=pieces, path=path, done=False)
    got = [item async for item in await _open(_aclient(server), path)]
    assert len(got) == len(pieces)
    _cut_off(spans.one())


def test_cut_off_with_done_marker_is_still_failed(server: Any, spans: Any, openai_instrumented: Any) -> None:
    """``data: [DONE]`` alone does not make a chat stream complete: the finish reason is the final word."""
    server.respond_with(chunks=[_chat_chunk("Once")], path=CHAT, done=True)
    assert len(list(_open(_client(server), CHAT))) == 1
    _cut_off(spans.one())


@pytest.mark.parametrize("path", [CHAT, LEGACY] + ([RESPONSES] if HAS_RESPONSES else []))
def test_complete_openai_streams_stay_ok(
    path: str, server: Any, spans: Any, openai_instrumented: Any
) -> None:
    """The control: the fake server's own streams end with their final chunk or event."""
    server.configure(stream_chunks=4)
    items = list(_open(_client(server), path))
    span = spans.one()
    _ok(span)
    assert span.attributes[sc.STREAM_CHUNKS] >= len(items) >= 4


def test_a_choice_left_unfinished_fails_the_stream(server: Any, spans: Any, openai_instrumented: Any) -> None:
    second = {**_chat_chunk("b"), "choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}
    server.respond_with(chunks=[_chat_chunk("a", "stop"), second], path=CHAT)
    list(_open(_client(server), CHAT))
    span = spans.one()
    _cut_off(span)
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop", "error")


def test_missing_usage_chunk_alone_is_not_a_failure(
    server: Any, spans: Any, openai_instrumented: Any
) -> None:
    """A server that ignores ``include_usage`` still finished the answer: not cut off."""
    server.respond_with(chunks=[_chat_chunk("Once", "stop")], path=CHAT)
    list(_open(_client(server), CHAT))
    span = spans.one()
    _ok(span)
    assert sc.USAGE_INPUT_TOKENS not in span.attributes


def test_break_early_is_abandoned_not_cut_off(server: Any, spans: Any, openai_instrumented: Any) -> None:
    server.configure(stream_chunks=6)
    stream = _open(_client(server), CHAT)
    for _ in stream:
        break
    stream.close()
    span = spans.one()
    _ok(span)
    assert span.attributes[sc.STREAM_ABANDONED] is True


_OLLAMA_BASE = {"model": "llama3", "created_at": "2024-01-01T00:00:00Z"}
OLLAMA_CUT_OFF = {
    "chat-no-chunk": ("chat", []),
    "chat-no-done": (
        "chat",
        [{**_OLLAMA_BASE, "message": {"role": "assistant", "content": w}, "done": False} for w in ("a", "b")],
    ),
    "generate-no-chunk": ("generate", []),
    "generate-no-done": ("generate", [{**_OLLAMA_BASE, "response": w, "done": False} for w in ("a", "b")]),
}


def _ollama_open(client: Any, op: str) -> Any:
    if op == "chat":
        return client.chat(model="llama3", messages=MESSAGES, stream=True)
    return client.generate(model="llama3", prompt="Tell me a story", stream=True)


@pytest.fixture
def oclient(server: Any) -> Iterator[ollama.Client]:
    c = ollama.Client(host=server.ollama_host)
    yield c
    c._client.close()


@pytest.mark.parametrize("case", list(OLLAMA_CUT_OFF))
def test_cut_off_ollama_stream_is_failed(
    case: str, server: Any, spans: Any, ollama_instrumented: Any, oclient: Any
) -> None:
    op, pieces = OLLAMA_CUT_OFF[case]
    server.respond_with(chunks=pieces, path=f"/api/{op}")
    got = list(_ollama_open(oclient, op))  # no exception, every piece the server sent
    assert [item.done for item in got] == [False] * len(pieces)
    span = spans.one()
    _cut_off(span)
    assert span.attributes.get(sc.STREAM_CHUNKS, 0) == len(pieces)


@pytest.mark.parametrize("case", list(OLLAMA_CUT_OFF))
async def test_cut_off_async_ollama_stream_is_failed(
    case: str, server: Any, spans: Any, ollama_instrumented: Any
) -> None:
    op, pieces = OLLAMA_CUT_OFF[case]
    server.respond_with(chunks=pieces, path=f"/api/{op}")
    client = ollama.AsyncClient(host=server.ollama_host)
    try:
        got = [item async for item in await _ollama_open(client, op)]
    finally:
        await client._client.aclose()
    assert len(got) == len(pieces)
    _cut_off(spans.one())


@pytest.mark.parametrize("op", ["chat", "generate"])
def test_complete_ollama_stream_stays_ok(
    op: str, server: Any, spans: Any, ollama_instrumented: Any, oclient: Any
) -> None:
    server.configure(stream_chunks=4)
    items = list(_ollama_open(oclient, op))
    span = spans.one()
    _ok(span)
    assert span.attributes[sc.STREAM_CHUNKS] == len(items)


def test_cut_off_stream_counts_as_an_error_in_prometheus(server: Any) -> None:
    registry = CollectorRegistry()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "cut"}))
    tracer_provider.add_span_processor(PrometheusMetricsProcessor(registry=registry))
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = start_metrics_server("127.0.0.1", 0, registry=registry)
    telemetry = Telemetry(tracer=make_tracer(tracer_provider), prices=PriceTable.bundled())
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, llm_otel_telemetry=telemetry)
    try:
        client = _client(server)
        list(_open(client, CHAT))  # a complete one
        server.respond_with(chunks=[], path=CHAT, done=False)
        assert list(_open(client, CHAT)) == []  # the cut-off one
        samples = scrape(f"http://127.0.0.1:{metrics.port}/metrics")
    finally:
        instrumentor.uninstrument()
        metrics.stop()
        tracer_provider.shutdown()
    assert len(exporter.get_finished_spans()) == 2
    by_status: dict[str, float] = {}
    for labels, value in samples.series("llm_otel_requests_total"):
        by_status[labels["status"]] = by_status.get(labels["status"], 0) + value
    assert by_status == {"ok": 1, "error": 1}
    errors = [
        labels
        for labels, value in samples.series("gen_ai_client_operation_duration_seconds_count")
        if value and labels.get("error_type")
    ]
    assert [labels["error_type"] for labels in errors] == [sc.ERROR_STREAM_INCOMPLETE]


# -- close() that raises ------------------------------------------------------------------------------
class CloseFailed(RuntimeError):
    pass


def _failing(*args: Any, **kwargs: Any) -> None:
    raise CloseFailed("connection reset while closing")


async def _afailing(*args: Any, **kwargs: Any) -> None:
    raise CloseFailed("connection reset while closing")


def _close_failed(span: Any) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE].endswith("CloseFailed")
    assert [e.name for e in span.events] == ["exception"]


def test_openai_close_that_raises_is_recorded(server: Any, spans: Any, openai_instrumented: Any) -> None:
    server.configure(stream_chunks=6)
    stream = _open(_client(server), CHAT)
    next(iter(stream))
    stream.response.close = _failing  # the HTTP response fails to close
    with pytest.raises(CloseFailed):
        stream.close()
    _close_failed(spans.one())
    with pytest.raises(CloseFailed):  # the caller still gets it; the span ended once
        stream.close()
    assert len(spans.genai()) == 1
    del stream.response.close


def test_openai_with_block_exit_that_raises_is_recorded(
    server: Any, spans: Any, openai_instrumented: Any
) -> None:
    server.configure(stream_chunks=6)
    with pytest.raises(CloseFailed), _open(_client(server), CHAT) as stream:
        for _ in stream:
            break
        stream.response.close = _failing  # the HTTP response fails to close when the block is left
    _close_failed(spans.one())
    del stream.response.close  # the client's own iterator closes it again when collected


async def test_openai_async_close_that_raises_is_recorded(
    server: Any, spans: Any, openai_instrumented: Any
) -> None:
    server.configure(stream_chunks=6)
    stream = await _open(_aclient(server), CHAT)
    await stream.__anext__()
    stream.response.aclose = _afailing
    with pytest.raises(CloseFailed):
        await stream.close()
    _close_failed(spans.one())
    del stream.response.aclose


async def test_openai_async_with_exit_that_raises_is_recorded(
    server: Any, spans: Any, openai_instrumented: Any
) -> None:
    server.configure(stream_chunks=6)
    stream = await _open(_aclient(server), CHAT)
    with pytest.raises(CloseFailed):
        async with stream:
            await stream.__anext__()
            stream.response.aclose = _afailing
    _close_failed(spans.one())
    del stream.response.aclose


def test_ollama_generator_close_that_raises_is_recorded(
    server: Any, spans: Any, ollama_instrumented: Any, oclient: Any
) -> None:
    """A generator whose cleanup fails: ``close()`` raises what its ``finally`` raised."""
    server.configure(stream_chunks=6)
    stream = _ollama_open(oclient, "chat")
    next(stream)
    response = stream.gi_frame.f_locals.get("r")  # the client's streamed httpx response, if it names it
    if response is None:
        pytest.skip("this ollama version names its streamed response differently")
    response.close = _failing
    with pytest.raises(CloseFailed):
        stream.close()
    _close_failed(spans.one())
    del response.close


async def test_ollama_async_generator_aclose_that_raises_is_recorded(
    server: Any, spans: Any, ollama_instrumented: Any
) -> None:
    server.configure(stream_chunks=6)
    client = ollama.AsyncClient(host=server.ollama_host)
    try:
        stream = await _ollama_open(client, "chat")
        await stream.__anext__()
        response = stream.ag_frame.f_locals.get("r")
        if response is None:
            pytest.skip("this ollama version names its streamed response differently")
        response.aclose = _afailing
        with pytest.raises(CloseFailed):
            await stream.aclose()
        del response.aclose
    finally:
        await client._client.aclose()
    _close_failed(spans.one())


# -- chunk count and timing ---------------------------------------------------------------------------
def test_chunk_count_and_time_per_chunk(server: Any, spans: Any, openai_instrumented: Any) -> None:
    server.configure(stream_chunks=5)
    server.set_fault("slow_chunks", times=1, delay=0.05)
    seen = 0
    for _ in _open(_client(server), CHAT):
        seen += 1
    attrs = spans.one().attributes
    chunks = attrs[sc.STREAM_CHUNKS]
    assert chunks == seen + 1  # the usage chunk llm-otel asked for and hid is counted too
    per_chunk = attrs[sc.STREAM_TIME_PER_OUTPUT_CHUNK]
    assert isinstance(per_chunk, float) and 0.02 < per_chunk < 5  # the server waited 0.05 s between pieces
    duration = (spans.one().end_time - spans.one().start_time) / 1e9
    assert per_chunk * (chunks - 1) <= duration


async def test_async_chunk_count(server: Any, spans: Any, openai_instrumented: Any) -> None:
    server.configure(stream_chunks=5)
    stream = await _open(_aclient(server), CHAT)
    seen = [chunk async for chunk in stream]
    attrs = spans.one().attributes
    assert attrs[sc.STREAM_CHUNKS] == len(seen) + 1
    assert attrs[sc.STREAM_TIME_PER_OUTPUT_CHUNK] >= 0


def test_one_chunk_has_no_time_per_chunk(server: Any, spans: Any, openai_instrumented: Any) -> None:
    server.respond_with(chunks=[_chat_chunk("Hi", "stop")], path=CHAT)
    list(_open(_client(server), CHAT))
    attrs = spans.one().attributes
    assert attrs[sc.STREAM_CHUNKS] == 1
    assert sc.STREAM_TIME_PER_OUTPUT_CHUNK not in attrs


def test_unread_stream_has_no_chunk_attributes(server: Any, spans: Any, openai_instrumented: Any) -> None:
    stream = _open(_client(server), CHAT)
    del stream
    gc.collect()
    attrs = spans.one().attributes
    assert sc.STREAM_CHUNKS not in attrs and sc.STREAM_TIME_PER_OUTPUT_CHUNK not in attrs


def test_next_and_for_share_one_count(server: Any, spans: Any, openai_instrumented: Any) -> None:
    """Pulling with ``next()`` and then a ``for`` loop (openai's own iterator both ways) counts each once."""
    server.configure(stream_chunks=4)
    plain = _dump(list(_open(_client(server), CHAT)))
    spans.clear()
    stream = _open(_client(server), CHAT)
    got = [next(stream), next(stream)]
    got += list(stream)
    assert len(got) == len(plain)
    assert spans.one().attributes[sc.STREAM_CHUNKS] == len(got) + 1
    _ok(spans.one())


def test_iterating_gives_a_generator_like_the_client(server: Any, openai_instrumented: Any) -> None:
    stream = _open(_client(server), CHAT)
    it = iter(stream)
    assert type(it).__name__ == "generator" and it is not stream
    list(it)
