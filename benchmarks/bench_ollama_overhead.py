"""Per-call overhead of the Ollama instrumentation, in CPU instructions (valgrind callgrind), plus wall time.

Workload: an ollama (0.4+) *sync* ``ollama.Client(host="http://127.0.0.1:11434", transport=...)`` (extra
keywords go to ``httpx.Client``) whose HTTP goes to an in-process ``httpx.MockTransport`` answering
``/api/chat`` with a fixed non-stream JSON chat response (``nonstream``) or a 50-chunk NDJSON stream
(``stream``: 49 content chunks with ``done: false``, then a final ``done: true``
chunk with done_reason, token counts and durations), behind an SDK TracerProvider + BatchSpanProcessor with
a no-op exporter. Same method as bench_openai_overhead.py (shared harness in _callgrind.py): each variant in
its own process, twice under callgrind (W warm-up + N1 calls, W + N2 calls), per-call instructions
= (Ir(N2) - Ir(N1)) / (N2 - N1); valgrind starts with ``--instr-atstart=no`` and the workload turns counting
on with ``callgrind_control -i on`` after its warm-up. Then, for baseline and llm_otel, a few plain timed
loops (no valgrind, one process per variant and mode, run one after the other): microseconds per call,
median of the loops. Wall time is noisy (shared machine, CPU frequency, GC timing); the instruction counts
are the number to compare.

    python benchmarks/bench_ollama_overhead.py                           # table -> benchmarks/out/
    python benchmarks/bench_ollama_overhead.py --wall-reps 0             # instructions only
    BENCH_VERBOSE=1 python benchmarks/bench_ollama_overhead.py --inner llm_otel stream 5 2   # one plain run

Variants: baseline (uninstrumented), bare_span (hand-written wrapt wrapper around
``ollama._client.Client.chat``: one CLIENT span, 10 attributes; stream: 6 attributes, span ended after
iteration), llm_otel (``llm_otel.instrument(prometheus_port=0, tracer_provider=..., instrumentors="ollama")``:
spans, pricing, Prometheus processor), llm_otel_span_only (the Ollama instrumentor + pricing, no metrics
processor).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from _callgrind import clean_env, inner_main, measure, noop_provider, table, wall_table, wallclock
from _callgrind import dist_version as _version

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HOST = "http://127.0.0.1:11434"
MODEL = "llama3"
STREAM_CHUNKS = 50  # 49 content chunks + the final done chunk
#: The non-stream answer: our own text, 256 characters with blank lines and "quotes" like a chat reply.
REPLY_TEXT = ('A benchmark answer.\n\nIt is "about" as long as a short chat reply. ' * 6)[:256]
#: (warm-up, N1, N2) per mode, as in bench_openai_overhead.py.
COUNTS = {"nonstream": (50, 100, 500), "stream": (20, 10, 60)}
#: plain timed loops: (warm-up, calls per loop) per mode; the number of loops is --wall-reps.
WALL_COUNTS = {"nonstream": (300, 2000), "stream": (50, 300)}
VARIANTS = ["baseline", "bare_span", "llm_otel", "llm_otel_span_only"]
WALL_VARIANTS = ["baseline", "llm_otel"]


# ----------------------------------------------------------------------------------------------------
# The workload (runs inside the measured process)
# ----------------------------------------------------------------------------------------------------
def _chat_body() -> bytes:
    """A non-stream /api/chat body with the fields an Ollama server sends (our own short answer)."""
    return json.dumps(
        {
            "model": MODEL,
            "created_at": "2024-05-24T20:01:31.01558Z",
            "message": {
                "role": "assistant",
                "content": REPLY_TEXT,
            },
            "done_reason": "stop",
            "done": True,
            "total_duration": 10386172208,
            "load_duration": 8078850750,
            "prompt_eval_count": 17,
            "prompt_eval_duration": 175861000,
            "eval_count": 66,
            "eval_duration": 2127200000,
        },
        separators=(",", ":"),
    ).encode()


def _stream_body() -> bytes:
    """NDJSON as Ollama streams it: 49 content chunks, then the done chunk with usage and durations."""
    lines = []
    for i in range(STREAM_CHUNKS - 1):
        lines.append(
            {
                "model": MODEL,
                "created_at": f"2024-05-24T20:26:46.{294874 + 32000 * i:06d}Z",
                "message": {"role": "assistant", "content": "Why" if i == 0 else f" word{i}"},
                "done": False,
            }
        )
    lines.append(
        {
            "model": MODEL,
            "created_at": "2024-05-24T20:26:47.872905Z",
            "message": {"role": "assistant", "content": ""},
            "done_reason": "stop",
            "done": True,
            "total_duration": 1897385625,
            "load_duration": 1631208,
            "prompt_eval_count": 17,
            "prompt_eval_duration": 313560000,
            "eval_count": 50,
            "eval_duration": 1577990000,
        }
    )
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def _client() -> Any:
    import httpx
    import ollama

    chat = _chat_body()
    stream = _stream_body()
    json_headers = {"content-type": "application/json; charset=utf-8"}
    ndjson_headers = {"content-type": "application/x-ndjson"}

    def handler(request: Any) -> Any:
        # the client's body is compact JSON (httpx json=), with "stream" always present
        if b'"stream":true' in request.content:
            return httpx.Response(200, headers=ndjson_headers, content=stream)
        return httpx.Response(200, headers=json_headers, content=chat)

    return ollama.Client(host=HOST, transport=httpx.MockTransport(handler))


def _bare_span(provider: Any) -> None:
    """The reference: a minimal hand-written wrapper of Client.chat, one CLIENT span with 10 attributes."""
    import wrapt
    from opentelemetry.trace import SpanKind

    tracer = provider.get_tracer("bench.bare")

    class StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
        def __init__(self, wrapped: Any, span: Any) -> None:
            super().__init__(wrapped)
            self._self_span = span

        def __iter__(self) -> Any:
            try:
                yield from self.__wrapped__
            finally:
                self._self_span.end()

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        model = kwargs.get("model") or (args[0] if args else "")
        stream = bool(kwargs.get("stream"))
        span = tracer.start_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "ollama",
                "gen_ai.request.model": model,
                "server.address": "127.0.0.1",
                "server.port": 11434,
                "gen_ai.request.stream": stream,
            },
        )
        result = wrapped(*args, **kwargs)
        if stream:
            return StreamProxy(result, span)
        span.set_attributes(
            {
                "gen_ai.response.model": result.model,
                "gen_ai.response.finish_reasons": (result.done_reason,),
                "gen_ai.usage.input_tokens": result.prompt_eval_count,
                "gen_ai.usage.output_tokens": result.eval_count,
            }
        )
        span.end()
        return result

    wrapt.wrap_function_wrapper("ollama._client", "Client.chat", wrapper)


def _span_only(provider: Any) -> None:
    from llm_otel.instrumentors.call import Telemetry
    from llm_otel.instrumentors.ollama import OllamaInstrumentor
    from llm_otel.instrumentors.tracer import make_tracer
    from llm_otel.pricing import PriceTable

    t = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled())
    OllamaInstrumentor().instrument(tracer_provider=provider, llm_otel_telemetry=t)


def _setup_variant(variant: str, provider: Any) -> None:
    clean_env()
    os.environ.pop("OLLAMA_API_KEY", None)  # would add an authorization header to every request
    if variant == "baseline":
        return
    if variant == "bare_span":
        _bare_span(provider)
        return
    if variant == "llm_otel":
        import llm_otel

        llm_otel.instrument(prometheus_port=0, tracer_provider=provider, instrumentors="ollama")
        return
    if variant == "llm_otel_span_only":
        _span_only(provider)
        return
    raise SystemExit(f"unknown variant {variant}")


def _workload(variant: str, mode: str) -> tuple[Any, Any]:
    """The instrumented pipeline and one call of ``mode`` (what _callgrind.inner_main runs N times)."""
    provider = noop_provider()
    _setup_variant(variant, provider)
    client = _client()
    messages = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
    chat = client.chat
    if mode == "stream":

        def one() -> None:
            chunks = 0
            done = False
            for chunk in chat(model=MODEL, messages=messages, stream=True):
                chunks += 1
                done = chunk.done
            assert chunks == STREAM_CHUNKS and done, chunks

    else:

        def one() -> None:
            r = chat(model=MODEL, messages=messages)
            assert r.prompt_eval_count == 17

    return provider, one


# ----------------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------------
def _mode_label(mode: str) -> str:
    return mode if mode == "nonstream" else f"stream ({STREAM_CHUNKS} chunks)"


def main() -> None:
    if inner_main(sys.argv, _workload):
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--wall-reps", type=int, default=7, help="timed loops per variant and mode (0: none)")
    ap.add_argument("--wall-variants", default=",".join(WALL_VARIANTS))
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    modes = [m for m in args.modes.split(",") if m]
    script = Path(__file__).resolve()
    caller: dict[tuple[str, str], float] = {}
    per_call = measure(script, variants, modes, COUNTS, args.jobs, caller=caller)
    md = ["# llm-otel per-call overhead, ollama client (callgrind instructions)", "",
          f"python {sys.version.split()[0]}; ollama {_version('ollama')}, httpx {_version('httpx')}; "
          f"counts (warm-up, N1, N2): {COUNTS}", "",
          table(per_call, variants, modes, _mode_label), "",
          "## The application's (calling) thread only", "",
          "(without the SDK's batch exporter thread and llm-otel's metrics fold thread)", "",
          table(caller, variants, modes, _mode_label)]  # fmt: skip
    wall_variants = [v for v in args.wall_variants.split(",") if v]
    if args.wall_reps > 0 and wall_variants:
        # after the callgrind runs, alone: nothing else of ours competes for the CPU
        wall = wallclock(script, wall_variants, modes, WALL_COUNTS, args.wall_reps)
        md += ["", "## Wall-clock time per call (NOISY: indicative only, compare the instruction counts)", "",
               f"Plain timed loops, no valgrind; (warm-up, calls per loop): {WALL_COUNTS}; median (min–max) "
               f"of {args.wall_reps} loops, one process per variant and mode. Depends on the machine, its "
               "load and CPU frequency; differences of a few µs are within noise.", "",
               wall_table(wall, wall_variants, modes, _mode_label)]  # fmt: skip
    md += ["", "raw per-call: " + json.dumps({f"{v}/{m}": round(x) for (v, m), x in per_call.items()})]
    text = "\n".join(md) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "ollama_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
