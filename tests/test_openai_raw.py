"""``with_raw_response`` and ``with_streaming_response`` keep working exactly as without llm-otel."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from tests_support import HAS_RESPONSES

from llm_otel import semconv as sc
from llm_otel.instrumentors.openai import OpenAIInstrumentor

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


def test_raw_response_non_stream(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert raw.parse() is completion
    span = spans.one()
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert span.attributes[sc.RESPONSE_ID] == completion.id


def test_raw_response_stream(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert spans.genai() == []
    stream = raw.parse()
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert chunks and all(c.choices for c in chunks)
    span = spans.one()
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0


@pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")
async def test_raw_response_async(openai_instrumented: Any, spans: Any, aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.responses.with_raw_response.create(model="gpt-4.1-nano", input="hi there")
    assert raw.headers.get("x-request-id")
    response = raw.parse()
    span = spans.one()
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == response.usage.input_tokens


def test_streaming_response_parse(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as resp:
        assert resp.headers["content-type"].startswith("application/json")
        assert spans.genai() == []  # body not read yet
        completion = resp.parse()
    span = spans.one()
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens


def test_streaming_response_iter_lines_is_lazy(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as resp:
        lines = [line for line in resp.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
    span = spans.one()  # ended when the response closed, without usage (the user read raw lines)
    assert span.attributes[sc.REQUEST_STREAM] is True


async def test_async_streaming_response_stream_parse(
    openai_instrumented: Any, spans: Any, aclient: Any
) -> None:
    async with aclient.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as resp:
        stream = await resp.parse()
        assert isinstance(stream, openai.AsyncStream)
        chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    span = spans.one()
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0


def test_raw_wrapper_cached_before_uninstrument_passes_through(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    raw_api = client.chat.completions.with_raw_response  # caches the (wrapped) bound create
    raw_api.create(model="gpt-4o-mini", messages=MESSAGES).parse()
    assert len(spans.genai()) == 1
    OpenAIInstrumentor().uninstrument()  # raw_api still holds the wrapped create: it must pass through
    raw_api.create(model="gpt-4o-mini", messages=MESSAGES).parse()
    assert len(spans.genai()) == 1
