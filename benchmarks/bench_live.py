"""Instructions per LLM call that the live view (llm_otel.live) costs, on the application thread and on
the registry's own thread, counted with valgrind's callgrind.

Workload: the real span lifecycle without HTTP: ``GenAICall`` start (request attributes like the OpenAI
wrapper's), for ``stream`` 50 chunks (first-chunk mark + the per-chunk counter the stream proxies bump),
``end_ok`` with tokens and pricing, behind an SDK TracerProvider + BatchSpanProcessor + no-op exporter.
Variants:

* ``off``: no registry (``live=False``): the baseline;
* ``on``: a ``LiveRegistry`` processor and ``Telemetry.live`` set, no registry thread: what the application
  thread pays (``on - off``; target <= 5,000 instructions per call);
* ``on_fold``: ``on`` plus ``registry.tick()`` after every call: ``on_fold - on`` is the work the registry
  thread does per finished call (folding it into the ring and the totals), off the application thread.

Mode ``hooks`` calls only ``registry.started(call)`` + ``registry.ended(call)`` (what GenAICall calls):
the call-level modes are dominated by the lifecycle itself, whose allocation pattern moves by about
+-1,000 instructions between variants, more than the registry's share.

Each (variant, mode) runs twice under callgrind with N1 and N2 calls after the same warm-up; per-call =
(Ir(N2) - Ir(N1)) / (N2 - N1).

    python benchmarks/bench_live.py                         # table (needs valgrind; about 1 min)
    python benchmarks/bench_live.py --inner on stream 5 2   # one plain run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import deque
from pathlib import Path
from typing import Any

from _callgrind import clean_env, inner_main, measure, noop_provider

TARGET = 5_000
VARIANTS = ["off", "on", "on_fold"]
MODES = ["nonstream", "stream", "hooks"]
COUNTS = {"nonstream": (200, 200, 600), "stream": (200, 200, 600), "hooks": (200, 2_000, 12_000)}
CHUNKS = 50


def _workload(variant: str, mode: str) -> tuple[Any, Any]:
    clean_env()
    from llm_otel import semconv as sc
    from llm_otel.instrumentors.call import GenAICall, Outcome, Telemetry
    from llm_otel.instrumentors.tracer import make_tracer
    from llm_otel.live import LiveRegistry
    from llm_otel.pricing import PriceTable

    provider = noop_provider()
    registry = None
    if variant != "off":
        registry = LiveRegistry(background=False, max_pending=10**7)
    telemetry = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled(), live=registry)
    # finished calls the registry thread would fold: dropped each call in every variant alike, so held
    # spans do not change the garbage collector's work between variants
    pending: deque[Any] = registry._pending if registry is not None else deque()
    tick = registry.tick if variant == "on_fold" and registry is not None else None
    stream = mode == "stream"
    if mode == "hooks":  # the registry's two application-thread methods alone, on one (ended) call
        call = GenAICall(Telemetry(tracer=make_tracer(provider), prices=None), "chat", "openai", "m", {})
        call.end_ok(None)
        started = registry.started if registry is not None else None
        ended = registry.ended if registry is not None else None

        def hooks() -> None:
            if started is not None and ended is not None:
                started(call)
                ended(call)
            if tick is not None:
                tick()
            pending.clear()

        return provider, hooks

    def one() -> None:
        attrs = {sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443, sc.REQUEST_STREAM: stream,
                 sc.REQUEST_MAX_TOKENS: 200}  # fmt: skip
        call = GenAICall(telemetry, "chat", "openai", "gpt-4o-mini", attrs)
        if stream:
            for _ in range(CHUNKS):  # what streams.py does per chunk
                if not call.first_chunk_ns:
                    call.mark_first_chunk()
                call.chunks += 1
        outcome = Outcome()
        outcome.response_model = "gpt-4o-mini-2024-07-18"
        outcome.response_id = "chatcmpl-bench"
        outcome.finish_reasons = ["stop"]
        outcome.input_tokens = 12
        outcome.output_tokens = CHUNKS
        call.end_ok(outcome)
        if tick is not None:
            tick()
        pending.clear()

    return provider, one


def main() -> int:
    if inner_main(sys.argv, _workload):
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    per_call = measure(Path(__file__).resolve(), VARIANTS, modes, COUNTS, args.jobs)
    worst = 0.0
    print("| mode | off (instr / call) | application thread: on - off | registry thread: on_fold - on |")
    print("|---|---:|---:|---:|")
    for mode in modes:
        off, on, fold = (per_call[(v, mode)] for v in VARIANTS)
        worst = max(worst, on - off)
        print(f"| {mode} | {off:,.0f} | {on - off:,.0f} | {fold - on:,.0f} |")
    print(f"application thread target {TARGET:,}: {'OK' if worst <= TARGET else 'OVER'}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
