"""A Claude call made with plain httpx through an OpenAI-compatible gateway, reported with ``track()``.

llm-otel patches the openai and ollama clients; a call made any other way (another provider's SDK, plain
HTTP to a gateway) is reported by hand with ``llm_otel.track()`` and gets the same GenAI span, exact cost,
metrics and cost record. Here the "gateway" is llm-otel's fake LLM server (``llm_otel.testing``), which
answers the OpenAI chat wire format on 127.0.0.1 the way LiteLLM, OpenRouter or a company proxy answer for
Claude; the call is priced with the bundled Anthropic prices. Nothing leaves the machine:

    python examples/track_anthropic.py

With Anthropic's own Messages API the usage differs in one way: its ``input_tokens`` leave the cache out,
while the conventions' input includes it, so report ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens`` as ``input_tokens`` (OpenAI-compatible gateways already count it that way).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llm_otel
from llm_otel.pricing import PriceTable
from llm_otel.testing import FakeLLMServer

MODEL = "claude-sonnet-4-5"
#: A long system prompt, the part a real application would mark for prompt caching.
SYSTEM = "You are the support assistant of a small bicycle shop. Answer briefly and politely. " * 60


def ask(gateway: str, question: str) -> str:
    """One chat call through the gateway, reported to llm-otel with its usage."""
    with llm_otel.track("chat", provider="anthropic", model=MODEL, max_tokens=300, temperature=0.2) as call:
        response = httpx.post(
            f"{gateway}/chat/completions",
            json={
                "model": MODEL,
                "max_tokens": 300,
                "temperature": 0.2,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            },
            headers={"Authorization": "Bearer gateway-key"},
            timeout=30,
        )
        response.raise_for_status()  # an exception ends the span as an error and propagates unchanged
        body: dict[str, Any] = response.json()
        usage = body["usage"]
        details = usage.get("prompt_tokens_details") or {}
        call.set_response(
            model=body["model"], id=body["id"], finish_reasons=[c["finish_reason"] for c in body["choices"]]
        )
        call.set_usage(
            input_tokens=usage["prompt_tokens"],  # cache reads and writes included
            output_tokens=usage["completion_tokens"],
            cache_read_tokens=details.get("cached_tokens"),
            cache_write_tokens=details.get("cache_write_tokens"),
        )
    return str(body["choices"][0]["message"]["content"])


def main() -> None:
    spans = InMemorySpanExporter()  # stands in for Jaeger: otlp_endpoint="http://localhost:4318" instead
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    handle = llm_otel.instrument(
        service_name="track-anthropic-example", tracer_provider=provider, prometheus_port=0, instrumentors=()
    )
    with FakeLLMServer() as gateway:
        gateway.configure(cached_tokens=512, cache_write_tokens=256)  # what the gateway reports
        answer = ask(gateway.openai_base_url, "Do you repair carbon frames?")
    handle.flush()
    (span,) = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "llm_otel"]
    a = dict(span.attributes or {})
    print(f"answer: {answer[:60]}...")
    print(f"span {span.name!r}: provider={a['gen_ai.provider.name']}, model={a['gen_ai.response.model']}")
    print(
        f"  tokens: {a['gen_ai.usage.input_tokens']} input ({a['gen_ai.usage.cache_read.input_tokens']} read "
        f"from the cache, {a['gen_ai.usage.cache_write.input_tokens']} written to it), "
        f"{a['gen_ai.usage.output_tokens']} output"
    )
    print(
        f"  cost: ${a['gen_ai.usage.cost']:.8f} (input ${a['llm_otel.cost.input']:.8f}, output "
        f"${a['llm_otel.cost.output']:.8f}); pricing {a['llm_otel.pricing.status']}, "
        f"source {a['llm_otel.pricing.source']}"
    )
    exact = PriceTable.bundled().cost(
        "anthropic",
        MODEL,
        a["gen_ai.usage.input_tokens"],
        a["gen_ai.usage.output_tokens"],
        a["gen_ai.usage.cache_read.input_tokens"],
        a["gen_ai.usage.cache_write.input_tokens"],
    )
    assert exact.total is not None and Decimal(repr(a["gen_ai.usage.cost"])) == exact.total
    print(f"  exact: ${format(exact.total.normalize(), 'f')} (the span's double is this Decimal, exactly)")
    llm_otel.uninstrument()


if __name__ == "__main__":
    main()
