"""The fake LLM server, driven by the real openai (httpx2) and ollama (httpx) clients over real HTTP."""

from __future__ import annotations

import base64
import json
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from pydantic import BaseModel

from llm_otel.testing import (
    DEFAULT_REPLY,
    MESSAGE_OVERHEAD,
    THINKING_TEXT,
    FakeLLMServer,
    count_tokens,
    messages_input_tokens,
    responses_input_tokens,
)

MESSAGES: Any = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say this is a test"},
]
INPUT_TOKENS = count_tokens("You are a helpful assistant.") + count_tokens("Say this is a test") + 2 * 3
REPLY_WORDS = count_tokens(DEFAULT_REPLY)  # "This is a test." -> 4
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["location"],
        },
    },
}


@pytest.fixture(scope="module")
def module_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture
def srv(module_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    module_server.reset()
    yield module_server
    module_server.reset()


@pytest.fixture
def client(srv: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(srv: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0) as c:
        yield c


@pytest.fixture
def oclient(srv: FakeLLMServer) -> Iterator[ollama.Client]:
    c = ollama.Client(host=srv.ollama_host)
    yield c
    c._client.close()


def raw_post(srv: FakeLLMServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(srv.base_url + path, json=body, timeout=5)


def sse_data(text: str) -> list[Any]:
    """Parse an SSE body strictly: blocks separated by a blank line, each with one ``data:`` line."""
    assert text.endswith("\n\n")
    out: list[Any] = []
    for block in text[:-2].split("\n\n"):
        data = [line[len("data: ") :] for line in block.split("\n") if line.startswith("data: ")]
        assert len(data) == 1, block
        out.append(data[0] if data[0] == "[DONE]" else json.loads(data[0]))
    return out


# ---------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_urls_and_idempotent_stop() -> None:
    srv = FakeLLMServer()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    srv.start()
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.port > 0
    assert srv.openai_base_url == srv.base_url + "/v1"
    assert srv.ollama_host == srv.base_url
    url = srv.base_url
    assert httpx.get(url + "/api/version").json() == {"version": "0.12.3"}
    srv.stop()
    srv.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/version", timeout=1)


def test_count_tokens_formula() -> None:
    assert count_tokens("") == 0
    assert count_tokens("  Say this\nis  a test ") == 5
    assert messages_input_tokens(MESSAGES) == INPUT_TOKENS == 5 + 5 + 2 * MESSAGE_OVERHEAD
    assert responses_input_tokens("a b", "c") == 2 + 1 + 2 * MESSAGE_OVERHEAD


def test_configure_validates_and_reset_restores(srv: FakeLLMServer) -> None:
    with pytest.raises(ValueError):
        srv.configure(stream_chunks=0)
    with pytest.raises(ValueError):
        srv.set_fault("no_such_fault")
    srv.configure(reply="x", cached_tokens=2)
    srv.reset()
    assert srv.config.reply == DEFAULT_REPLY and srv.config.cached_tokens == 0


# --------------------------------------------------------------------------------- chat completions


def test_chat_non_stream_shape_usage_and_recording(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-request-id"].startswith("req_") and "openai-processing-ms" in raw.headers
    r = raw.parse()
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert r.choices[0].message.content == DEFAULT_REPLY and r.choices[0].finish_reason == "stop"
    assert r.system_fingerprint and r.service_tier == "default"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (INPUT_TOKENS, REPLY_WORDS)
    assert r.usage.total_tokens == INPUT_TOKENS + REPLY_WORDS
    assert r.usage.prompt_tokens_details and r.usage.prompt_tokens_details.cached_tokens == 0
    rec = srv.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["authorization"] == "Bearer test"
    assert rec.json["model"] == "gpt-4o-mini" and rec.json["messages"] == MESSAGES


def test_chat_cached_reasoning_and_cache_write_tokens(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.configure(cached_tokens=5, reasoning_tokens=7, cache_write_tokens=2)
    r = client.chat.completions.create(model="gpt-5-nano", messages=MESSAGES)
    assert r.usage is not None and r.usage.prompt_tokens_details and r.usage.completion_tokens_details
    assert r.usage.prompt_tokens == INPUT_TOKENS
    assert r.usage.prompt_tokens_details.cached_tokens == 5
    assert r.usage.prompt_tokens_details.cache_write_tokens == 2
    assert r.usage.completion_tokens == REPLY_WORDS + 7
    assert r.usage.completion_tokens_details.reasoning_tokens == 7
    srv.configure(cached_tokens=10_000)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert (
        r.usage
        and r.usage.prompt_tokens_details
        and r.usage.prompt_tokens_details.cached_tokens == INPUT_TOKENS
    )


def test_chat_stream_without_usage_wire_format(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == 1 + REPLY_WORDS + 1  # role chunk, one per word, finish chunk
    assert all(c.usage is None for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_REPLY
    assert chunks[-1].choices[0].finish_reason == "stop"
    r = raw_post(srv, "/v1/chat/completions", {"model": "m", "messages": MESSAGES, "stream": True})
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_data(r.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])  # as recorded when include_usage is not asked


def test_chat_stream_with_usage_and_stream_chunks(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.configure(reply="one two three four five six seven", stream_chunks=3, cached_tokens=4)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len(chunks) == 1 + 3 + 1 + 1
    assert [c.usage is None for c in chunks] == [True] * 5 + [False]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (INPUT_TOKENS, 7)
    assert last.usage.prompt_tokens_details and last.usage.prompt_tokens_details.cached_tokens == 4
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == srv.config.reply
    events = sse_data(
        raw_post(
            srv,
            "/v1/chat/completions",
            {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        ).text
    )
    assert (
        all(e["usage"] is None for e in events[:-2]) and events[-2]["usage"]["prompt_tokens"] == INPUT_TOKENS
    )


def test_chat_n2_non_stream_and_stream(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content == DEFAULT_REPLY for c in r.choices)
    assert r.usage and r.usage.completion_tokens == 2 * REPLY_WORDS
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, n=2, stream=True, stream_options={"include_usage": True}
        )
    )
    finishes = {
        c.choices[0].index: c.choices[0].finish_reason
        for c in chunks
        if c.choices and c.choices[0].finish_reason
    }
    assert finishes == {0: "stop", 1: "stop"}
    assert len(chunks) == 2 * (1 + REPLY_WORDS + 1) + 1
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens == 2 * REPLY_WORDS


def test_chat_tool_call_then_tool_result(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call: Any = (choice.message.tool_calls or [])[0]
    assert call.id.startswith("call_") and call.function.name == "get_current_weather"
    args = call.function.arguments
    assert json.loads(args) == {"location": "test"}
    assert r.usage and r.usage.completion_tokens == count_tokens(args)
    follow_up = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "70 degrees and sunny"},
    ]
    r2 = client.chat.completions.create(model="gpt-4o-mini", messages=follow_up, tools=[WEATHER_TOOL])
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content == DEFAULT_REPLY
    assert r2.usage and r2.usage.prompt_tokens == messages_input_tokens(follow_up)


def test_chat_stream_tool_call_via_stream_helper(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL]) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    tool_call: Any = (final.choices[0].message.tool_calls or [])[0]
    assert json.loads(tool_call.function.arguments) == {"location": "test"}


def test_chat_max_tokens_truncates_with_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=2)
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content == "This is"
    assert r.usage and r.usage.completion_tokens == 2
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=3, stream=True)
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "length" and len(chunks) == 1 + 3 + 1


class Address(BaseModel):
    city: str
    zip_code: int


class Person(BaseModel):
    name: str
    age: int
    height: float
    member: bool
    tags: list[str]
    address: Address
    nickname: str | None


def test_chat_parse_with_pydantic_and_json_mode(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Person)
    person = r.choices[0].message.parsed
    assert isinstance(person, Person) and person.address.zip_code == 1 and person.tags == ["test"]
    content = r.choices[0].message.content or ""
    assert r.usage and r.usage.completion_tokens == count_tokens(content)
    srv.configure(reply='{"answer": 42}')
    r2 = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(r2.choices[0].message.content or "") == {"answer": 42}


async def test_async_chat_and_stream(aclient: openai.AsyncOpenAI) -> None:
    r = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content == DEFAULT_REPLY
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert len(chunks) == 1 + REPLY_WORDS + 1 + 1
    assert chunks[-1].usage and chunks[-1].usage.prompt_tokens == INPUT_TOKENS


# -------------------------------------------------------------------------------------- responses


def test_responses_create_non_stream(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.configure(cached_tokens=3, reasoning_tokens=5)
    r = client.responses.create(model="gpt-4o-mini", input="Say this is a test", instructions="Be nice.")
    assert r.id.startswith("resp_") and r.status == "completed" and r.output_text == DEFAULT_REPLY
    assert [o.type for o in r.output] == ["reasoning", "message"]
    expected_in = responses_input_tokens("Say this is a test", "Be nice.")
    assert r.usage and (r.usage.input_tokens, r.usage.output_tokens) == (expected_in, REPLY_WORDS + 5)
    assert r.usage.input_tokens_details.cached_tokens == 3
    assert r.usage.output_tokens_details.reasoning_tokens == 5
    assert r.instructions == "Be nice."


def test_responses_stream_event_sequence(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.configure(stream_chunks=2)
    events = list(client.responses.create(model="gpt-4o-mini", input="Say this is a test", stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage and completed.response.usage.output_tokens == REPLY_WORDS
    created: Any = events[0]
    assert created.response.usage is None
    raw = raw_post(srv, "/v1/responses", {"model": "m", "input": "hi", "stream": True}).text
    blocks = raw[:-2].split("\n\n")
    assert all(b.startswith("event: response.") and "\ndata: {" in b for b in blocks)
    assert "[DONE]" not in raw


def test_responses_stream_helper_parse_and_tool_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Say this is a test") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text == DEFAULT_REPLY

    class Answer(BaseModel):
        answer: str
        confidence: float

    parsed = client.responses.parse(model="gpt-4o-mini", input="x", text_format=Answer).output_parsed
    assert parsed == Answer(answer="test", confidence=1.0)
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    r = client.responses.create(model="gpt-4.1-nano", input="weather?", tools=[tool])
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    assert r.usage and r.usage.output_tokens == count_tokens(call.arguments)


def test_responses_max_output_tokens_incomplete(client: openai.OpenAI) -> None:
    r = client.responses.create(model="gpt-4o-mini", input="x", max_output_tokens=2)
    assert (
        r.status == "incomplete"
        and r.incomplete_details
        and r.incomplete_details.reason == "max_output_tokens"
    )
    assert r.output_text == "This is"


# ------------------------------------------------------------------------- embeddings, completions


def test_embeddings_base64_default_float_and_dimensions(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    inputs = ["This is a test for embeddings", "second one"]
    default = client.embeddings.create(model="text-embedding-3-small", input=inputs)
    assert srv.requests[-1].json["encoding_format"] == "base64"  # the SDK asks for base64 and decodes it
    floats = client.embeddings.create(model="text-embedding-3-small", input=inputs, encoding_format="float")
    assert srv.requests[-1].json["encoding_format"] == "float"
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 1536
    assert default.usage.prompt_tokens == default.usage.total_tokens == 6 + 2
    small = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=8)
    assert len(small.data[0].embedding) == 8
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3]])
    assert tokens.usage.prompt_tokens == 3
    raw = raw_post(
        srv, "/v1/embeddings", {"model": "m", "input": "a", "encoding_format": "base64", "dimensions": 4}
    )
    vec = struct.unpack("<4f", base64.b64decode(raw.json()["data"][0]["embedding"]))
    assert abs(sum(x * x for x in vec) - 1.0) < 1e-5


def test_legacy_completions_json_and_stream(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    r = client.completions.create(model="davinci-002", prompt="Tell me a joke")
    assert r.object == "text_completion" and r.id.startswith("cmpl-") and r.choices[0].text == DEFAULT_REPLY
    assert r.usage and (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, REPLY_WORDS)
    chunks = list(client.completions.create(model="davinci-002", prompt="Tell me a joke", stream=True))
    assert len(chunks) == REPLY_WORDS and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    chunks = list(
        client.completions.create(
            model="davinci-002", prompt="Tell me", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.prompt_tokens == 2
    srv.configure(reply=" ".join(["w"] * 20))
    cut = client.completions.create(model="davinci-002", prompt="x")
    assert cut.choices[0].finish_reason == "length" and cut.usage and cut.usage.completion_tokens == 16


def test_models_and_missing_model_errors(client: openai.OpenAI) -> None:
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="this-model-does-not-exist", messages=MESSAGES)
    assert err.value.status_code == 404 and err.value.code == "model_not_found"
    assert err.value.type == "invalid_request_error" and err.value.param is None
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="missing-embedder", input="x")
    with pytest.raises(openai.BadRequestError) as bad:  # the Responses API answers 400 (recorded)
        client.responses.create(model="missing-model", input="x")
    assert bad.value.code == "model_not_found" and bad.value.param == "model"


# ------------------------------------------------------------------------------------------ ollama


def test_ollama_chat_non_stream_and_stream(srv: FakeLLMServer, oclient: ollama.Client) -> None:
    r = oclient.chat(model="llama3", messages=MESSAGES)
    assert r.message.role == "assistant" and r.message.content == DEFAULT_REPLY and r.done
    assert (r.prompt_eval_count, r.eval_count, r.done_reason) == (INPUT_TOKENS, REPLY_WORDS, "stop")
    assert r.eval_duration == REPLY_WORDS * 10_000_000 and r.total_duration and r.load_duration
    assert r.created_at and r.created_at.endswith("Z") and "T" in r.created_at
    assert srv.requests[-1].json["stream"] is False
    parts = list(oclient.chat(model="llama3", messages=MESSAGES, stream=True))
    assert len(parts) == REPLY_WORDS + 1 and [p.done for p in parts] == [False] * REPLY_WORDS + [True]
    assert "".join(p.message.content or "" for p in parts) == DEFAULT_REPLY
    assert parts[-1].eval_count == REPLY_WORDS and parts[0].eval_count is None
    raw = raw_post(srv, "/api/chat", {"model": "llama3", "messages": MESSAGES})  # HTTP API streams by default
    assert raw.headers["content-type"] == "application/x-ndjson"
    lines = raw.text.splitlines()
    assert len(lines) == REPLY_WORDS + 1 and json.loads(lines[-1])["done_reason"] == "stop"


def test_ollama_think_num_predict_tools_and_format(oclient: ollama.Client) -> None:
    r = oclient.chat(model="qwen3", messages=MESSAGES, think=True)
    assert r.message.thinking == THINKING_TEXT
    assert r.eval_count == REPLY_WORDS + count_tokens(THINKING_TEXT)
    parts = list(oclient.chat(model="qwen3", messages=MESSAGES, think=True, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == THINKING_TEXT
    cut = oclient.chat(model="llama3", messages=MESSAGES, options={"num_predict": 2})
    assert (cut.done_reason, cut.message.content, cut.eval_count) == ("length", "This is", 2)
    tool = oclient.chat(model="llama3.1", messages=MESSAGES, tools=[WEATHER_TOOL])
    calls = tool.message.tool_calls or []
    assert calls[0].function.name == "get_current_weather" and calls[0].function.arguments == {
        "location": "test"
    }
    fmt = oclient.chat(model="llama3", messages=MESSAGES, format=Address.model_json_schema())
    assert Address.model_validate_json(fmt.message.content or "") == Address(city="test", zip_code=1)


def test_ollama_generate_embed_and_misc(srv: FakeLLMServer, oclient: ollama.Client) -> None:
    g = oclient.generate(model="llama3", prompt="Tell me a joke")
    assert g.response == DEFAULT_REPLY and g.prompt_eval_count == 4 and g.eval_count == REPLY_WORDS
    assert g.context and len(g.context) == 4 + REPLY_WORDS
    parts = list(oclient.generate(model="llama3", prompt="Tell me a joke", stream=True))
    assert len(parts) == REPLY_WORDS + 1 and parts[-1].done and parts[-1].context
    e = oclient.embed(model="nomic-embed-text", input=["a b", "c"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 768 and e.prompt_eval_count == 3
    legacy = oclient.embeddings(model="llama3", prompt="all-minilm")
    assert len(legacy.embedding) == 768
    assert set(raw_post(srv, "/api/embeddings", {"model": "llama3", "prompt": "x"}).json()) == {"embedding"}
    assert "llama3:latest" in [m.model for m in oclient.list().models]
    assert oclient.show("llama3").capabilities


def test_ollama_missing_model_raises_response_error(oclient: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        oclient.chat(model="nonexistent-model:latest", messages=MESSAGES)
    assert err.value.status_code == 404 and err.value.error == "model 'nonexistent-model:latest' not found"


# ------------------------------------------------------------------------------------------ faults


def test_rate_limit_fault(srv: FakeLLMServer, client: openai.OpenAI, oclient: ollama.Client) -> None:
    srv.set_fault("rate_limit", times=1, retry_after=7)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert err.value.response.headers["retry-after"] == "7" and err.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
    srv.set_fault("rate_limit", times=1)
    with pytest.raises(ollama.ResponseError) as oerr:
        oclient.chat(model="llama3", messages=MESSAGES)
    assert oerr.value.status_code == 429


def test_times_counts_requests_and_sdk_retries(srv: FakeLLMServer) -> None:
    srv.set_fault(
        "rate_limit", times=2, retry_after=0.01
    )  # 0 < Retry-After <= 60: the SDK waits exactly that
    with openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=2) as retrying:
        r = retrying.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content == DEFAULT_REPLY
    assert len(srv.requests) == 3


def test_persistent_fault_path_filter_and_clear(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.set_fault("server_error", path="/v1/embeddings")
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.embeddings.create(model="text-embedding-3-small", input="x")
    srv.clear_faults()
    assert client.embeddings.create(model="text-embedding-3-small", input="x").data


def test_slow_first_byte_times_out(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.set_fault("slow_first_byte", times=1, delay=2.0)
    with pytest.raises(openai.APITimeoutError):  # the first byte came later than the client's 0.2 s
        client.with_options(timeout=0.2).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


def test_drop_midway_stream_openai_and_ollama(
    srv: FakeLLMServer, client: openai.OpenAI, oclient: ollama.Client
) -> None:
    srv.set_fault("drop_midway", times=1, after_chunks=2)
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            seen.append(chunk)
    assert len(seen) == 2
    srv.set_fault("drop_midway", times=1)
    with pytest.raises(openai.APIConnectionError):  # non-stream: Content-Length promised more than sent
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    srv.set_fault("drop_midway", times=1, after_chunks=3)
    got = []
    with pytest.raises(httpx.RemoteProtocolError):  # ollama does not wrap transport errors
        for part in oclient.chat(model="llama3", messages=MESSAGES, stream=True):
            got.append(part)
    assert len(got) == 3


async def test_drop_midway_async_stream(srv: FakeLLMServer, aclient: openai.AsyncOpenAI) -> None:
    srv.set_fault("drop_midway", times=1, after_chunks=1)
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 1


def test_malformed_json(srv: FakeLLMServer, client: openai.OpenAI, oclient: ollama.Client) -> None:
    srv.set_fault("malformed_json", times=1)
    with pytest.raises(json.JSONDecodeError):  # openai does not wrap a 200 body that is not JSON
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    srv.set_fault("malformed_json", times=1, at_chunk=1)
    seen = []
    with pytest.raises(json.JSONDecodeError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            seen.append(chunk)
    assert len(seen) == 1
    srv.set_fault("malformed_json", times=1)
    with pytest.raises(json.JSONDecodeError):
        list(oclient.chat(model="llama3", messages=MESSAGES, stream=True))
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


CHAT_BODY: Any = {
    "id": "chatcmpl-given",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "given-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "given"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


def test_respond_with_body_once_then_generated(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.respond_with(body={**CHAT_BODY, "model": "\ud800x"})  # a lone surrogate: sent as a JSON escape
    given = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert given.model == "\ud800x" and given.id == "chatcmpl-given"
    assert given.choices[0].message.content == "given" and given.usage and given.usage.total_tokens == 3
    generated = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert generated.model.startswith("gpt-4o-mini") and generated.choices[0].message.content == DEFAULT_REPLY


def test_respond_with_persistent_path_filter_status_and_clear(
    srv: FakeLLMServer, client: openai.OpenAI, oclient: ollama.Client
) -> None:
    srv.respond_with(body=CHAT_BODY, times=None, path="/v1/chat")
    for _ in range(3):
        assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).id == "chatcmpl-given"
    assert oclient.chat(model="llama3", messages=MESSAGES).message.content == DEFAULT_REPLY  # other path
    srv.clear_responses()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).id != "chatcmpl-given"
    srv.respond_with(body=b'{"error": {"message": "nope", "type": "x", "code": null}}', status=418, times=2)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert info.value.status_code == 418
    srv.respond_with(body=CHAT_BODY, times=None)
    srv.reset()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).id != "chatcmpl-given"
    with pytest.raises(ValueError):
        srv.respond_with()
    with pytest.raises(ValueError):
        srv.respond_with(body=CHAT_BODY, chunks=[])


def test_respond_with_sse_chunks(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    srv.respond_with(
        chunks=[
            {**chunk, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]},
            '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
            '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',  # JSON text as given
        ]
    )
    got = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert [c.choices[0].delta.content if c.choices else None for c in got] == ["a", None]
    assert got[1].usage and got[1].usage.total_tokens == 2  # and [DONE] ended the stream


@pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="openai < 1.66 has no Responses API")
def test_respond_with_responses_events_are_named(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="hi")
    final = response.model_dump(mode="json")
    srv.respond_with(
        chunks=[
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**final, "status": "in_progress"},
            },
            {"type": "response.completed", "sequence_number": 1, "response": final},
        ]
    )
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert [e.type for e in events] == ["response.created", "response.completed"]


def test_respond_with_ndjson_chunks_and_body(srv: FakeLLMServer, oclient: ollama.Client) -> None:
    base = {"model": "llama3", "created_at": "2024-01-01T00:00:00Z"}
    srv.respond_with(
        chunks=[
            {**base, "message": {"role": "assistant", "content": "x"}, "done": False},
            {**base, "message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 7},
        ],
        path="/api/chat",
    )
    parts = list(oclient.chat(model="llama3", messages=MESSAGES, stream=True))
    assert [p.message.content for p in parts] == ["x", ""] and parts[-1].eval_count == 7
    srv.respond_with(body={**base, "response": "given", "done": True})
    assert oclient.generate(model="llama3", prompt="hi").response == "given"


def test_client_breaking_early_does_not_hang_server(srv: FakeLLMServer, client: openai.OpenAI) -> None:
    srv.configure(reply=" ".join(["word"] * 20_000))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    srv.configure()
    # A server still busy writing the abandoned stream would make this call time out (no retries).
    fresh = client.with_options(timeout=5.0, max_retries=0)
    assert fresh.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


def test_concurrent_requests_are_all_recorded(srv: FakeLLMServer) -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(srv.base_url + "/api/chat", json={"model": "m", "messages": MESSAGES, "stream": False})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(srv.requests) == 16


def test_cli_prints_url_and_stops_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "llm_otel.testing", "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(url + "/api/version").status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
