"""Instructions per LLM call spent on metrics: on the application thread, and in the fold.

Modes: ``caller`` (``on_start`` + ``on_end``: all the application thread does, queueing the span),
``fold`` (the same plus folding it into the Prometheus values: the folding thread's work per call),
``fold+otel`` (``fold`` with the OpenTelemetry Metrics API recorder attached, an SDK MeterProvider with an
in-memory reader). The folding thread is kept asleep (interval one hour) so only the loop is counted.

Runs itself under valgrind's callgrind twice per mode, with N1 and N2 calls, and prints
(Ir(N2) - Ir(N1)) / (N2 - N1): start-up, imports and the first call of each label combination cancel
out. Target for ``caller``: <= 5,000 per call.

    python benchmarks/bench_metrics_processor.py            # needs valgrind
    python benchmarks/bench_metrics_processor.py --inner on_end 1000   # one measured run (no valgrind)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

N1, N2 = 1_000, 6_000
TARGET = 5_000
MODES = ("caller", "fold", "fold+otel")


def _spans() -> list[Any]:
    """Finished spans of a typical mix: a priced streamed chat, a cached/reasoning chat, an embeddings
    call, a failed call and a local Ollama chat, with an attribution tag."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    tracer = provider.get_tracer("llm_otel")
    base = {"gen_ai.provider.name": "openai", "llm_otel.tag.tenant": "acme"}
    priced = {"llm_otel.pricing.status": "priced"}
    shapes: list[dict[str, Any]] = [
        {**base, **priced, "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
         "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.request.stream": True,
         "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 97,
         "gen_ai.response.time_to_first_chunk": 0.21, "gen_ai.usage.cost": 0.00018},
        {**base, **priced, "gen_ai.operation.name": "chat", "gen_ai.request.model": "o4-mini",
         "gen_ai.response.model": "o4-mini-2025-04-16", "gen_ai.usage.input_tokens": 3000,
         "gen_ai.usage.output_tokens": 900, "gen_ai.usage.cache_read.input_tokens": 2048,
         "gen_ai.usage.reasoning.output_tokens": 640, "gen_ai.usage.cost": 0.0051},
        {**base, **priced, "gen_ai.operation.name": "embeddings",
         "gen_ai.request.model": "text-embedding-3-small", "gen_ai.response.model": "text-embedding-3-small",
         "gen_ai.usage.input_tokens": 40,
         "gen_ai.usage.cost": 0.0000008},
        {**base, "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
         "error.type": "openai.RateLimitError"},
        {"gen_ai.provider.name": "ollama", "gen_ai.operation.name": "chat",
         "gen_ai.request.model": "llama3.2", "gen_ai.response.model": "llama3.2",
         "gen_ai.usage.input_tokens": 30,
         "gen_ai.usage.output_tokens": 200, "gen_ai.usage.cost": 0.0, "llm_otel.pricing.status": "local"},
    ]  # fmt: skip
    spans = []
    for attributes in shapes:
        span = tracer.start_span("bench", attributes=attributes)
        if "error.type" in attributes:
            span.set_status(StatusCode.ERROR)
        span.end()
        spans.append(span)
    return spans


def inner(mode: str, calls: int) -> None:
    from prometheus_client import CollectorRegistry

    from llm_otel.exporters.prometheus import PrometheusMetricsProcessor

    processor = PrometheusMetricsProcessor(
        registry=CollectorRegistry(), label_tags=("tenant",), fold_interval=3600.0, max_queue=10 * N2
    )
    if mode == "fold+otel":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from llm_otel.exporters.otel_metrics import OTelMetricsRecorder

        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        processor.attach(OTelMetricsRecorder(meters, latest_semconv=False, label_tags=("tenant",)))
    spans = _spans()
    for span in spans:  # first call of each label combination creates its children: not steady state
        processor.on_start(span)
        processor.on_end(span)
    processor.drain()
    count = len(spans)
    on_start, on_end, drain = processor.on_start, processor.on_end, processor.drain
    if mode == "caller":
        for i in range(calls):
            span = spans[i % count]
            on_start(span)
            on_end(span)
    else:
        for i in range(calls):
            span = spans[i % count]
            on_start(span)
            on_end(span)
            drain()


def _instructions(mode: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
             "--inner", mode, str(calls)],
            check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        with open(out) as f:
            text = f.read()
    match = re.search(r"^(?:totals|summary): (\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("no totals in callgrind output")
    return int(match.group(1))


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        inner(sys.argv[2], int(sys.argv[3]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return 2
    worst = 0.0
    for mode in MODES:
        low, high = _instructions(mode, N1), _instructions(mode, N2)
        per_call = (high - low) / (N2 - N1)
        if mode == "caller":
            worst = per_call
        print(f"{mode:16s} {per_call:10,.0f} instructions per call  (Ir {low:,} @ {N1}, {high:,} @ {N2})")
    print(f"target {TARGET:,}: {'OK' if worst <= TARGET else 'OVER'}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
