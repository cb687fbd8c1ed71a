"""Every OpenAI endpoint × sync/async × stream/non-stream: one span with the conventions' attributes,
read back from the in-memory exporter; the values are checked against what the server actually sent."""

from __future__ import annotations

import contextlib
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from tests_support import HAS_RESPONSES, chat_parse_resource

from llm_otel import semconv as sc
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.testing import count_tokens

needs_responses = pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say this is a test"},
]
# fake server: each message costs its words + 3
EXPECTED_INPUT = count_tokens("You are terse.") + 3 + count_tokens("Say this is a test") + 3


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test-SECRET", max_retries=0)


@pytest.fixture
def aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test-SECRET", max_retries=0)


def _common(span: Any, op: str, model: str, server: Any) -> dict[str, Any]:
    attrs = dict(span.attributes)
    assert span.name == f"{op} {model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION] == op
    assert attrs[sc.PROVIDER] == "openai"
    assert attrs[sc.REQUEST_MODEL] == model
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == int(server.base_url.rsplit(":", 1)[1])
    return attrs


def test_chat_sync(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50
    )
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    assert isinstance(result, openai.types.chat.ChatCompletion)
    assert attrs[sc.RESPONSE_ID] == result.id
    assert attrs[sc.RESPONSE_MODEL] == result.model
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens == EXPECTED_INPUT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    # parameters the user did not send are not invented
    assert sc.REQUEST_TOP_P not in attrs and sc.REQUEST_STREAM not in attrs
    assert attrs[sc.PRICING_STATUS] == "priced"
    assert attrs[sc.USAGE_COST] > 0


async def test_chat_async(
    openai_instrumented: Any, spans: Any, server: Any, aclient: openai.AsyncOpenAI
) -> None:
    result = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    assert attrs[sc.REQUEST_CHOICE_COUNT] == 2
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens


def test_chat_stream_sync(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(stream)
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # llm-otel asked for usage; the user saw no usage-only chunk
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert attrs[sc.USAGE_INPUT_TOKENS] == EXPECTED_INPUT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == count_tokens(text)
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[sc.RESPONSE_ID] == chunks[0].id
    assert sc.STREAM_ABANDONED not in attrs


async def test_chat_stream_async(openai_instrumented: Any, spans: Any, server: Any, aclient: Any) -> None:
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    # the user asked for usage: the usage chunk is theirs
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert attrs[sc.USAGE_INPUT_TOKENS] == chunks[-1].usage.prompt_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens


def test_stream_chunks_unchanged(openai_instrumented: Any, server: Any, client: openai.OpenAI) -> None:
    """The user's loop sees exactly the chunks it would see uninstrumented."""
    seen = [
        c.model_dump(exclude={"id", "created", "obfuscation"})
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    ]
    OpenAIInstrumentor().uninstrument()
    plain = [
        c.model_dump(exclude={"id", "created", "obfuscation"})
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    ]
    assert "stream_options" not in server.requests[-1].json
    assert seen == plain


def test_cached_and_reasoning_tokens(openai_instrumented: Any, spans: Any, server: Any, client: Any) -> None:
    server.configure(cached_tokens=4, reasoning_tokens=7)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = dict(spans.one().attributes)
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens


class Answer(BaseModel):
    answer: str
    confidence: int


def test_chat_parse(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    parsed = chat_parse_resource(client).parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    assert attrs[sc.OUTPUT_TYPE] == "json"
    assert attrs[sc.USAGE_INPUT_TOKENS] == parsed.usage.prompt_tokens


def test_chat_stream_helper(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    with chat_parse_resource(client).stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == count_tokens(final.choices[0].message.content)
    assert final.usage is None  # unchanged: the helper never saw llm-otel's usage chunk


async def test_chat_stream_helper_async(
    openai_instrumented: Any, spans: Any, server: Any, aclient: Any
) -> None:
    async with chat_parse_resource(aclient).stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        async for _ in stream:
            pass
    attrs = _common(spans.one(), "chat", "gpt-4o-mini", server)
    assert attrs[sc.USAGE_INPUT_TOKENS] == EXPECTED_INPUT


@needs_responses
def test_responses_sync(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    result = client.responses.create(model="gpt-4.1-nano", input="Say this is a test", max_output_tokens=40)
    attrs = _common(spans.one(), "chat", "gpt-4.1-nano", server)
    assert attrs[sc.OPENAI_API_TYPE] == "responses"
    assert attrs[sc.RESPONSE_ID] == result.id
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.input_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == result.usage.output_tokens
    assert attrs[sc.REQUEST_MAX_TOKENS] == 40
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)


@needs_responses
async def test_responses_stream_async(
    openai_instrumented: Any, spans: Any, server: Any, aclient: Any
) -> None:
    stream = await aclient.responses.create(model="gpt-4.1-nano", input="Say this is a test", stream=True)
    events = [e async for e in stream]
    attrs = _common(spans.one(), "chat", "gpt-4.1-nano", server)
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert attrs[sc.USAGE_INPUT_TOKENS] == final.usage.input_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


@needs_responses
def test_responses_stream_helper(openai_instrumented: Any, spans: Any, server: Any, client: Any) -> None:
    with client.responses.stream(model="gpt-4.1-nano", input="Say this is a test") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    attrs = _common(spans.one(), "chat", "gpt-4.1-nano", server)
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens


@needs_responses
def test_responses_parse(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model="gpt-4.1-nano", input="Say this is a test", text_format=Answer)
    assert isinstance(parsed.output_parsed, Answer)
    attrs = _common(spans.one(), "chat", "gpt-4.1-nano", server)
    assert attrs[sc.USAGE_INPUT_TOKENS] == parsed.usage.input_tokens


@pytest.mark.parametrize("is_async", [False, True])
async def test_embeddings(
    openai_instrumented: Any, spans: Any, server: Any, client: Any, aclient: Any, is_async: bool
) -> None:
    inputs = ["first text to embed", "second"]
    if is_async:
        result = await aclient.embeddings.create(model="text-embedding-3-small", input=inputs, dimensions=8)
    else:
        result = client.embeddings.create(model="text-embedding-3-small", input=inputs, dimensions=8)
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert isinstance(result.data[0].embedding[0], float)
    attrs = _common(spans.one(), "embeddings", "text-embedding-3-small", server)
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens == 5
    assert sc.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[sc.EMBEDDINGS_DIMENSION_COUNT] == 8
    assert sc.REQUEST_ENCODING_FORMATS not in attrs  # the SDK's own base64 default is not the user's choice
    assert attrs[sc.PRICING_STATUS] == "priced"


@pytest.mark.parametrize("stream", [False, True])
async def test_legacy_completions(
    openai_instrumented: Any, spans: Any, server: Any, aclient: Any, stream: bool
) -> None:
    if stream:
        chunks = [
            c
            async for c in await aclient.completions.create(
                model="davinci-002", prompt="Say this is a test", max_tokens=2, stream=True
            )
        ]
        assert all(c.choices for c in chunks)
    else:
        await aclient.completions.create(model="davinci-002", prompt="Say this is a test", max_tokens=2)
    attrs = _common(spans.one(), "text_completion", "davinci-002", server)
    assert attrs[sc.USAGE_INPUT_TOKENS] == count_tokens("Say this is a test")
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == 2
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("length",)


def test_error_sets_error_type(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="missing-model", messages=MESSAGES)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "openai.NotFoundError"
    assert [e.name for e in span.events] == ["exception"]
    assert raised.value.status_code == 404


def test_rate_limit_error(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    server.set_fault("rate_limit", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert spans.one().attributes[sc.ERROR_TYPE] == "openai.RateLimitError"


def test_http_child_spans_nest_under_llm_span(openai_instrumented: Any, spans: Any, client: Any) -> None:
    """The LLM span is current while the client runs: a span started inside nests under it."""
    from opentelemetry import trace

    seen: list[Any] = []

    def hook(request: Any) -> None:
        seen.append(trace.get_current_span().get_span_context().span_id)

    client._client.event_hooks["request"].append(hook)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert seen == [spans.one().context.span_id]
    # and it is no longer current afterwards
    assert not trace.get_current_span().get_span_context().is_valid


def test_azure_provider(openai_instrumented: Any, spans: Any, server: Any) -> None:
    azure = openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint=server.base_url,
        azure_deployment="gpt-4o-mini",
        max_retries=0,
    )
    with contextlib.suppress(openai.APIStatusError):  # the fake server has no Azure paths
        azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert spans.one().attributes[sc.PROVIDER] == "azure.ai.openai"
