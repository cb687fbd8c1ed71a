"""Self-hosted OpenAI-compatible servers (llama.cpp, vLLM, LM Studio, ...) behind the real ``openai`` client.

Without ``provider_hosts`` any host but Ollama's port is ``openai``, so a local model served under an OpenAI
model's name would be billed at OpenAI's list price; mapped to a self-hosted provider it is ``local``
(cost 0), mapped to any other name it is ``unpriced``. A stream whose server sends no usage gets no token
counts and no cost: nothing is invented, and the span says why. tests/test_llama_server.py checks the same
against a real llama.cpp server.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llm_otel import semconv as sc
from llm_otel.config import Settings, parse_provider_hosts
from llm_otel.instrumentors.call import Telemetry
from llm_otel.pricing import PriceTable
from llm_otel.pricing.lookup import SELF_HOSTED_PROVIDERS

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
TOKEN_ATTRIBUTES = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
)
COST_ATTRIBUTES = (sc.USAGE_COST, sc.COST_INPUT, sc.COST_OUTPUT)


@pytest.fixture
def client(server: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0) as c:
        yield c


def _port(server: Any) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _chunks_without_usage(model: str) -> list[dict[str, Any]]:
    """A chat stream as a server that ignores ``stream_options`` sends it: no usage chunk."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]


@pytest.mark.parametrize("provider", ["llama_cpp", "vllm", "lm_studio"])
def test_self_hosted_provider_is_local_never_an_openai_price(
    openai_instrumented: Telemetry, spans: Any, server: Any, client: openai.OpenAI, provider: str
) -> None:
    openai_instrumented.provider_hosts = {("127.0.0.1", _port(server)): provider}
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    call, stream = spans.genai()
    for span in (call, stream):
        attrs = span.attributes
        assert attrs[sc.PROVIDER] == provider
        assert attrs[sc.PRICING_STATUS] == "local"
        assert attrs[sc.PRICING_SOURCE] == "local"
        assert attrs[sc.USAGE_COST] == 0.0
        assert sc.PRICING_REASON not in attrs
    assert call.attributes[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert stream.attributes[sc.USAGE_OUTPUT_TOKENS] > 0  # the fake server honours stream_options


def test_unmapped_local_server_is_recorded_as_openai(
    openai_instrumented: Telemetry, spans: Any, client: openai.OpenAI
) -> None:
    """Why provider_hosts matters: by default the host says nothing, so OpenAI's list price applies."""
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert (attrs[sc.PROVIDER], attrs[sc.PRICING_STATUS]) == ("openai", "priced")
    assert attrs[sc.USAGE_COST] > 0


def test_host_mapped_to_an_unlisted_provider_is_unpriced(
    openai_instrumented: Telemetry, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.provider_hosts = {"127.0.0.1": "acme_gateway"}
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER] == "acme_gateway"
    assert attrs[sc.PRICING_STATUS] == "unpriced"
    assert attrs[sc.PRICING_REASON] == "unknown_model"
    assert not set(COST_ATTRIBUTES) & set(attrs)


def test_host_mapped_to_openai_keeps_openai_prices(
    openai_instrumented: Telemetry, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    """A gateway that forwards to OpenAI is billed as OpenAI: only self-hosted names are local."""
    openai_instrumented.provider_hosts = {("127.0.0.1", _port(server)): "openai"}
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert (attrs[sc.PROVIDER], attrs[sc.PRICING_STATUS]) == ("openai", "priced")


@pytest.mark.parametrize("include_usage", [None, True])
def test_stream_without_usage_invents_nothing(
    openai_instrumented: Telemetry, spans: Any, server: Any, client: openai.OpenAI, include_usage: Any
) -> None:
    chunks = _chunks_without_usage("gpt-4o-mini")
    server.respond_with(chunks=chunks)
    extra: dict[str, Any] = {} if include_usage is None else {"stream_options": {"include_usage": True}}
    got = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra))
    assert [c.model_dump(exclude_unset=True) for c in got] == chunks
    attrs = spans.one().attributes
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)
    assert not set(COST_ATTRIBUTES) & set(attrs)
    assert attrs[sc.PRICING_STATUS] == "unpriced"
    assert attrs[sc.PRICING_REASON] == "no_usage"  # gpt-4o-mini has a price; the server sent no counts
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)


def test_stream_without_usage_on_a_self_hosted_server_is_local(
    openai_instrumented: Telemetry, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.provider_hosts = {("127.0.0.1", _port(server)): "llama_cpp"}
    server.respond_with(chunks=_chunks_without_usage("tiny"))
    list(client.chat.completions.create(model="tiny", messages=MESSAGES, stream=True))
    attrs = spans.one().attributes
    assert not set(TOKEN_ATTRIBUTES) & set(attrs)
    assert (attrs[sc.PRICING_STATUS], attrs[sc.USAGE_COST]) == ("local", 0.0)


def test_every_self_hosted_provider_is_local_and_can_be_priced() -> None:
    table = PriceTable.load({"vllm/*": {"input": "0.01", "output": "0.02"}})
    for provider in SELF_HOSTED_PROVIDERS:
        for model in ("gpt-4o-mini", "claude-sonnet-4-5", "my-finetune", None):
            cost = table.cost(provider, model, 1_000_000, 1_000_000)
            expected = "priced" if provider == "vllm" else "local"
            assert cost.status == expected, (provider, model)
    assert table.cost("vllm", "x", 1_000_000, 1_000_000).source == "user:vllm/*"
    assert PriceTable.load(local_providers=()).cost("llama_cpp", "gpt-4o-mini", 1, 1).status == "unpriced"


def test_unpriced_reason() -> None:
    table = PriceTable.bundled()
    assert table.unpriced_reason("openai", "gpt-4o-mini") == "no_usage"
    assert table.unpriced_reason("openai", "no-such-model") == "unknown_model"
    assert table.unpriced_reason("acme_gateway", "gpt-4o-mini") == "unknown_model"


def test_provider_hosts_for_a_self_hosted_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_OTEL_PROVIDER_HOSTS", "127.0.0.1:8080=llama_cpp,gpu-box.internal=vllm")
    settings = Settings.resolve()
    assert settings.provider_hosts == {("127.0.0.1", 8080): "llama_cpp", "gpu-box.internal": "vllm"}


def test_readme_and_price_docs_list_every_self_hosted_provider() -> None:
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme.split("### Self-hosted servers", 1)[1].split("\n### ", 1)[0]
    prices_page = (root / "docs" / "prices.md").read_text()
    for name in SELF_HOSTED_PROVIDERS:
        assert f"`{name}`" in section, name
        assert f"`{name}`" in prices_page, name
    # the section's examples configure what they say
    (python_example,) = re.findall(r"provider_hosts=(\{.*?\})", section)
    (env_example,) = re.findall(r"LLM_OTEL_PROVIDER_HOSTS=(\S+)", section)
    expected = {("127.0.0.1", 8080): "llama_cpp", "gpu-box.internal": "vllm"}
    assert Settings.resolve(provider_hosts=ast.literal_eval(python_example)).provider_hosts == expected
    assert parse_provider_hosts("provider_hosts", env_example) == expected
