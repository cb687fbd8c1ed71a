"""Ollama stream exit paths (sync generators and AsyncClient async generators, chat and generate):
the user sees the same items, and exactly one span ends with the right status on every way out."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import ollama
import pytest
from opentelemetry.trace import StatusCode

from llm_otel import semconv as sc
from llm_otel.instrumentors.ollama import OllamaInstrumentor

MESSAGES = [{"role": "user", "content": "Tell me a long story about streams"}]


def _sync_chat(client: ollama.Client) -> Any:
    return client.chat(model="llama3", messages=MESSAGES, stream=True)


def _sync_generate(client: ollama.Client) -> Any:
    return client.generate(model="llama3", prompt="Tell me a long story about streams", stream=True)


async def _async_chat(client: ollama.AsyncClient) -> Any:
    return await client.chat(model="llama3", messages=MESSAGES, stream=True)


async def _async_generate(client: ollama.AsyncClient) -> Any:
    return await client.generate(model="llama3", prompt="Tell me a long story about streams", stream=True)


SYNC = pytest.mark.parametrize("open_stream", [_sync_chat, _sync_generate], ids=["chat", "generate"])
ASYNC = pytest.mark.parametrize("open_stream", [_async_chat, _async_generate], ids=["chat", "generate"])


@pytest.fixture
def client(server: Any) -> Iterator[ollama.Client]:
    server.configure(stream_chunks=8)
    c = ollama.Client(host=server.ollama_host)
    yield c
    c._client.close()  # not ``with``: Client is a context manager only since ollama 0.5


@pytest.fixture
async def aclient(server: Any) -> AsyncIterator[ollama.AsyncClient]:
    server.configure(stream_chunks=8)
    c = ollama.AsyncClient(host=server.ollama_host)
    yield c
    await c._client.aclose()


def _abandoned(span: Any) -> None:
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.STREAM_ABANDONED] is True
    # counts come only with the final chunk: an unfinished stream has none (never 0)
    assert sc.USAGE_INPUT_TOKENS not in span.attributes
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes


# -- sync ------------------------------------------------------------------------------------------------


@SYNC
def test_full_drain_same_items(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    OllamaInstrumentor().uninstrument()
    plain = [c.model_dump(exclude={"created_at"}) for c in open_stream(client)]
    OllamaInstrumentor().instrument(llm_otel_telemetry=ollama_instrumented)
    stream = open_stream(client)
    assert inspect.isgenerator(stream)  # the proxy keeps the type
    traced = [c.model_dump(exclude={"created_at"}) for c in stream]
    assert traced == plain and len(traced) == 9
    span = spans.one()
    assert span.status.status_code is StatusCode.UNSET
    assert sc.STREAM_ABANDONED not in span.attributes
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == traced[-1]["eval_count"]
    next(stream, None)  # after exhaustion: still one span
    assert len(spans.genai()) == 1


@SYNC
def test_break_then_close(
    ollama_instrumented: Any, spans: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    stream = open_stream(client)
    for _ in stream:
        break
    assert spans.genai() == []  # still open: the user may go on
    stream.close()
    span = spans.one()
    _abandoned(span)
    assert span.attributes[sc.RESPONSE_MODEL] == "llama3"
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    stream.close()
    assert len(spans.genai()) == 1


@SYNC
def test_error_raised_by_stream(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    server.set_fault("drop_midway", times=1, after_chunks=3)
    received = []
    with pytest.raises(httpx.HTTPError) as raised:
        for chunk in open_stream(client):
            received.append(chunk)
    assert len(received) >= 1
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert (
        span.attributes[sc.ERROR_TYPE] == f"{type(raised.value).__module__}.{type(raised.value).__qualname__}"
    )
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes


@SYNC
def test_malformed_line(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    server.set_fault("malformed_json", times=1, at_chunk=2)
    with pytest.raises(ValueError):  # json.JSONDecodeError, raised by the client's own parsing
        list(open_stream(client))
    assert spans.one().attributes[sc.ERROR_TYPE] == "json.decoder.JSONDecodeError"


@SYNC
def test_exception_in_loop_body(
    ollama_instrumented: Any, spans: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    stream = open_stream(client)
    with pytest.raises(KeyError):
        for _ in stream:
            raise KeyError("user bug")
    # a generator cannot see the user's exception: the span ends when the stream is let go
    assert spans.genai() == []
    del stream
    gc.collect()
    _abandoned(spans.one())


@SYNC
def test_unfinished_stream_collected(
    ollama_instrumented: Any, spans: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    stream = open_stream(client)
    next(stream)
    del stream
    gc.collect()
    _abandoned(spans.one())


@SYNC
def test_never_iterated_collected(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client, open_stream: Callable[..., Any]
) -> None:
    stream = open_stream(client)
    del stream
    gc.collect()
    span = spans.one()
    _abandoned(span)
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes
    assert server.requests == []  # ollama sends the request on the first next(): nothing went out


# -- async -----------------------------------------------------------------------------------------------


@ASYNC
async def test_async_full_drain(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)
    assert inspect.isasyncgen(stream)
    chunks = [c async for c in stream]
    span = spans.one()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == chunks[-1].prompt_eval_count
    assert span.attributes[sc.OLLAMA_EVAL_DURATION] == chunks[-1].eval_duration / 1e9


@ASYNC
async def test_async_break_then_aclose(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)
    async for _ in stream:
        break
    assert spans.genai() == []
    await stream.aclose()
    _abandoned(spans.one())
    await stream.aclose()
    assert len(spans.genai()) == 1


@ASYNC
async def test_async_error_raised_by_stream(
    ollama_instrumented: Any,
    spans: Any,
    server: Any,
    aclient: ollama.AsyncClient,
    open_stream: Callable[..., Any],
) -> None:
    server.set_fault("drop_midway", times=1, after_chunks=3)
    with pytest.raises(httpx.HTTPError) as raised:
        async for _ in await open_stream(aclient):
            pass
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert (
        span.attributes[sc.ERROR_TYPE] == f"{type(raised.value).__module__}.{type(raised.value).__qualname__}"
    )


@ASYNC
async def test_async_exception_in_loop_body(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)
    with pytest.raises(KeyError):
        async for _ in stream:
            raise KeyError("user bug")
    await stream.aclose()
    _abandoned(spans.one())


@ASYNC
async def test_async_cancel_while_waiting_for_chunk(
    ollama_instrumented: Any,
    spans: Any,
    server: Any,
    aclient: ollama.AsyncClient,
    open_stream: Callable[..., Any],
) -> None:
    server.set_fault("slow_chunks", times=1, delay=2.0)
    stream = await open_stream(aclient)

    async def drain() -> None:
        async for _ in stream:
            pass

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), timeout=0.3)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "asyncio.exceptions.CancelledError"
    await stream.aclose()
    assert len(spans.genai()) == 1


@ASYNC
async def test_async_task_cancelled_in_loop_body(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)

    in_body = asyncio.Event()

    async def reader() -> None:
        async for _ in stream:
            in_body.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(reader())
    await in_body.wait()  # the reader holds a chunk and sits in its loop body
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.aclose()
    _abandoned(spans.one())


@ASYNC
async def test_async_unfinished_stream_collected(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)
    await stream.__anext__()
    del stream
    gc.collect()
    _abandoned(spans.one())
    await asyncio.sleep(0.05)  # the loop's async-generator finalizer closes the HTTP response


@ASYNC
async def test_async_never_iterated_collected(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient, open_stream: Callable[..., Any]
) -> None:
    stream = await open_stream(aclient)
    del stream
    gc.collect()
    _abandoned(spans.one())


def test_lazy_stream_request_is_sent_inside_the_span(
    ollama_instrumented: Any, spans: Any, client: ollama.Client
) -> None:
    """ollama sends a streamed request on the first pull: the GenAI span is current then, so HTTP
    client spans nest under it."""
    from opentelemetry import trace

    seen: list[int] = []
    client._client.event_hooks["request"].append(
        lambda request: seen.append(trace.get_current_span().get_span_context().span_id)
    )
    items = list(_sync_chat(client))
    assert items
    assert seen == [spans.one().context.span_id]
