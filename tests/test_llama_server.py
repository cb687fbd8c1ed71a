"""The real ``openai`` client against a real OpenAI-compatible server: ``python -m llama_cpp.server``.

Each call runs twice, uninstrumented and instrumented, against a tiny random-weight model (greedy decoding,
fixed seed: deterministic; tests/llama_support.py), in sync and async clients. The caller must see exactly
what an uninstrumented client sees (results, chunks, exceptions, ids and timestamps aside), and the span's
token counts must be the usage the server reported, never invented where it reported none (this server
ignores ``stream_options``, so its streams carry no usage). The server is mapped to the self-hosted provider
``llama_cpp`` (``provider_hosts``), so its calls are ``local``: cost 0, whatever the model is called.

Needs llama-cpp-python[server] and gguf (``bash .ci/llama-venv`` builds a venv with them; CI runs this file
there); skipped otherwise, or failed when ``LLM_OTEL_LLAMA_REQUIRED`` is set (CI).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path
from typing import Any

import llama_support
import openai
import pytest
from llama_support import CHAT_MODEL, EMBEDDING_MODEL, LlamaServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import StatusCode

from llm_otel import semconv as sc
from llm_otel.content import CaptureMode
from llm_otel.instrumentors.call import Telemetry, error_type
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.pricing import PriceTable

UNAVAILABLE = llama_support.unavailable()
if UNAVAILABLE and os.environ.get("LLM_OTEL_LLAMA_REQUIRED"):  # CI's llama step: never pass by skipping
    pytest.fail(UNAVAILABLE, pytrace=False)
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")

MESSAGES = [{"role": "user", "content": "Tell me a story about a llama."}]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 0}
TOKEN_ATTRIBUTES = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
)
#: Far past the 256-token context window (about 600 tokens).
TOO_LONG = "llamas " * 300
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["unit"],
        },
    },
}


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_support.running_server(tmp_path_factory.mktemp("llama")) as server:
        yield server


@pytest.fixture
def telemetry(llama: LlamaServer, provider: TracerProvider) -> Telemetry:
    return Telemetry(
        tracer=make_tracer(provider),
        prices=PriceTable.bundled(),
        capture=CaptureMode.NO_CONTENT,
        provider_hosts={("127.0.0.1", llama.port): "llama_cpp"},
    )


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, llama: LlamaServer) -> AsyncIterator[Any]:
    if request.param == "sync":
        with openai.OpenAI(base_url=llama.base_url, api_key="unused", max_retries=0, timeout=60) as c:
            yield c
    else:
        async with openai.AsyncOpenAI(
            base_url=llama.base_url, api_key="unused", max_retries=0, timeout=60
        ) as ac:
            yield ac


@contextmanager
def instrumented(telemetry: Telemetry, provider: TracerProvider) -> Iterator[None]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
    try:
        yield
    finally:
        instrumentor.uninstrument()


async def call(client: Any, method: str, **kwargs: Any) -> Any:
    """The call as its caller sees it: the result, a stream's chunks in a list, or the exception raised."""
    try:
        result = attrgetter(method)(client)(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, openai.Stream):
            return list(result)
        if isinstance(result, openai.AsyncStream):
            return [chunk async for chunk in result]
        return result
    except Exception as exc:
        return exc


def seen(value: Any) -> Any:
    """What the caller sees, without what differs on every call (ids, timestamps)."""
    if isinstance(value, BaseException):
        return (type(value), getattr(value, "status_code", None), getattr(value, "body", None), str(value))
    if isinstance(value, list):
        return [seen(v) for v in value]
    return _without_ids(value.model_dump())


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "created")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


async def twice(
    spans: Any, telemetry: Telemetry, provider: TracerProvider, make_call: Callable[[], Awaitable[Any]]
) -> tuple[Any, ReadableSpan]:
    """Run the call uninstrumented, then instrumented; assert the caller saw the same, return the
    instrumented result and its span."""
    plain = await make_call()
    assert spans.genai() == []
    with instrumented(telemetry, provider):
        result = await make_call()
    assert seen(result) == seen(plain)
    return result, spans.one()


def assert_usage_on_span(span: ReadableSpan, usage: Any) -> None:
    attrs = span.attributes or {}
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    if hasattr(usage, "completion_tokens"):
        assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert attrs[sc.PRICING_STATUS] == "local"
    assert attrs[sc.USAGE_COST] == 0.0


def assert_no_usage_on_span(span: ReadableSpan) -> None:
    attrs = span.attributes or {}
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)
    assert (attrs[sc.PRICING_STATUS], attrs[sc.USAGE_COST]) == ("local", 0.0)


def assert_server(span: ReadableSpan, llama: LlamaServer) -> None:
    attrs = span.attributes or {}
    assert attrs[sc.PROVIDER] == "llama_cpp"
    assert (attrs[sc.SERVER_ADDRESS], attrs[sc.SERVER_PORT]) == ("127.0.0.1", llama.port)


# --- chat ---------------------------------------------------------------------------------------------


async def test_chat(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def chat() -> Any:
        return await call(
            client, "chat.completions.create", model=CHAT_MODEL, messages=MESSAGES, max_tokens=8, **GREEDY
        )

    result, span = await twice(spans, telemetry, provider, chat)
    assert isinstance(result, openai.types.chat.ChatCompletion), result
    assert result.choices[0].message.content
    assert result.usage.completion_tokens > 0
    attrs = span.attributes or {}
    assert span.name == f"chat {CHAT_MODEL}"
    assert attrs[sc.OPERATION] == "chat"
    assert (attrs[sc.RESPONSE_MODEL], attrs[sc.RESPONSE_ID]) == (result.model, result.id)
    assert attrs[sc.RESPONSE_FINISH_REASONS] == tuple(c.finish_reason for c in result.choices)
    assert_usage_on_span(span, result.usage)
    assert_server(span, llama)
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
async def test_chat_stream(
    client: Any,
    llama: LlamaServer,
    spans: Any,
    telemetry: Telemetry,
    provider: TracerProvider,
    include_usage: bool,
) -> None:
    """llm-otel asks for usage when the caller did not; this server ignores ``stream_options`` either way,
    so there is no usage chunk to hide, and no token count on the span."""
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}

    async def stream() -> Any:
        return await call(
            client,
            "chat.completions.create",
            model=CHAT_MODEL,
            messages=MESSAGES,
            max_tokens=8,
            stream=True,
            **GREEDY,
            **extra,
        )

    chunks, span = await twice(spans, telemetry, provider, stream)
    assert isinstance(chunks, list) and len(chunks) > 2, chunks
    assert all(getattr(c, "usage", None) is None for c in chunks), "the server now sends usage"
    attrs = span.attributes or {}
    assert attrs[sc.RESPONSE_ID] == chunks[0].id
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (chunks[-1].choices[0].finish_reason,)
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sc.STREAM_ABANDONED not in attrs
    assert_no_usage_on_span(span)
    assert_server(span, llama)


async def test_stream_without_usage_under_an_openai_name_is_unpriced(
    llama: LlamaServer, spans: Any, provider: TracerProvider
) -> None:
    """Not mapped by provider_hosts, the server counts as OpenAI; its stream reports no usage, so the span
    has no token counts and no cost, and says why."""
    telemetry = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled())
    with openai.OpenAI(base_url=llama.base_url, api_key="unused", max_retries=0, timeout=60) as client:

        async def stream() -> Any:
            return await call(
                client,
                "chat.completions.create",
                model="gpt-4o-mini",
                messages=MESSAGES,
                max_tokens=4,
                stream=True,
                **GREEDY,
            )

        chunks, span = await twice(spans, telemetry, provider, stream)
    assert chunks and chunks[0].model == "gpt-4o-mini"
    attrs = span.attributes or {}
    assert attrs[sc.PROVIDER] == "openai"
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)
    assert sc.USAGE_COST not in attrs
    assert (attrs[sc.PRICING_STATUS], attrs[sc.PRICING_REASON]) == ("unpriced", "no_usage")


async def test_forced_tool_call(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def tool_call() -> Any:
        return await call(
            client,
            "chat.completions.create",
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "What is the weather in Lima?"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=48,
            **GREEDY,
        )

    result, span = await twice(spans, telemetry, provider, tool_call)
    assert isinstance(result, openai.types.chat.ChatCompletion), result
    (tool,) = result.choices[0].message.tool_calls
    assert tool.function.name == "get_weather"
    attrs = span.attributes or {}
    assert attrs[sc.RESPONSE_FINISH_REASONS] == tuple(c.finish_reason for c in result.choices)
    assert_usage_on_span(span, result.usage)


# --- legacy completions and embeddings ----------------------------------------------------------------


async def test_legacy_completion(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def complete() -> Any:
        return await call(
            client, "completions.create", model=CHAT_MODEL, prompt="Once upon a time", max_tokens=8, **GREEDY
        )

    result, span = await twice(spans, telemetry, provider, complete)
    assert isinstance(result, openai.types.Completion), result
    assert result.choices[0].text
    attrs = span.attributes or {}
    assert span.name == f"text_completion {CHAT_MODEL}"
    assert attrs[sc.OPERATION] == "text_completion"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == tuple(c.finish_reason for c in result.choices)
    assert_usage_on_span(span, result.usage)
    assert_server(span, llama)


async def test_legacy_completion_stream(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def stream() -> Any:
        return await call(
            client,
            "completions.create",
            model=CHAT_MODEL,
            prompt="Once upon a time",
            max_tokens=8,
            stream=True,
            **GREEDY,
        )

    chunks, span = await twice(spans, telemetry, provider, stream)
    assert isinstance(chunks, list) and len(chunks) > 2, chunks
    assert all(getattr(c, "usage", None) is None for c in chunks)
    attrs = span.attributes or {}
    assert attrs[sc.OPERATION] == "text_completion"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (chunks[-1].choices[0].finish_reason,)
    assert_no_usage_on_span(span)


async def test_embeddings(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def embed() -> Any:
        return await call(client, "embeddings.create", model=EMBEDDING_MODEL, input=["hello", "llama world"])

    result, span = await twice(spans, telemetry, provider, embed)
    assert isinstance(result, openai.types.CreateEmbeddingResponse), result
    assert len(result.data) == 2 and len(result.data[0].embedding) == 64
    attrs = span.attributes or {}
    assert span.name == f"embeddings {EMBEDDING_MODEL}"
    assert attrs[sc.OPERATION] == "embeddings"
    assert_usage_on_span(span, result.usage)
    assert_server(span, llama)


# --- errors -------------------------------------------------------------------------------------------


def assert_failed(span: ReadableSpan, exc: BaseException) -> None:
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[sc.ERROR_TYPE] == error_type(exc)
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)


async def test_bad_parameter(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def bad() -> Any:
        return await call(client, "chat.completions.create", model=CHAT_MODEL, messages=MESSAGES, top_p=5)

    exc, span = await twice(spans, telemetry, provider, bad)
    # this server answers a request its schema rejects with 500 and the validation error
    assert isinstance(exc, openai.APIStatusError), exc
    assert "less_than_equal" in str(exc)
    assert_failed(span, exc)


async def test_context_overflow(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    async def overflow() -> Any:
        return await call(
            client,
            "chat.completions.create",
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": TOO_LONG}],
            max_tokens=8,
            **GREEDY,
        )

    exc, span = await twice(spans, telemetry, provider, overflow)
    assert isinstance(exc, openai.BadRequestError), exc
    assert exc.code == "context_length_exceeded"
    assert_failed(span, exc)


async def overflowing_stream(client: Any) -> Any:
    """A stream past the context window, on a client of its own: the server cuts the body off, and the
    connection it leaves in the client's pool resets the next request on it (with or without llm-otel)."""
    fresh = type(client)(base_url=client.base_url, api_key="unused", max_retries=0, timeout=60)
    try:
        return await call(
            fresh,
            "chat.completions.create",
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": TOO_LONG}],
            max_tokens=8,
            stream=True,
            **GREEDY,
        )
    finally:
        closed = fresh.close()
        if inspect.isawaitable(closed):
            await closed


async def test_context_overflow_stream(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    """The server has sent 200 and the event-stream headers when it fails, then ends the body: the caller
    gets no chunk and no exception, with or without llm-otel; the span ends once and invents nothing."""
    chunks, span = await twice(spans, telemetry, provider, lambda: overflowing_stream(client))
    assert chunks == []
    attrs = span.attributes or {}
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)
    assert sc.RESPONSE_FINISH_REASONS not in attrs
    assert sc.STREAM_ABANDONED not in attrs


async def test_cut_off_stream_is_marked_failed(
    client: Any, llama: LlamaServer, spans: Any, telemetry: Telemetry, provider: TracerProvider
) -> None:
    """A stream that ends without its final chunk is a failure on the span (issue 15 item 2), while the
    caller still sees what an uninstrumented client sees."""
    chunks, span = await twice(spans, telemetry, provider, lambda: overflowing_stream(client))
    assert chunks == []
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {}).get(sc.ERROR_TYPE)


def test_generated_model_is_deterministic(llama: LlamaServer, tmp_path: Path) -> None:
    again = llama_support.write_tiny_llama(tmp_path / "again.gguf", llama_support.vocab_path())
    assert again.read_bytes() == llama.model.read_bytes()
