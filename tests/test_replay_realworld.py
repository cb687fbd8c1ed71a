"""Real recorded OpenAI traffic (shared/realworld beside the checkout, from public VCR cassettes) replayed
through the real openai client: every span must carry exactly
the facts derived from the recorded bodies."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode
from realworld import exchange_params
from tests_support import HAS_RESPONSES, client_http_module

from llm_otel import semconv as sc

httpx2 = client_http_module()  # httpx2 for openai 3.x, httpx for 1.x/2.x

EXCHANGES = exchange_params("openai_")


def _client(exchange: dict[str, Any], is_async: bool) -> Any:
    response = exchange["response"]

    def reply(request: Any) -> Any:
        headers = {
            k: v
            for k, v in response["headers"].items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return httpx2.Response(response["status"], headers=headers, content=response["body"].encode())

    transport = httpx2.MockTransport(reply)
    if is_async:
        return openai.AsyncOpenAI(
            base_url="https://api.openai.com/v1",
            api_key="k",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(transport=transport),
        )
    return openai.OpenAI(
        base_url="https://api.openai.com/v1",
        api_key="k",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=transport),
    )


def _method(client: Any, path: str) -> Any:
    resource = {
        "/v1/chat/completions": "chat.completions",
        "/v1/completions": "completions",
        "/v1/embeddings": "embeddings",
        "/v1/responses": "responses",
    }[path]
    for name in resource.split("."):
        client = getattr(client, name)
    return client.create


async def _run(exchange: dict[str, Any], is_async: bool) -> list[Any]:
    body = dict(exchange["request"]["body"])
    call = _method(_client(exchange, is_async), exchange["request"]["path"])
    known = inspect.signature(call).parameters
    extra = {k: body.pop(k) for k in list(body) if k not in known}  # params older clients lack
    if extra:
        body["extra_body"] = extra
    result = await call(**body) if is_async else call(**body)
    if body.get("stream"):
        if is_async:
            return [item async for item in result]
        return list(result)
    return [result]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("path", EXCHANGES)
async def test_replayed_exchange(openai_instrumented: Any, spans: Any, path: Path, is_async: bool) -> None:
    exchange = json.loads(path.read_text())
    facts = exchange["facts"]
    if facts["api"] == "openai.responses" and not HAS_RESPONSES:
        pytest.skip("openai client without the Responses API")
    if facts["status"] >= 400:
        with pytest.raises(openai.APIStatusError):
            await _run(exchange, is_async)
        span = spans.one()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[sc.ERROR_TYPE].startswith("openai.")
        assert span.attributes[sc.REQUEST_MODEL] == facts["request_model"]
        return
    items = await _run(exchange, is_async)
    span = spans.one()
    attrs = dict(span.attributes)
    assert span.name == f"{facts['operation']} {facts['request_model']}"
    assert attrs[sc.OPERATION] == facts["operation"]
    assert attrs[sc.PROVIDER] == "openai"
    assert attrs[sc.SERVER_ADDRESS] == "api.openai.com" and sc.SERVER_PORT not in attrs
    assert attrs.get(sc.RESPONSE_MODEL) == facts["model"]
    assert attrs.get(sc.RESPONSE_ID) == facts["id"]
    assert attrs.get(sc.USAGE_INPUT_TOKENS) == facts["input_tokens"]
    assert attrs.get(sc.USAGE_OUTPUT_TOKENS) == facts["output_tokens"]
    assert attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS) == facts["cached_input_tokens"]
    assert attrs.get(sc.USAGE_REASONING_OUTPUT_TOKENS) == facts["reasoning_tokens"]
    reasons = attrs.get(sc.RESPONSE_FINISH_REASONS)
    assert (list(reasons) if reasons else None) == facts["finish_reasons"]
    if facts.get("stream"):
        assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
        # the user saw every recorded chunk except a usage-only chunk llm-otel asked for itself
        if facts["api"] in ("openai.chat", "openai.completions"):
            asked = bool(exchange["request"]["body"].get("stream_options", {}).get("include_usage"))
            assert len(items) == facts["chunk_count"] - (0 if asked else facts.get("usage_only_chunks", 0))
    if facts["input_tokens"] is None:
        assert attrs[sc.PRICING_STATUS] == "unpriced" and sc.USAGE_COST not in attrs
    else:
        assert attrs[sc.PRICING_STATUS] in ("priced", "unpriced")
