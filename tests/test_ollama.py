"""Ollama: every method × sync/async × stream/non-stream over real HTTP against the fake server, checked
against what the server actually sent (tokens, nanosecond timings -> seconds); module-level helpers,
errors, uninstrument, and an OpenAI client pointed at Ollama's /v1."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from ollama import chat as chat_bound_at_import  # bound before any instrument() ran
from opentelemetry.trace import SpanKind, StatusCode

from llm_otel import semconv as sc
from llm_otel.content import CaptureMode
from llm_otel.instrumentors.call import Telemetry
from llm_otel.instrumentors.ollama import OllamaInstrumentor
from llm_otel.testing import MESSAGE_OVERHEAD, THINKING_TEXT, count_tokens
from llm_otel.testing.ollama_routes import EVAL_NS_PER_TOKEN, LOAD_NS, OVERHEAD_NS, PROMPT_EVAL_NS_PER_TOKEN

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say this is a test"},
]
CHAT_INPUT = sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in MESSAGES)
PROMPT = "Tell me a joke about OpenTelemetry"
EMBED_INPUTS = ["first input text", "second one"]
#: a refused connection: ConnectionError on current ollama (0.4.8 has it), httpx.ConnectError on 0.4.0/0.4.1
REFUSED = (ConnectionError, httpx.ConnectError)
# parameters newer than the oldest supported ollama (0.4.0): the tests that send them skip there
HAS_THINK = "think" in inspect.signature(ollama.Client.chat).parameters
HAS_DIMENSIONS = "dimensions" in inspect.signature(ollama.Client.embed).parameters
needs_think = pytest.mark.skipif(not HAS_THINK, reason="this ollama has no think parameter")


@pytest.fixture
def client(server: Any) -> Iterator[ollama.Client]:
    c = ollama.Client(host=server.ollama_host)
    yield c
    c._client.close()  # not ``with``: Client is a context manager only since ollama 0.5


@pytest.fixture
async def aclient(server: Any) -> AsyncIterator[ollama.AsyncClient]:
    c = ollama.AsyncClient(host=server.ollama_host)
    yield c
    await c._client.aclose()


@pytest.fixture
def default_client_on_fake(server: Any) -> Iterator[None]:
    """Point the package's default client (behind ``ollama.chat`` etc.) at the fake server."""
    default = ollama._client  # the package's default Client() instance (not the module)
    original = default._client
    with httpx.Client(base_url=server.ollama_host, headers=original.headers) as fresh:
        default._client = fresh
        try:
            yield
        finally:
            default._client = original


def _port(server: Any) -> int:
    return int(server.ollama_host.rsplit(":", 1)[1])


def _common(span: Any, op: str, model: str, server: Any) -> dict[str, Any]:
    attrs = dict(span.attributes)
    assert span.name == f"{op} {model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION] == op
    assert attrs[sc.PROVIDER] == "ollama"
    assert attrs[sc.REQUEST_MODEL] == model
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == _port(server)
    assert attrs[sc.PRICING_STATUS] == "local"
    assert attrs[sc.USAGE_COST] == 0.0
    return attrs


def _check_usage(attrs: dict[str, Any], final: Any, input_tokens: int) -> None:
    """Tokens and timings exactly as the server sent them (timings: ns / 1e9)."""
    output_tokens = final.eval_count
    assert attrs[sc.USAGE_INPUT_TOKENS] == final.prompt_eval_count == input_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == output_tokens > 0
    assert attrs[sc.RESPONSE_MODEL] == final.model
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (final.done_reason,)
    assert attrs[sc.OLLAMA_TOTAL_DURATION] == final.total_duration / 1e9
    assert attrs[sc.OLLAMA_LOAD_DURATION] == final.load_duration / 1e9 == LOAD_NS / 1e9
    assert attrs[sc.OLLAMA_PROMPT_EVAL_DURATION] == final.prompt_eval_duration / 1e9
    assert attrs[sc.OLLAMA_EVAL_DURATION] == final.eval_duration / 1e9
    assert final.prompt_eval_duration == input_tokens * PROMPT_EVAL_NS_PER_TOKEN
    assert final.eval_duration == output_tokens * EVAL_NS_PER_TOKEN
    assert final.total_duration == LOAD_NS + final.prompt_eval_duration + final.eval_duration + OVERHEAD_NS
    assert attrs[sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND] == pytest.approx(1e9 / EVAL_NS_PER_TOKEN)


# -- chat / generate, sync and async, stream and not ------------------------------------------------------


def test_chat_sync(ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client) -> None:
    options = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "num_predict": 50, "seed": 7, "stop": ["\n\n"]}
    result = client.chat(model="llama3", messages=MESSAGES, options=options)
    attrs = _common(spans.one(), "chat", "llama3", server)
    _check_usage(attrs, result, CHAT_INPUT)
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    assert attrs[sc.REQUEST_SEED] == 7
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("\n\n",)
    # what the user did not send is not invented
    for absent in (
        sc.REQUEST_STREAM,
        sc.REQUEST_FREQUENCY_PENALTY,
        sc.OUTPUT_TYPE,
        sc.REQUEST_REASONING_LEVEL,
    ):
        assert absent not in attrs
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK not in attrs


@needs_think
def test_chat_sync_options_object_penalties_think_format(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    options = ollama.Options(frequency_penalty=0.5, presence_penalty=0.25, num_predict=3)
    result = client.chat(model="qwen3", messages=MESSAGES, options=options, think="high", format="json")
    attrs = _common(spans.one(), "chat", "qwen3", server)
    assert attrs[sc.REQUEST_FREQUENCY_PENALTY] == 0.5
    assert attrs[sc.REQUEST_PRESENCE_PENALTY] == 0.25
    assert attrs[sc.REQUEST_MAX_TOKENS] == 3
    assert attrs[sc.REQUEST_REASONING_LEVEL] == "high"
    assert attrs[sc.OUTPUT_TYPE] == "json"
    assert result.message.thinking == THINKING_TEXT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == result.eval_count


@needs_think
def test_think_bool_recorded_as_sent(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    client.chat(model="qwen3", messages=MESSAGES, think=True)
    assert spans.one().attributes[sc.REQUEST_REASONING_LEVEL] == "true"


def test_chat_num_predict_cut_reports_length(
    ollama_instrumented: Any, spans: Any, client: ollama.Client
) -> None:
    result = client.chat(model="llama3", messages=MESSAGES, options={"num_predict": 2})
    attrs = spans.one().attributes
    assert result.done_reason == "length"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("length",)
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == 2


def test_chat_sync_stream(ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client) -> None:
    server.configure(stream_chunks=5)
    stream = client.chat(model="llama3", messages=MESSAGES, stream=True)
    assert spans.genai() == []  # open until the stream ends
    chunks = list(stream)
    assert len(chunks) == 6 and chunks[-1].done
    attrs = _common(spans.one(), "chat", "llama3", server)
    _check_usage(attrs, chunks[-1], CHAT_INPUT)
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sc.STREAM_ABANDONED not in attrs


async def test_chat_async(
    ollama_instrumented: Any, spans: Any, server: Any, aclient: ollama.AsyncClient
) -> None:
    result = await aclient.chat(model="llama3", messages=MESSAGES, options={"temperature": 0})
    attrs = _common(spans.one(), "chat", "llama3", server)
    _check_usage(attrs, result, CHAT_INPUT)
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.0


async def test_chat_async_stream(
    ollama_instrumented: Any, spans: Any, server: Any, aclient: ollama.AsyncClient
) -> None:
    server.configure(stream_chunks=4)
    stream = await aclient.chat(model="llama3", messages=MESSAGES, stream=True)
    chunks = [c async for c in stream]
    attrs = _common(spans.one(), "chat", "llama3", server)
    _check_usage(attrs, chunks[-1], CHAT_INPUT)
    assert attrs[sc.REQUEST_STREAM] is True
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs


def test_generate_sync(ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client) -> None:
    result = client.generate(model="llama3", prompt=PROMPT, system="Be brief.", options={"num_predict": 40})
    attrs = _common(spans.one(), "text_completion", "llama3", server)
    _check_usage(attrs, result, count_tokens(PROMPT) + count_tokens("Be brief."))
    assert attrs[sc.REQUEST_MAX_TOKENS] == 40


def test_generate_sync_stream(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    server.configure(stream_chunks=3)
    chunks = list(client.generate(model="llama3", prompt=PROMPT, stream=True))
    attrs = _common(spans.one(), "text_completion", "llama3", server)
    _check_usage(attrs, chunks[-1], count_tokens(PROMPT))
    assert attrs[sc.REQUEST_STREAM] is True


async def test_generate_async(
    ollama_instrumented: Any, spans: Any, server: Any, aclient: ollama.AsyncClient
) -> None:
    result = await aclient.generate(model="llama3", prompt=PROMPT)
    _check_usage(_common(spans.one(), "text_completion", "llama3", server), result, count_tokens(PROMPT))


async def test_generate_async_stream(
    ollama_instrumented: Any, spans: Any, server: Any, aclient: ollama.AsyncClient
) -> None:
    chunks = [c async for c in await aclient.generate(model="llama3", prompt=PROMPT, stream=True)]
    attrs = _common(spans.one(), "text_completion", "llama3", server)
    _check_usage(attrs, chunks[-1], count_tokens(PROMPT))


# -- embeddings ------------------------------------------------------------------------------------------


def test_embed_sync(ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client) -> None:
    result = client.embed(model="nomic-embed-text", input=EMBED_INPUTS)
    attrs = _common(spans.one(), "embeddings", "nomic-embed-text", server)
    assert len(result.embeddings) == 2
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.prompt_eval_count == sum(map(count_tokens, EMBED_INPUTS))
    assert sc.USAGE_OUTPUT_TOKENS not in attrs  # not sent by the server: unset, never 0
    assert sc.EMBEDDINGS_DIMENSION_COUNT not in attrs
    assert attrs[sc.OLLAMA_TOTAL_DURATION] == result.total_duration / 1e9
    assert attrs[sc.OLLAMA_LOAD_DURATION] == result.load_duration / 1e9
    assert sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND not in attrs


@pytest.mark.skipif(not HAS_DIMENSIONS, reason="this ollama has no dimensions parameter")
def test_embed_dimensions(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    result = client.embed(model="nomic-embed-text", input=EMBED_INPUTS, dimensions=64)
    assert len(result.embeddings[0]) == 64
    assert spans.one().attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 64


async def test_embed_async(
    ollama_instrumented: Any, spans: Any, server: Any, aclient: ollama.AsyncClient
) -> None:
    result = await aclient.embed(model="nomic-embed-text", input="one two three")
    attrs = _common(spans.one(), "embeddings", "nomic-embed-text", server)
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.prompt_eval_count == 3


def test_legacy_embeddings_sync(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    result = client.embeddings(model="nomic-embed-text", prompt="all-minilm")
    span = spans.one()
    attrs = dict(span.attributes)
    assert span.name == "embeddings nomic-embed-text"
    assert attrs[sc.OPERATION] == "embeddings" and attrs[sc.PROVIDER] == "ollama"
    assert len(result.embedding) > 0
    # the legacy endpoint reports no counts and no model: nothing is invented
    for absent in (
        sc.USAGE_INPUT_TOKENS,
        sc.USAGE_OUTPUT_TOKENS,
        sc.RESPONSE_MODEL,
        sc.OLLAMA_TOTAL_DURATION,
    ):
        assert absent not in attrs


async def test_legacy_embeddings_async(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient
) -> None:
    await aclient.embeddings(model="nomic-embed-text", prompt="all-minilm")
    assert spans.one().attributes[sc.OPERATION] == "embeddings"


# -- other paths pass through -----------------------------------------------------------------------------


def test_non_inference_calls_are_not_traced(
    ollama_instrumented: Any, spans: Any, client: ollama.Client
) -> None:
    models = client.list()
    client.show("llama3")
    assert len(models.models) > 0
    assert spans.genai() == []


async def test_non_inference_calls_are_not_traced_async(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient
) -> None:
    await aclient.list()
    assert spans.genai() == []


def test_request_goes_out_unchanged(ollama_instrumented: Any, server: Any, client: ollama.Client) -> None:
    client.chat(model="llama3", messages=MESSAGES, options={"temperature": 0.1})
    sent = server.requests[-1]
    assert sent.path == "/api/chat"
    assert sent.json == {
        "model": "llama3",
        "messages": MESSAGES,
        "tools": [],
        "stream": False,
        "options": {"temperature": 0.1},
    }
    assert "traceparent" not in sent.headers


# -- content capture (opt-in) -----------------------------------------------------------------------------


def test_content_capture_chat_and_stream(
    ollama_instrumented: Telemetry, spans: Any, server: Any, client: ollama.Client
) -> None:
    ollama_instrumented.capture = CaptureMode.SPAN_ONLY
    result = client.chat(model="llama3", messages=MESSAGES)
    think = {"think": True} if HAS_THINK else {}
    chunks = list(client.chat(model="llama3", messages=MESSAGES, stream=True, **think))
    first, second = spans.genai()
    for span in (first, second):
        inputs = json.loads(span.attributes[sc.INPUT_MESSAGES])
        assert [m["role"] for m in inputs] == ["system", "user"]
        assert inputs[1]["parts"] == [{"type": "text", "content": "Say this is a test"}]
    out = json.loads(first.attributes[sc.OUTPUT_MESSAGES])
    assert out == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": result.message.content}],
            "finish_reason": "stop",
        }
    ]
    streamed = json.loads(second.attributes[sc.OUTPUT_MESSAGES])[0]
    text = "".join(c.message.content or "" for c in chunks)
    assert streamed["parts"] == [
        *([{"type": "reasoning", "content": THINKING_TEXT}] if HAS_THINK else []),
        {"type": "text", "content": text},
    ]


def test_content_capture_generate_system(
    ollama_instrumented: Telemetry, spans: Any, client: ollama.Client
) -> None:
    ollama_instrumented.capture = CaptureMode.SPAN_ONLY
    result = client.generate(model="llama3", prompt=PROMPT, system="Be brief.")
    attrs = spans.one().attributes
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES])[0]["parts"][0]["content"] == PROMPT
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": result.response}]


def test_content_not_captured_by_default(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    client.chat(model="llama3", messages=MESSAGES)
    attrs = spans.one().attributes
    assert sc.INPUT_MESSAGES not in attrs and sc.OUTPUT_MESSAGES not in attrs


# -- module-level helpers --------------------------------------------------------------------------------


def test_module_helpers_traced(
    ollama_instrumented: Any, spans: Any, server: Any, default_client_on_fake: None
) -> None:
    from ollama import generate as generate_bound_after

    chat_bound_at_import(model="llama3", messages=MESSAGES)
    ollama.chat(model="llama3", messages=MESSAGES)
    generate_bound_after(model="llama3", prompt=PROMPT)
    ollama.embed(model="nomic-embed-text", input="a b")
    ollama.embeddings(model="nomic-embed-text", prompt="a b")
    list(ollama.chat(model="llama3", messages=MESSAGES, stream=True))
    ops = [s.attributes[sc.OPERATION] for s in spans.genai()]
    assert ops == ["chat", "chat", "text_completion", "embeddings", "embeddings", "chat"]
    assert all(s.attributes[sc.SERVER_PORT] == _port(server) for s in spans.genai())


def test_module_helpers_in_fresh_interpreter(server: Any) -> None:
    """``from ollama import chat`` before instrument(), OLLAMA_HOST from the env; then uninstrument."""
    script = textwrap.dedent(
        """
        from ollama import chat, embed
        import ollama
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from llm_otel.instrumentors.ollama import OllamaInstrumentor

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        inst = OllamaInstrumentor()
        inst.instrument(tracer_provider=provider)
        chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
        embed(model="nomic-embed-text", input="x y")
        ollama.generate(model="llama3", prompt="hello")
        traced = [s.name for s in exporter.get_finished_spans()]
        inst.uninstrument()
        chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
        ollama.generate(model="llama3", prompt="hello")
        print(traced, len(exporter.get_finished_spans()))
        """
    )
    env = {**os.environ, "OLLAMA_HOST": server.ollama_host, "LLM_OTEL_PRICES": ""}
    env.pop("OLLAMA_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['chat llama3', 'embeddings nomic-embed-text', 'text_completion llama3'] 3"


# -- errors ----------------------------------------------------------------------------------------------


def _assert_error(span: Any, exc: BaseException) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix(
        "builtins."
    )
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert events[0].attributes["exception.type"].endswith(type(exc).__qualname__)


def test_model_not_found(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="nonexistent-model:latest", messages=MESSAGES)
    assert raised.value.status_code == 404
    assert "not found" in raised.value.error
    span = spans.one()
    _assert_error(span, raised.value)
    assert span.attributes[sc.ERROR_TYPE] == "ollama._types.ResponseError"
    assert span.attributes[sc.REQUEST_MODEL] == "nonexistent-model:latest"
    assert sc.USAGE_INPUT_TOKENS not in span.attributes


def test_model_not_found_stream(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    stream = client.generate(model="missing-model", prompt=PROMPT, stream=True)
    with pytest.raises(ollama.ResponseError) as raised:
        next(stream)
    assert raised.value.status_code == 404
    _assert_error(spans.one(), raised.value)


async def test_model_not_found_async(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient
) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        await aclient.embed(model="missing-embedder", input="x")
    _assert_error(spans.one(), raised.value)


async def test_model_not_found_async_stream(
    ollama_instrumented: Any, spans: Any, aclient: ollama.AsyncClient
) -> None:
    stream = await aclient.chat(model="missing-model", messages=MESSAGES, stream=True)
    with pytest.raises(ollama.ResponseError) as raised:
        await stream.__anext__()
    _assert_error(spans.one(), raised.value)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused(ollama_instrumented: Any, spans: Any, closed_port: int) -> None:
    client = ollama.Client(host=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(REFUSED) as raised:
        client.chat(model="llama3", messages=MESSAGES)
    span = spans.one()
    _assert_error(span, raised.value)
    assert span.attributes[sc.ERROR_TYPE] in ("ConnectionError", "httpx.ConnectError")
    assert span.attributes[sc.SERVER_PORT] == closed_port


def test_connection_refused_stream(ollama_instrumented: Any, spans: Any, closed_port: int) -> None:
    client = ollama.Client(host=f"http://127.0.0.1:{closed_port}")
    stream = client.chat(model="llama3", messages=MESSAGES, stream=True)
    with pytest.raises(httpx.ConnectError) as raised:  # the stream path does not translate it
        next(stream)
    _assert_error(spans.one(), raised.value)


async def test_connection_refused_async(ollama_instrumented: Any, spans: Any, closed_port: int) -> None:
    client = ollama.AsyncClient(host=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(REFUSED) as raised:
        await client.generate(model="llama3", prompt=PROMPT)
    await client._client.aclose()
    _assert_error(spans.one(), raised.value)


def test_server_error_status(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    server.set_fault("server_error", times=1)
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="llama3", messages=MESSAGES)
    assert raised.value.status_code == 500
    _assert_error(spans.one(), raised.value)


# -- instrument / uninstrument ----------------------------------------------------------------------------


def test_uninstrument_restores_everything(
    telemetry: Telemetry, provider: Any, spans: Any, client: ollama.Client, default_client_on_fake: None
) -> None:
    originals = (ollama.Client.__dict__["_request"], ollama.AsyncClient.__dict__["_request"])
    inst = OllamaInstrumentor()
    inst.instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
    try:
        assert ollama.Client.__dict__["_request"] is not originals[0]
        client.chat(model="llama3", messages=MESSAGES)
        chat_bound_at_import(model="llama3", messages=MESSAGES)
        assert len(spans.genai()) == 2
    finally:
        inst.uninstrument()
    assert (ollama.Client.__dict__["_request"], ollama.AsyncClient.__dict__["_request"]) == originals
    spans.clear()
    client.chat(model="llama3", messages=MESSAGES)
    chat_bound_at_import(model="llama3", messages=MESSAGES)
    ollama.generate(model="llama3", prompt=PROMPT)
    list(client.generate(model="llama3", prompt=PROMPT, stream=True))
    assert spans.genai() == []


def test_instrument_twice_one_span(
    telemetry: Telemetry, provider: Any, spans: Any, client: ollama.Client
) -> None:
    inst = OllamaInstrumentor()
    inst.instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
    try:
        OllamaInstrumentor().instrument(tracer_provider=provider, llm_otel_telemetry=telemetry)
        client.chat(model="llama3", messages=MESSAGES)
        assert len(spans.genai()) == 1
    finally:
        inst.uninstrument()
    client.chat(model="llama3", messages=MESSAGES)
    assert len(spans.genai()) == 1


def test_span_is_current_during_the_call(ollama_instrumented: Any, spans: Any, client: ollama.Client) -> None:
    """The GenAI span is the parent of what the client does (e.g. an httpx instrumentation's span)."""
    from opentelemetry import trace

    seen: list[Any] = []
    original = client._client.send

    def send(*args: Any, **kwargs: Any) -> Any:
        seen.append(trace.get_current_span().get_span_context().span_id)
        return original(*args, **kwargs)

    client._client.send = send  # type: ignore[method-assign]
    client.chat(model="llama3", messages=MESSAGES)
    assert seen == [spans.one().context.span_id]


# -- OpenAI client pointed at Ollama's OpenAI-compatible endpoint -----------------------------------------


def test_openai_client_on_mapped_ollama_host(openai_instrumented: Telemetry, spans: Any, server: Any) -> None:
    port = _port(server)
    openai_instrumented.provider_hosts = {("127.0.0.1", port): "ollama"}
    with openai.OpenAI(base_url=server.openai_base_url, api_key="ollama", max_retries=0) as client:
        result = client.chat.completions.create(model="llama3", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER] == "ollama"
    assert attrs[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert attrs[sc.PRICING_STATUS] == "local"
    assert attrs[sc.USAGE_COST] == 0.0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_openai_client_on_port_11434(openai_instrumented: Any, spans: Any) -> None:
    if not _port_free(11434):
        pytest.skip("port 11434 is in use")
    from llm_otel.testing import FakeLLMServer

    with (
        FakeLLMServer(port=11434) as srv,
        openai.OpenAI(base_url=srv.openai_base_url, api_key="ollama", max_retries=0) as client,
    ):
        client.embeddings.create(model="nomic-embed-text", input="hello world")
        list(client.chat.completions.create(model="llama3", messages=MESSAGES, stream=True))
    embed_span, chat_span = spans.genai()
    for span in (embed_span, chat_span):
        assert span.attributes[sc.PROVIDER] == "ollama"
        assert span.attributes[sc.SERVER_PORT] == 11434
        assert span.attributes[sc.PRICING_STATUS] == "local"
    assert chat_span.attributes[sc.USAGE_OUTPUT_TOKENS] > 0
