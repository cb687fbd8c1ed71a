"""Real recorded Ollama traffic (shared/realworld/ollama_*.json beside the checkout, from public VCR
cassettes) replayed through the real ollama client: every span must carry exactly
the facts derived from the recorded bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from opentelemetry.trace import StatusCode
from realworld import exchange_params

from llm_otel import semconv as sc

EXCHANGES = exchange_params("ollama_")
TIMINGS = {
    "total_duration": sc.OLLAMA_TOTAL_DURATION,
    "load_duration": sc.OLLAMA_LOAD_DURATION,
    "prompt_eval_duration": sc.OLLAMA_PROMPT_EVAL_DURATION,
    "eval_duration": sc.OLLAMA_EVAL_DURATION,
}


def _transport(exchange: dict[str, Any]) -> httpx.MockTransport:
    response = exchange["response"]
    headers = {"content-type": response["headers"]["content-type"]}
    body = response["body"].encode()

    def reply(request: httpx.Request) -> httpx.Response:
        assert request.url.path == exchange["request"]["path"]
        return httpx.Response(response["status"], headers=headers, content=body)

    return httpx.MockTransport(reply)


def _call_args(exchange: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sent = exchange["request"]["body"]
    api = exchange["facts"]["api"]
    kwargs: dict[str, Any] = {"model": sent["model"]}
    if api == "ollama.chat":
        kwargs["messages"] = sent["messages"]
        kwargs["stream"] = bool(sent.get("stream"))
        return "chat", kwargs
    if api == "ollama.generate":
        kwargs["prompt"] = sent["prompt"]
        kwargs["stream"] = bool(sent.get("stream"))
        return "generate", kwargs
    kwargs["prompt"] = sent["prompt"]
    return "embeddings", kwargs


def _check(span: Any, facts: dict[str, Any], raised: BaseException | None) -> None:
    attrs = dict(span.attributes)
    assert attrs[sc.OPERATION] == facts["operation"]
    assert attrs[sc.PROVIDER] == facts["provider"] == "ollama"
    assert attrs[sc.REQUEST_MODEL] == facts["request_model"]
    if facts["status"] != 200:
        assert raised is not None and span.status.status_code is StatusCode.ERROR
        assert attrs[sc.ERROR_TYPE] == "ollama._types.ResponseError"
        return
    assert raised is None and span.status.status_code is StatusCode.UNSET
    assert attrs.get(sc.RESPONSE_MODEL) == facts["model"]
    assert attrs.get(sc.USAGE_INPUT_TOKENS) == facts["input_tokens"]
    assert attrs.get(sc.USAGE_OUTPUT_TOKENS) == facts["output_tokens"]
    reasons = attrs.get(sc.RESPONSE_FINISH_REASONS)
    assert (list(reasons) if reasons else None) == facts["finish_reasons"]
    timings = facts.get("server_timings_ns") or {}
    for field, name in TIMINGS.items():
        assert attrs.get(name) == (timings[field] / 1e9 if field in timings else None)
    if timings and facts["output_tokens"]:
        expected = facts["output_tokens"] / (timings["eval_duration"] / 1e9)
        assert attrs[sc.OLLAMA_OUTPUT_TOKENS_PER_SECOND] == pytest.approx(expected)
    if facts["stream"]:
        assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs


@pytest.mark.parametrize("path", EXCHANGES)
def test_replay_sync(ollama_instrumented: Any, spans: Any, path: Path) -> None:
    exchange = json.loads(path.read_text())
    method, kwargs = _call_args(exchange)
    client = ollama.Client(host="http://127.0.0.1:11434", transport=_transport(exchange))
    raised: BaseException | None = None
    try:
        result = getattr(client, method)(**kwargs)
        if kwargs.get("stream"):
            chunks = list(result)
            assert chunks[-1].done
    except ollama.ResponseError as exc:
        raised = exc
    _check(spans.one(), exchange["facts"], raised)


@pytest.mark.parametrize("path", EXCHANGES)
async def test_replay_async(ollama_instrumented: Any, spans: Any, path: Path) -> None:
    exchange = json.loads(path.read_text())
    method, kwargs = _call_args(exchange)
    client = ollama.AsyncClient(host="http://127.0.0.1:11434", transport=_transport(exchange))
    raised: BaseException | None = None
    try:
        result = await getattr(client, method)(**kwargs)
        if kwargs.get("stream"):
            chunks = [c async for c in result]
            assert chunks[-1].done
    except ollama.ResponseError as exc:
        raised = exc
    _check(spans.one(), exchange["facts"], raised)
