"""Captured content in the GenAI conventions' shapes (issue 10, items 1, 2, 3, 6, 7 and 11).

Real ``openai`` and ``ollama`` clients against the fake server; every span is read back from the in-memory
exporter and its content attributes compared as exact JSON with the shapes of the conventions' JSON schemas
(semantic-conventions-genai ``gen-ai-{input,output}-messages.json``, ``gen-ai-tool-definitions.json``):
tool calls ``{"type": "tool_call", "id"?, "name", "arguments": <parsed JSON>}``, tool results
``{"type": "tool_call_response", "id"?, "response"}``, tool definitions ``{"type", "name"}``, finish reasons
``stop | length | content_filter | tool_call | error`` inside messages. The content event
``gen_ai.client.inference.operation.details`` is read back from an in-memory log exporter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry._logs import _internal as logs_internal
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # opentelemetry-sdk before 1.35 (older than our floor) names it InMemoryLogExporter
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        InMemoryLogExporter as InMemoryLogRecordExporter,
    )

from llm_otel import guard
from llm_otel import semconv as sc
from llm_otel.content import CaptureMode
from llm_otel.instrumentors import content_events
from llm_otel.instrumentors.content_events import ContentEvents

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HISTORY = [
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "not json"},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 12 C"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "unknown city"}]},
    {"role": "user", "content": "And Rome?"},
]
HISTORY_JSON = [
    {"role": "system", "parts": [{"type": "text", "content": "You help with the weather."}]},
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"type": "tool_call", "id": "call_2", "name": "get_weather", "arguments": "not json"},
        ],
    },
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy, 12 C"}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_2", "response": "unknown city"}]},
    {"role": "user", "parts": [{"type": "text", "content": "And Rome?"}]},
]


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def capture(openai_instrumented: Any) -> Any:
    openai_instrumented.capture = CaptureMode.SPAN_ONLY
    return openai_instrumented


def _attr(span: Any, key: str) -> Any:
    value = span.attributes.get(key)
    return None if value is None else json.loads(value)


def _chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def _call_delta(index: int, call_id: str | None, name: str | None, fragment: str) -> dict[str, Any]:
    """A tool-call delta as OpenAI streams it: the first of a call has its id, type and name."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": fragment}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


# -- item 1: streamed tool calls -----------------------------------------------------------------------


def test_streamed_tool_call_is_a_tool_call_part(capture: Any, spans: Any, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL], stream=True
        )
    )
    call = next(
        c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls
    )
    span = spans.one()
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "test"}}
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)  # the provider's own value


async def test_streamed_tool_call_async(capture: Any, spans: Any, aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL], stream=True
    )
    ids = [
        c.choices[0].delta.tool_calls[0].id
        async for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert _attr(spans.one(), sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": ids[0], "name": "get_weather", "arguments": {"city": "test"}}
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_parallel_streamed_tool_calls_assemble_by_index(
    capture: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    """Two calls interleaved by index, arguments in fragments, text before them, one call not JSON."""
    server.respond_with(
        chunks=[
            _chunk({"role": "assistant", "content": "Checking "}),
            _chunk({"content": "both."}),
            _chunk(_call_delta(0, "call_a", "get_weather", "")),
            _chunk(_call_delta(1, "call_b", "get_time", '{"tz": ')),
            _chunk(_call_delta(0, None, None, '{"city": "Pa')),
            _chunk(_call_delta(1, None, None, '"CET"}')),
            _chunk(_call_delta(0, None, None, 'ris"}')),
            _chunk(_call_delta(2, "call_c", "broken", "{oops")),
            _chunk({}, "tool_calls"),
        ]
    )
    list(client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, stream=True))
    assert _attr(spans.one(), sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Checking both."},
                {"type": "tool_call", "id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
                {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": {"tz": "CET"}},
                {"type": "tool_call", "id": "call_c", "name": "broken", "arguments": "{oops"},
            ],
            "finish_reason": "tool_call",
        }
    ]


@pytest.mark.parametrize("numbering", ["every call 0", "no index"])
def test_streamed_tool_calls_from_servers_that_number_them_oddly(
    capture: Any, spans: Any, server: Any, client: openai.OpenAI, numbering: str
) -> None:
    """Whole calls in one delta each, all at index 0 or without an index: a new id is a new call."""

    def delta(call_id: str, name: str, args: str) -> dict[str, Any]:
        call: dict[str, Any] = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": args},
        }
        if numbering == "every call 0":
            call["index"] = 0
        return {"tool_calls": [call]}

    server.respond_with(
        chunks=[
            _chunk({"role": "assistant", "content": None}),
            _chunk(delta("call_a", "get_weather", '{"city": "Paris"}')),
            _chunk(delta("call_b", "get_weather", '{"city": "Rome"}')),
            _chunk({}, "tool_calls"),
        ]
    )
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, stream=True):
        pass
    assert _attr(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"type": "tool_call", "id": "call_b", "name": "get_weather", "arguments": {"city": "Rome"}},
    ]


def test_stream_without_capture_keeps_no_tool_calls(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL], stream=True
        )
    )
    span = spans.one()
    assert sc.OUTPUT_MESSAGES not in span.attributes and sc.TOOL_DEFINITIONS not in span.attributes
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)


# -- item 2: arguments parsed, tool results ------------------------------------------------------------


def test_tool_call_arguments_are_objects_in_input_and_output(
    capture: Any, spans: Any, client: openai.OpenAI
) -> None:
    result = client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL])
    call = result.choices[0].message.tool_calls[0]
    span = spans.one()
    assert _attr(span, sc.INPUT_MESSAGES) == HISTORY_JSON
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "test"}}
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_arguments_longer_than_the_part_limit_stay_cut_text(
    capture: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    capture.max_chars = 10
    long_args = json.dumps({"city": "Llanfairpwllgwyngyll"})
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": long_args}}
    server.respond_with(body=_completion({"content": None, "tool_calls": [call]}, "tool_calls"))
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    part = _attr(spans.one(), sc.OUTPUT_MESSAGES)[0]["parts"][0]
    assert part == {"type": "tool_call", "id": "c", "name": "f", "arguments": long_args[:10] + "…[truncated]"}


def test_responses_function_calls_and_outputs(capture: Any, spans: Any, client: openai.OpenAI) -> None:
    tools = [
        {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]},
        {"type": "web_search_preview"},
    ]
    response = client.responses.create(
        model="gpt-4o-mini",
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "rainy"},
            {"role": "user", "content": "And Rome?"},
        ],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    call = next(item for item in response.output if item.type == "function_call")
    span = spans.one()
    assert _attr(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy"}]},
        {"role": "user", "parts": [{"type": "text", "content": "And Rome?"}]},
    ]
    assert _attr(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert _attr(span, sc.TOOL_DEFINITIONS) == [
        {"type": "function", "name": "get_weather"},
        {"type": "web_search_preview", "name": "web_search_preview"},
    ]
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": call.call_id,
                    "name": "get_weather",
                    "arguments": {"city": "test"},
                }
            ],
            "finish_reason": "tool_call",
        }
    ]


@pytest.fixture
def ollama_client(server: Any) -> ollama.Client:
    return ollama.Client(host=server.ollama_host)


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_tool_calls_have_the_same_shape(
    ollama_instrumented: Any, spans: Any, ollama_client: ollama.Client, stream: bool
) -> None:
    ollama_instrumented.capture = CaptureMode.SPAN_ONLY
    result = ollama_client.chat(
        stream=stream,
        model="llama3.2",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "content": "rainy", "tool_name": "get_weather"},
            {"role": "user", "content": "And Rome?"},
        ],
        tools=[WEATHER_TOOL],
    )
    if stream:
        list(result)
    span = spans.one()
    assert _attr(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": "rainy"}]},
        {"role": "user", "parts": [{"type": "text", "content": "And Rome?"}]},
    ]
    assert _attr(span, sc.TOOL_DEFINITIONS) == [{"type": "function", "name": "get_weather"}]
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "test"}}],
            "finish_reason": "tool_call",
        }
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop",)  # what Ollama said


# -- item 3: tool definitions ----------------------------------------------------------------------------


def test_tool_definitions_from_chat_tools_and_legacy_functions(
    capture: Any, spans: Any, client: openai.OpenAI
) -> None:
    custom = {"type": "custom", "custom": {"name": "sql", "description": "runs SQL"}}
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        tools=[WEATHER_TOOL, custom],  # type: ignore[list-item]
        tool_choice="none",
    )
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        functions=[WEATHER_TOOL["function"]],  # type: ignore[list-item]
    )
    first, second = spans.genai()
    assert _attr(first, sc.TOOL_DEFINITIONS) == [
        {"type": "function", "name": "get_weather"},
        {"type": "custom", "name": "sql"},
    ]
    assert _attr(second, sc.TOOL_DEFINITIONS) == [{"type": "function", "name": "get_weather"}]
    # the conventions do not recommend descriptions and parameter schemas by default (size)
    assert "The weather in a city" not in first.attributes[sc.TOOL_DEFINITIONS]


def test_no_tool_definitions_without_tools(capture: Any, spans: Any, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert sc.TOOL_DEFINITIONS not in spans.one().attributes


# -- item 6: legacy function_call ------------------------------------------------------------------------


def test_legacy_function_call_response(capture: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    server.respond_with(
        body=_completion(
            {"content": None, "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            "function_call",
        )
    )
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": "{}"},
            },
            {"role": "function", "name": "get_weather", "content": "sunny"},
        ],
        functions=[WEATHER_TOOL["function"]],  # type: ignore[list-item]
    )
    assert result.choices[0].message.function_call.name == "get_weather"
    span = spans.one()
    assert _attr(span, sc.INPUT_MESSAGES)[1:] == [
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": "sunny"}]},
    ]
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Oslo"}}],
            "finish_reason": "tool_call",
        }
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("function_call",)


def test_legacy_function_call_stream(capture: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    server.respond_with(
        chunks=[
            _chunk({"role": "assistant", "content": None, "function_call": {"name": "get_weather"}}),
            _chunk({"function_call": {"arguments": '{"city":'}}),
            _chunk({"function_call": {"arguments": ' "Oslo"}'}}),
            _chunk({}, "function_call"),
        ]
    )
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    span = spans.one()
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Oslo"}}],
            "finish_reason": "tool_call",
        }
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("function_call",)


# -- item 7: finish reasons inside messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "conventions"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_call"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reason_in_messages_uses_the_conventions_values(
    capture: Any, spans: Any, server: Any, client: openai.OpenAI, raw: str, conventions: str, stream: bool
) -> None:
    if stream:
        server.respond_with(chunks=[_chunk({"role": "assistant", "content": "ok"}), _chunk({}, raw)])
        list(client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, stream=True))
    else:
        server.respond_with(body=_completion({"content": "ok"}, raw))
        client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY)
    span = spans.one()
    assert _attr(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": conventions}
    ]
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == (raw,)


def test_finish_reason_of_legacy_completions(
    capture: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.respond_with(
        body={
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"index": 0, "text": "cut", "finish_reason": "length", "logprobs": None}],
        }
    )
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say")
    assert _attr(spans.one(), sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "cut"}], "finish_reason": "length"}
    ]


# -- item 11: the content event through the Logs API -------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    if not content_events._LOGS:
        pytest.skip(
            "this opentelemetry-api has no event_name on log records (added in 1.35): content events stay "
            "span events (test_an_api_without_event_names_keeps_the_span_event)"
        )
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _records(exporter: InMemoryLogRecordExporter) -> list[Any]:
    return [getattr(r, "log_record", r) for r in exporter.get_finished_logs()]


def _check_event(record: Any, span: Any) -> dict[str, Any]:
    assert record.event_name == sc.EVENT_INFERENCE_DETAILS
    assert record.severity_number == SeverityNumber.DEBUG
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert not [e for e in span.events if e.name == sc.EVENT_INFERENCE_DETAILS]  # not twice
    return json.loads(json.dumps(dict(record.attributes)))  # tuples -> lists, for exact comparison


def test_event_only_with_a_logger_provider_emits_a_log_record(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, logs: Any
) -> None:
    provider, exporter = logs
    openai_instrumented.capture = CaptureMode.EVENT_ONLY
    openai_instrumented.events = ContentEvents(provider)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL])
    span = spans.one()
    assert sc.INPUT_MESSAGES not in span.attributes  # EVENT_ONLY: nothing on the span
    (record,) = _records(exporter)
    attrs = _check_event(record, span)
    call = result.choices[0].message.tool_calls[0]
    assert attrs[sc.INPUT_MESSAGES] == HISTORY_JSON  # structured, not JSON text
    assert attrs[sc.TOOL_DEFINITIONS] == [{"type": "function", "name": "get_weather"}]
    assert attrs[sc.OUTPUT_MESSAGES] == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "test"}}
            ],
            "finish_reason": "tool_call",
        }
    ]
    # the inference span's attributes, as the conventions' event carries them
    for key in (
        sc.OPERATION,
        sc.PROVIDER,
        sc.REQUEST_MODEL,
        sc.RESPONSE_ID,
        sc.USAGE_INPUT_TOKENS,
        sc.SERVER_PORT,
    ):
        assert attrs[key] == json.loads(json.dumps(span.attributes[key])), key
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert not any(key.startswith("llm_otel.") for key in attrs)


def test_the_global_logger_provider_is_used(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = logs
    openai_instrumented.capture = CaptureMode.SPAN_AND_EVENT
    list(client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, stream=True))
    assert not _records(exporter)  # no provider yet: a span event
    assert [e.name for e in spans.one().events] == [sc.EVENT_INFERENCE_DETAILS]
    spans.clear()
    monkeypatch.setattr(logs_internal, "_LOGGER_PROVIDER", provider)  # what set_logger_provider() sets
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, stream=True))
    span = spans.one()
    (record,) = _records(exporter)
    attrs = _check_event(record, span)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert attrs[sc.OUTPUT_MESSAGES] == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]
    assert json.loads(span.attributes[sc.OUTPUT_MESSAGES]) == attrs[sc.OUTPUT_MESSAGES]  # SPAN_AND_EVENT


def test_failed_call_event_carries_the_error(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI, logs: Any
) -> None:
    provider, exporter = logs
    openai_instrumented.capture = CaptureMode.EVENT_ONLY
    openai_instrumented.events = ContentEvents(provider)
    server.set_fault("server_error", times=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY)
    (record,) = _records(exporter)
    attrs = _check_event(record, spans.one())
    assert attrs[sc.ERROR_TYPE] == "openai.InternalServerError"
    assert attrs[sc.INPUT_MESSAGES] == HISTORY_JSON
    assert sc.OUTPUT_MESSAGES not in attrs


def test_a_failing_logger_falls_back_to_the_span_event(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(content_events, "_LOGS", True)  # the provider is asked even on an API before 1.35

    class Broken:
        def get_logger(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("logger provider bug")

    errors = guard.INSTRUMENTATION_ERRORS.labels("content.log_event")
    before = errors._value.get()
    openai_instrumented.capture = CaptureMode.EVENT_ONLY
    openai_instrumented.events = ContentEvents(Broken())
    result = client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY)
    assert result.choices[0].message.content  # the call is untouched
    assert errors._value.get() == before + 1  # contained and counted
    (event,) = [e for e in spans.one().events if e.name == sc.EVENT_INFERENCE_DETAILS]
    assert json.loads(event.attributes[sc.INPUT_MESSAGES]) == HISTORY_JSON


def test_standalone_instrumentor_takes_a_logger_provider(
    provider: Any, spans: Any, client: openai.OpenAI, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OpenAIInstrumentor().instrument(logger_provider=...)``, as with the official instrumentations."""
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    logger_provider, exporter = logs
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider, logger_provider=logger_provider)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY)
    finally:
        instrumentor.uninstrument()
    (record,) = _records(exporter)
    attrs = _check_event(record, spans.one())
    assert attrs[sc.INPUT_MESSAGES] == HISTORY_JSON


def test_an_api_without_event_names_keeps_the_span_event(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """opentelemetry-api before 1.35 cannot name a log record's event: the event stays on the span."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    monkeypatch.setattr(content_events, "_LOGS", False)
    openai_instrumented.capture = CaptureMode.EVENT_ONLY
    openai_instrumented.events = ContentEvents(provider)
    client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY, tools=[WEATHER_TOOL])
    span = spans.one()
    (event,) = [e for e in span.events if e.name == sc.EVENT_INFERENCE_DETAILS]
    assert json.loads(event.attributes[sc.INPUT_MESSAGES]) == HISTORY_JSON
    assert list(exporter.get_finished_logs()) == []
    provider.shutdown()
