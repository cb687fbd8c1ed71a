"""Cost of one ``with llm_otel.track(...)`` block, in CPU instructions (valgrind callgrind).

Workload: a block that reports one Claude call by hand, as an application does around another provider's
SDK or a plain HTTP call (the call itself is left out, so only the reporting is measured)::

    with llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5", max_tokens=300) as call:
        call.set_response(model="claude-sonnet-4-5-20250929", id="msg_...", finish_reasons=["end_turn"])
        call.set_usage(input_tokens=1370, output_tokens=155, cache_read_tokens=1000, cache_write_tokens=256)

behind an SDK TracerProvider + BatchSpanProcessor with a no-op exporter (shared harness in _callgrind.py:
each variant in its own process, twice under callgrind, W warm-up + N1 blocks and W + N2 blocks,
per-block instructions = (Ir(N2) - Ir(N1)) / (N2 - N1), counting switched on after the warm-up).

    python benchmarks/bench_track_overhead.py                                   # table -> benchmarks/out/
    BENCH_VERBOSE=1 python benchmarks/bench_track_overhead.py --inner llm_otel block 5 2   # one plain run

Variants: baseline (the same loop, no span: the block's body only), bare_span (a hand-written CLIENT span
made current, 10 attributes: 4 at start, 6 at the end, the reference), llm_otel (``llm_otel.instrument(
prometheus_port=0, instrumentors=(), tracer_provider=...)`` then ``track()``: span, exact cost from the
bundled Anthropic price, Prometheus metrics processor), llm_otel_span_only (``track()`` bound to a
``Telemetry`` with the bundled prices and no metrics processor, as the instrumentor benchmarks'
``llm_otel_span_only``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from _callgrind import clean_env, inner_main, measure, noop_provider, table
from _callgrind import dist_version as _version

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MODEL = "claude-sonnet-4-5"
RESPONSE_MODEL = "claude-sonnet-4-5-20250929"
RESPONSE_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
#: (warm-up, N1, N2): a block costs about as much as a non-stream call's instrumentation, so more blocks.
COUNTS = {"block": (200, 1000, 5000)}
VARIANTS = ["baseline", "bare_span", "llm_otel", "llm_otel_span_only"]


# ----------------------------------------------------------------------------------------------------
# The workload (runs inside the measured process)
# ----------------------------------------------------------------------------------------------------
def _usage() -> dict[str, int]:
    """What the application read from the provider's response (the same objects every time)."""
    return {"input_tokens": 1370, "output_tokens": 155, "cache_read_tokens": 1000, "cache_write_tokens": 256}


def _bare_span(provider: Any) -> Any:
    """The reference: a hand-written CLIENT span made current, 4 attributes at start and 6 at the end."""
    from opentelemetry.trace import SpanKind

    tracer = provider.get_tracer("bench.bare")
    start_span = tracer.start_as_current_span
    usage = _usage()
    finish = ("end_turn",)

    def one() -> None:
        with start_span(
            f"chat {MODEL}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": MODEL,
                "gen_ai.request.max_tokens": 300,
            },
        ) as span:
            span.set_attributes(
                {
                    "gen_ai.response.model": RESPONSE_MODEL,
                    "gen_ai.response.id": RESPONSE_ID,
                    "gen_ai.response.finish_reasons": finish,
                    "gen_ai.usage.input_tokens": usage["input_tokens"],
                    "gen_ai.usage.output_tokens": usage["output_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": usage["cache_read_tokens"],
                }
            )

    return one


def _tracked() -> Any:
    """The block as an application writes it."""
    import llm_otel

    track = llm_otel.track
    usage = _usage()
    finish = ["end_turn"]

    def one() -> None:
        with track("chat", provider="anthropic", model=MODEL, max_tokens=300) as call:
            call.set_response(model=RESPONSE_MODEL, id=RESPONSE_ID, finish_reasons=finish)
            call.set_usage(**usage)

    return one


def _span_only(provider: Any) -> None:
    """track() bound to a Telemetry with the bundled prices and no metrics processor."""
    from llm_otel import manual
    from llm_otel.instrumentors.call import Telemetry
    from llm_otel.instrumentors.tracer import make_tracer
    from llm_otel.pricing import PriceTable

    manual._fallback = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled())


def _workload(variant: str, mode: str) -> tuple[Any, Any]:
    """The pipeline and one block (what _callgrind.inner_main runs N times)."""
    if mode != "block":
        raise SystemExit(f"unknown mode {mode}")
    clean_env()
    provider = noop_provider()
    if variant == "baseline":
        usage = _usage()
        sink: list[Any] = []

        def one() -> None:
            sink.append(usage)  # the block's body without any reporting
            sink.clear()

        return provider, one
    if variant == "bare_span":
        return provider, _bare_span(provider)
    if variant == "llm_otel":
        import llm_otel

        llm_otel.instrument(prometheus_port=0, tracer_provider=provider, instrumentors=())
        return provider, _tracked()
    if variant == "llm_otel_span_only":
        _span_only(provider)
        return provider, _tracked()
    raise SystemExit(f"unknown variant {variant}")


# ----------------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------------
def main() -> None:
    if inner_main(sys.argv, _workload):
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    modes = ["block"]
    per_call = measure(Path(__file__).resolve(), variants, modes, COUNTS, args.jobs)
    md = ["# llm-otel: one `with llm_otel.track(...)` block (callgrind instructions)", "",
          f"python {sys.version.split()[0]}; opentelemetry-sdk {_version('opentelemetry-sdk')}; "
          f"counts (warm-up, N1, N2): {COUNTS}", "",
          table(per_call, variants, modes, lambda m: "track block"), "",
          "raw per-block: " + json.dumps({v: round(x) for (v, _), x in per_call.items()})]  # fmt: skip
    text = "\n".join(md) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "track_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
