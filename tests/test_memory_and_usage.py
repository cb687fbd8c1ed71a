"""Cumulative stream usage is counted once; many calls (finished, broken off, abandoned) keep memory flat."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import openai
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from tests_support import client_http_module

from llm_otel import semconv as sc
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor
from llm_otel.instrumentors.call import Telemetry
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.instrumentors.tracer import make_tracer
from llm_otel.pricing import PriceTable

http = client_http_module()

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}


def _chunk(i: int, usage: dict[str, int] | None, finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": finish}],
        "usage": usage,
    }
    return f"data: {json.dumps(body)}\n\n"


def _cumulative_stream() -> bytes:
    """An OpenAI-compatible server that sends running usage totals on every chunk (no usage-only chunk)."""
    chunks = [
        _chunk(i, {"prompt_tokens": 10, "completion_tokens": i + 1, "total_tokens": 11 + i}) for i in range(5)
    ]
    chunks.append(_chunk(5, {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, "stop"))
    return ("".join(chunks) + "data: [DONE]\n\n").encode()


def _client(stream_body: bytes) -> openai.OpenAI:
    def reply(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            return http.Response(200, headers={"content-type": "text/event-stream"}, content=stream_body)
        return http.Response(200, json=COMPLETION)

    return openai.OpenAI(
        base_url="http://127.0.0.1:1/v1",
        api_key="k",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=http.MockTransport(reply)),
    )


def test_cumulative_usage_is_not_summed(openai_instrumented: Any, spans: Any) -> None:
    chunks = list(
        _client(_cumulative_stream()).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert len(chunks) == 6  # every chunk has choices: none is hidden
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_INPUT_TOKENS] == 10
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == 5


def test_memory_stays_flat_over_many_calls() -> None:
    provider = TracerProvider()  # no exporter keeps spans; the metrics processor keeps only aggregates
    metrics = PrometheusMetricsProcessor(registry=CollectorRegistry())
    provider.add_span_processor(metrics)
    telemetry = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled())
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(llm_otel_telemetry=telemetry)
    client = _client(_cumulative_stream())
    messages = [{"role": "user", "content": "x"}]

    def calls(n: int) -> None:
        for i in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            if i % 3 == 0:
                list(stream)
            elif i % 3 == 1:
                next(iter(stream))
                stream.close()
            del stream  # i % 3 == 2: abandoned, collected

    try:
        calls(200)  # warm-up: caches, pools, interned strings
        metrics.drain()  # the fold's queue holds finished spans until folded: empty it at each snapshot
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        calls(400)
        metrics.drain()
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    finally:
        instrumentor.uninstrument()
    llm_otel_growth = sum(
        stat.size_diff
        for stat in after.compare_to(before, "filename")
        if "llm_otel" in stat.traceback[0].filename
    )
    total_growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    top = [str(stat) for stat in after.compare_to(before, "lineno")[:5]]
    assert llm_otel_growth < 16 * 1024, (llm_otel_growth, top)  # 1,200 calls: nothing kept per call
    assert total_growth < 512 * 1024, total_growth
