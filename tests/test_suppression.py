"""``suppress_instrumentation()``: inside it llm-otel records nothing (no span, metrics, cost record or live
entry) and the call behaves exactly as without instrumentation; outside it, calls are recorded as usual."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import ollama
import openai
import pytest
from opentelemetry import context
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY, suppress_instrumentation
from tests_support import run_child

import llm_otel
from llm_otel import manual, pipeline

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


@pytest.fixture
def aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def test_openai_sync_calls_and_streams_record_nothing(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    with suppress_instrumentation():
        result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        assert type(stream) is openai.Stream  # the client's own object, no proxy
        chunks = list(stream)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.parse().usage is not None
        client.responses.create(model="gpt-4o-mini", input="hi")
        with client.responses.stream(model="gpt-4o-mini", input="hi") as rs:
            list(rs)
        client.embeddings.create(model="text-embedding-3-small", input="hi")
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    assert spans.genai() == []
    assert result.usage is not None
    # exactly what the uninstrumented client sends: no stream_options.include_usage injected, and the
    # user's loop sees no extra usage-only chunk
    stream_request = server.requests[1].json
    assert "stream_options" not in stream_request
    assert all(c.usage is None for c in chunks)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # outside: recorded again
    assert len(spans.genai()) == 1


def test_the_context_key_alone_suppresses(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        context.detach(token)
    assert spans.genai() == []


def test_openai_async_calls_and_streams_record_nothing(
    openai_instrumented: Any, spans: Any, server: Any, aclient: openai.AsyncOpenAI
) -> None:
    async def run() -> list[Any]:
        with suppress_instrumentation():
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            assert type(stream) is openai.AsyncStream
            chunks = [c async for c in stream]
            responses = await aclient.responses.create(model="gpt-4o-mini", input="hi", stream=True)
            async for _ in responses:
                pass
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return chunks

    chunks = asyncio.run(run())
    assert all(c.usage is None for c in chunks)
    assert len(spans.genai()) == 1  # only the call after the block


def test_suppression_is_per_context(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    """Another thread's calls are still recorded while this one suppresses."""
    done = threading.Event()

    def other() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        done.set()

    with suppress_instrumentation():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert done.is_set()
    assert len(spans.genai()) == 1


def test_ollama_calls_and_streams_record_nothing(ollama_instrumented: Any, spans: Any, server: Any) -> None:
    client = ollama.Client(host=server.ollama_host)
    aclient = ollama.AsyncClient(host=server.ollama_host)

    async def run_async() -> None:
        await aclient.chat(model="llama3.2", messages=MESSAGES)
        async for _ in await aclient.chat(model="llama3.2", messages=MESSAGES, stream=True):
            pass

    with suppress_instrumentation():
        reply = client.chat(model="llama3.2", messages=MESSAGES)
        pieces = list(client.generate(model="llama3.2", prompt="hi", stream=True))
        client.embed(model="nomic-embed-text", input="hi")
        asyncio.run(run_async())
    assert spans.genai() == []
    assert reply.message.content and pieces[-1].done
    client.chat(model="llama3.2", messages=MESSAGES)
    assert len(spans.genai()) == 1


@pytest.fixture
def tracked(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(manual, "_fallback", telemetry)
    monkeypatch.setattr(pipeline, "_active", None)
    return telemetry


def test_track_and_record_usage_record_nothing(tracked: Any, spans: Any) -> None:
    @llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5")
    def decorated() -> str:
        current = llm_otel.current_call()
        assert current is not None  # the user's code runs unchanged
        current.set_usage(input_tokens=3, output_tokens=4)
        return "ok"

    with suppress_instrumentation():
        with llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5") as call:
            assert llm_otel.current_call() is call
            call.set_usage(input_tokens=10, output_tokens=5)
            call.chunk()
        assert decorated() == "ok"
        llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5)
        with pytest.raises(KeyError), llm_otel.track("chat", provider="openai", model="gpt-4o-mini"):
            raise KeyError("the user's own error still propagates")
    assert llm_otel.current_call() is None
    assert spans.genai() == []
    llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    assert len(spans.genai()) == 1


CHILD = """
    import asyncio, json, os, urllib.request
    import llm_otel, openai
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    handle = llm_otel.instrument(prometheus_port=0, cost_api_url=os.environ["COST_URL"],
                                 cost_api_key="secret", spool_path=os.environ["SPOOL"])
    client = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="k", max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True))
        llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert handle.flush(10_000)
    from llm_otel.metrics_registry import REGISTRY
    from llm_otel.live.registry import active_registry
    total = sum(s.value for m in REGISTRY.collect() if m.name == "llm_otel_requests"
                for s in m.samples if s.name == "llm_otel_requests_total")
    live = active_registry()
    print(json.dumps({"requests": total, "live": len(live.recent()) if live else None}))
"""


def test_suppressed_calls_give_no_metrics_cost_record_or_live_entry(tmp_path: Any, server: Any) -> None:
    from llm_otel.cost_server import make_server

    costs = make_server(str(tmp_path / "costs.sqlite"), "127.0.0.1", 0, "secret", 8 << 20, True)
    thread = threading.Thread(target=costs.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        env = {
            "COST_URL": costs.url,
            "SPOOL": str(tmp_path / "spool.sqlite"),
            "LLM_URL": server.openai_base_url,
        }
        out = run_child(CHILD, env)
        assert out["requests"] == 1  # only the call outside the block
        assert out["live"] == 1
        assert costs.store.count() == 1
    finally:
        costs.shutdown()
        costs.server_close()
        costs.store.close()
