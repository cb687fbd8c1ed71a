"""Stream exit paths: exactly one ended span per call, with the right status, on every way out."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode
from tests_support import HAS_RESPONSES, chat_parse_resource

from llm_otel import semconv as sc

MESSAGES = [{"role": "user", "content": "Tell me a long story about streams"}]


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    server.configure(stream_chunks=8)
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def aclient(server: Any) -> openai.AsyncOpenAI:
    server.configure(stream_chunks=8)
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


def _stream(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


def test_full_drain(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    for _ in _stream(client):
        pass
    span = spans.one()
    assert span.status.status_code is StatusCode.UNSET
    assert sc.STREAM_ABANDONED not in span.attributes
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0


def test_break_inside_with(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    with _stream(client) as stream:
        assert isinstance(stream, openai.Stream)  # __enter__ returns the proxy, which keeps the type
        for _ in stream:
            break
        assert spans.genai() == []  # still open inside the block
    span = spans.one()
    assert span.attributes[sc.STREAM_ABANDONED] is True
    assert span.status.status_code is StatusCode.UNSET
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


def test_explicit_close(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    stream = _stream(client)
    next(iter(stream))
    stream.close()
    assert spans.one().attributes[sc.STREAM_ABANDONED] is True
    stream.close()  # idempotent: still one span
    assert len(spans.genai()) == 1


def test_never_iterated_then_collected(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    stream = _stream(client)
    assert spans.genai() == []
    del stream
    gc.collect()
    span = spans.one()
    assert span.attributes[sc.STREAM_ABANDONED] is True
    assert sc.RESPONSE_FINISH_REASONS not in span.attributes


def test_exception_in_loop_body_with_with(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    with pytest.raises(KeyError), _stream(client) as stream:
        for _ in stream:
            raise KeyError("user bug")
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "KeyError"


def test_exception_in_loop_body_without_with(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    def consume() -> None:
        for _ in _stream(client):
            raise ValueError("user bug")

    with pytest.raises(ValueError):
        consume()
    gc.collect()
    span = spans.one()
    assert span.attributes[sc.STREAM_ABANDONED] is True


def test_stream_fails_midway(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.set_fault("drop_midway", after_chunks=2)
    received = []
    with pytest.raises(Exception) as raised:
        for chunk in _stream(client):
            received.append(chunk)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert (
        span.attributes[sc.ERROR_TYPE] == f"{type(raised.value).__module__}.{type(raised.value).__qualname__}"
    )
    assert len(received) >= 1


def test_stream_attributes_pass_through(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    stream = _stream(client)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert hasattr(stream, "_iterator")  # libraries such as LiteLLM reach for it
    items = list(stream._iterator)  # consumed behind the proxy's back: the span still ends (as abandoned)
    assert items
    del stream
    gc.collect()
    assert len(spans.genai()) == 1


async def test_async_break_inside_async_with(openai_instrumented: Any, spans: Any, aclient: Any) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    async with stream as entered:
        assert entered is stream
        async for _ in entered:
            break
    assert spans.one().attributes[sc.STREAM_ABANDONED] is True


async def test_async_close(openai_instrumented: Any, spans: Any, aclient: Any) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    assert spans.one().attributes[sc.STREAM_ABANDONED] is True


async def test_async_full_drain(openai_instrumented: Any, spans: Any, aclient: Any) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    count = 0
    async for _ in stream:
        count += 1
    span = spans.one()
    assert count > 0 and sc.STREAM_ABANDONED not in span.attributes
    assert span.attributes[sc.USAGE_INPUT_TOKENS] > 0


async def test_async_cancelled_midway(
    openai_instrumented: Any, spans: Any, server: Any, aclient: Any
) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    server.set_fault("slow_first_byte", delay=0)  # no effect on an open stream; keeps the server honest

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
    await stream.close()
    span = spans.one()
    assert span.attributes[sc.STREAM_ABANDONED] is True


async def test_async_cancel_while_waiting_for_chunk(
    openai_instrumented: Any, spans: Any, server: Any, aclient: Any
) -> None:
    server.set_fault("slow_first_byte", delay=5)
    task = asyncio.create_task(
        aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    while not server.requests:  # the request is out; the client now waits for the first byte
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "asyncio.exceptions.CancelledError"


def test_chat_stream_helper_closed_early(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    with chat_parse_resource(client).stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            break
    assert spans.one().attributes[sc.STREAM_ABANDONED] is True


@pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")
def test_responses_stream_break(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    with client.responses.create(model="gpt-4.1-nano", input="hello there", stream=True) as stream:
        for _ in stream:
            break
    span = spans.one()
    assert span.attributes[sc.STREAM_ABANDONED] is True
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("error",)


def test_server_ignoring_include_usage_leaves_tokens_unset(openai_instrumented: Any, spans: Any) -> None:
    """Replay a real recorded stream that carries no usage chunk: tokens stay unset, nothing is guessed."""

    from tests_support import client_http_module

    httpx2 = client_http_module()
    from realworld import load_exchange

    body = load_exchange("openai_chat_stream_no_usage.json")["response"]["body"]
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode()
        )
    )
    client = openai.OpenAI(
        base_url="http://127.0.0.1:1/v1",
        api_key="k",
        http_client=openai.DefaultHttpxClient(transport=transport),
    )
    chunks = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
    assert chunks
    span = spans.one()
    assert sc.USAGE_INPUT_TOKENS not in span.attributes
    assert sc.USAGE_OUTPUT_TOKENS not in span.attributes
    assert sc.USAGE_COST not in span.attributes
    assert span.attributes[sc.PRICING_STATUS] == "unpriced"
