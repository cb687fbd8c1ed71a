"""Ollama: one odd request option or response value must cost that value only, never the span (issue 9).

Responses are given to the fake server with its public ``respond_with``; the real ollama client parses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import ollama
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from llm_otel import semconv as sc
from llm_otel.metrics_registry import REGISTRY

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
BASE: dict[str, Any] = {"model": "llama3", "created_at": "2024-01-01T00:00:00Z"}


def errors(site: str) -> float:
    return REGISTRY.get_sample_value("llm_otel_instrumentation_errors_total", {"site": site}) or 0.0


def final(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        **BASE,
        "message": {"role": "assistant", "content": "ok"},
        "done": True,
        "done_reason": "stop",
        "total_duration": 50_000_000,
        "load_duration": 5_000_000,
        "prompt_eval_count": 4,
        "prompt_eval_duration": 4_000_000,
        "eval_count": 2,
        "eval_duration": 20_000_000,
    }
    body.update(over)
    return body


@pytest.fixture
def client(server: Any) -> Iterator[ollama.Client]:
    c = ollama.Client(host=server.ollama_host)
    yield c
    c._client.close()


def test_unconvertible_option_still_gets_a_span(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    options: Any = {"temperature": "hot", "top_k": 5, "seed": [1], "stop": 7}
    with contextlib.suppress(Exception):  # whether the call fails is the client's and the server's business
        client.chat(model="llama3", messages=MESSAGES, options=options)
    if not server.requests:
        pytest.skip("this ollama refuses the options before sending the request")
    span = spans.one()
    attrs = span.attributes or {}
    assert sc.REQUEST_TEMPERATURE not in attrs and sc.REQUEST_SEED not in attrs
    assert sc.REQUEST_STOP_SEQUENCES not in attrs
    assert attrs[sc.REQUEST_TOP_K] == 5.0 and attrs[sc.REQUEST_MODEL] == "llama3"


def test_odd_response_values_cost_only_themselves(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    before = errors("span.usage"), errors("ollama.response")
    server.respond_with(
        body=final(model="llama3-\ud800", prompt_eval_count=2**63, eval_duration=10**400, load_duration=-1)
    )
    client.chat(model="llama3", messages=MESSAGES)
    span = spans.one()
    attrs = span.attributes or {}
    assert attrs[sc.RESPONSE_MODEL] == "llama3-\ufffd"
    assert sc.USAGE_INPUT_TOKENS not in attrs and attrs[sc.USAGE_OUTPUT_TOKENS] == 2
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.OLLAMA_TOTAL_DURATION] == 0.05 and attrs[sc.OLLAMA_PROMPT_EVAL_DURATION] == 0.004
    assert sc.OLLAMA_EVAL_DURATION not in attrs and sc.OLLAMA_LOAD_DURATION not in attrs
    assert sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND not in attrs
    assert (errors("span.usage"), errors("ollama.response")) == (before[0] + 1, before[1] + 2)
    assert encode_spans([span]).SerializeToString()


def test_stream_with_odd_final_counts(
    ollama_instrumented: Any, spans: Any, server: Any, client: ollama.Client
) -> None:
    server.respond_with(
        chunks=[
            {**BASE, "message": {"role": "assistant", "content": "o"}, "done": False},
            final(message={"role": "assistant", "content": "k"}, eval_count=-3),
        ]
    )
    assert [p.message.content for p in client.chat(model="llama3", messages=MESSAGES, stream=True)] == [
        "o",
        "k",
    ]
    attrs = spans.one().attributes or {}
    assert attrs[sc.USAGE_INPUT_TOKENS] == 4 and sc.USAGE_OUTPUT_TOKENS not in attrs
    assert attrs[sc.OLLAMA_EVAL_DURATION] == 0.02 and sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND not in attrs
    assert attrs[sc.PRICING_STATUS] == "local"
