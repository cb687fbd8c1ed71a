"""Request parameters are read from what openai actually sends: keywords merged with ``extra_body`` (whose
keys win, as in openai's own merge), checked against the body the fake server received."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from tests_support import HAS_RESPONSES

from llm_otel import semconv as sc

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
needs_responses = pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def test_chat_parameters_in_extra_body_are_recorded(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_body={
            "service_tier": "flex",
            "temperature": 0.3,
            "max_completion_tokens": 40,
            "seed": 9,
            "reasoning_effort": "low",
            "top_p": 0.5,
            "stop": ["END"],
        },
    )
    sent = server.requests[-1].json
    attrs = spans.one().attributes
    assert attrs[sc.OPENAI_REQUEST_SERVICE_TIER] == sent["service_tier"] == "flex"
    assert attrs[sc.REQUEST_TEMPERATURE] == sent["temperature"] == 0.3
    assert attrs[sc.REQUEST_MAX_TOKENS] == sent["max_completion_tokens"] == 40
    assert attrs[sc.REQUEST_SEED] == sent["seed"] == 9
    assert attrs[sc.REQUEST_REASONING_LEVEL] == sent["reasoning_effort"] == "low"
    assert attrs[sc.REQUEST_TOP_P] == 0.5
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)


def test_extra_body_wins_over_the_keyword_as_in_openai(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.9,
        max_tokens=10,
        extra_body={"temperature": 0.1, "max_tokens": 20, "model": "gpt-4o"},
    )
    sent = server.requests[-1].json
    span = spans.one()
    assert sent["temperature"] == 0.1 and sent["max_tokens"] == 20 and sent["model"] == "gpt-4o"
    assert span.attributes[sc.REQUEST_TEMPERATURE] == 0.1
    assert span.attributes[sc.REQUEST_MAX_TOKENS] == 20
    assert span.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert span.name == "chat gpt-4o"


def test_omit_in_extra_body_removes_the_keyword(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    omit = getattr(openai, "omit", None)
    if omit is None:
        pytest.skip("openai client without the omit sentinel")
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.9, extra_body={"temperature": omit}
    )
    assert "temperature" not in server.requests[-1].json
    assert sc.REQUEST_TEMPERATURE not in spans.one().attributes


@needs_responses
def test_responses_and_embeddings_read_extra_body(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    client.responses.create(
        model="gpt-4o-mini",
        input="hi",
        extra_body={"max_output_tokens": 33, "reasoning": {"effort": "high"}, "service_tier": "priority"},
    )
    attrs = spans.one().attributes
    assert attrs[sc.REQUEST_MAX_TOKENS] == 33
    assert attrs[sc.REQUEST_REASONING_LEVEL] == "high"
    assert attrs[sc.OPENAI_REQUEST_SERVICE_TIER] == "priority"
    spans.clear()
    client.embeddings.create(model="text-embedding-3-small", input="hi", extra_body={"dimensions": 64})
    assert server.requests[-1].json["dimensions"] == 64
    assert spans.one().attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 64


def test_async_client_reads_extra_body(openai_instrumented: Any, spans: Any, server: Any) -> None:
    aclient = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    asyncio.run(
        aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_body={"seed": 4})
    )
    assert spans.one().attributes[sc.REQUEST_SEED] == 4


def test_stream_options_in_extra_body_keep_exact_stream_usage(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    """The user's stream_options sent through extra_body replace the keyword's; llm-otel's include_usage
    goes there too, so the stream is still priced and the user's loop sees no usage chunk."""
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_body={"stream_options": {}}
        )
    )
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_OUTPUT_TOKENS] > 0 and attrs[sc.USAGE_COST] > 0
    spans.clear()
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            extra_body={"stream_options": {"include_usage": True}},
        )
    )
    assert chunks[-1].usage is not None  # asked for by the user: shown to the user
    assert spans.one().attributes[sc.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens


def test_stream_in_extra_body_is_not_the_clients_stream(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    """``stream`` is recorded from the keyword, which decides how the client reads the answer."""
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_body={"stream": False})
    assert sc.REQUEST_STREAM not in spans.one().attributes
