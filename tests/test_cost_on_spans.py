"""Cost on every GenAI span: exact Decimal-derived USD, explicit pricing status, attribution tags."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

import llm_otel
from llm_otel import semconv as sc
from llm_otel.pricing import PriceTable

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
M = Decimal(1_000_000)


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def test_priced_call_is_exact(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.configure(cached_tokens=3, reasoning_tokens=2)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usage = result.usage
    cached = usage.prompt_tokens_details.cached_tokens
    expected = (
        (usage.prompt_tokens - cached) * Decimal("0.15") / M
        + cached * Decimal("0.075") / M
        + usage.completion_tokens * Decimal("0.60") / M
    )
    attrs = spans.one().attributes
    assert attrs[sc.PRICING_STATUS] == "priced"
    assert Decimal(repr(attrs[sc.USAGE_COST])) == expected
    assert Decimal(repr(attrs[sc.COST_INPUT])) + Decimal(repr(attrs[sc.COST_OUTPUT])) == expected
    assert attrs[sc.PRICING_SOURCE].endswith("openai/gpt-4o-mini")


def test_unknown_model_is_unpriced_not_free(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="acme-private-llm", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.PRICING_STATUS] == "unpriced"
    assert sc.USAGE_COST not in attrs and sc.COST_INPUT not in attrs
    assert attrs[sc.USAGE_INPUT_TOKENS] > 0


def test_user_price_wins(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    openai_instrumented.prices = PriceTable.load({"acme-private-llm": {"input": "1", "output": "2"}})
    result = client.chat.completions.create(model="acme-private-llm", messages=MESSAGES)
    attrs = spans.one().attributes
    expected = (result.usage.prompt_tokens * 1 + result.usage.completion_tokens * 2) / M
    assert attrs[sc.PRICING_STATUS] == "priced"
    assert Decimal(repr(attrs[sc.USAGE_COST])) == expected
    assert attrs[sc.PRICING_SOURCE] == "user:openai/acme-private-llm"


def test_openai_client_on_ollama_port_is_local(openai_instrumented: Any, spans: Any, server: Any) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    openai_instrumented.provider_hosts = {("127.0.0.1", port): "ollama"}
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="ollama", max_retries=0)
    client.chat.completions.create(model="llama3.2", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.PROVIDER] == "ollama"
    assert attrs[sc.PRICING_STATUS] == "local"
    assert attrs[sc.USAGE_COST] == 0.0


def test_attribution_tags_on_spans(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    with llm_otel.attributes(tenant="acme", feature="search"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    tagged, untagged = spans.genai()
    assert tagged.attributes["llm_otel.tag.tenant"] == "acme"
    assert tagged.attributes["llm_otel.tag.feature"] == "search"
    assert not any(k.startswith("llm_otel.tag.") for k in untagged.attributes)


async def test_attribution_follows_async_tasks(openai_instrumented: Any, spans: Any, server: Any) -> None:
    import asyncio

    aclient = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)

    async def one(tenant: str) -> None:
        with llm_otel.attributes(tenant=tenant):
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    await asyncio.gather(one("a"), one("b"), one("c"))
    assert sorted(s.attributes["llm_otel.tag.tenant"] for s in spans.genai()) == ["a", "b", "c"]


def test_attribution_crosses_services_in_baggage(openai_instrumented: Any, spans: Any, client: Any) -> None:
    """Service A sets tags; W3C baggage carries them; service B's GenAI spans carry them too."""
    carrier: dict[str, str] = {}
    with llm_otel.attributes(tenant="acme"):
        W3CBaggagePropagator().inject(carrier)
    assert "llm_otel.tag.tenant=acme" in carrier["baggage"]
    incoming = W3CBaggagePropagator().extract(carrier)
    token = context.attach(incoming)
    try:
        assert baggage.get_baggage("llm_otel.tag.tenant") == "acme"
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        context.detach(token)
    assert spans.one().attributes["llm_otel.tag.tenant"] == "acme"


def test_bad_tag_name_is_rejected() -> None:
    with pytest.raises(ValueError), llm_otel.attributes(**{"not a name": "x"}):
        pass
