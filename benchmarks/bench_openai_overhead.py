"""Per-call overhead of OpenAI instrumentations, in CPU instructions (valgrind callgrind), not seconds.

Workload: an openai 3.x *sync* client whose HTTP goes to an in-process ``httpx2.MockTransport`` returning
a fixed chat completion (``nonstream``) or a 50-content-chunk SSE chat stream with a usage chunk
(``stream``: role+content chunk, 49 more content chunks, a finish chunk and a usage chunk), behind an SDK
TracerProvider + BatchSpanProcessor with a no-op exporter. Each variant runs in its own process (peers in
their own venvs, see setup_peers.sh), twice under callgrind: W warm-up calls + N1 calls, and W + N2 calls.
Per-call instructions = (Ir(N2) - Ir(N1)) / (N2 - N1): start-up, imports and warm-up cancel out.
To save time, valgrind starts with instrumentation off (``--instr-atstart=no``) and the workload turns it
on with ``callgrind_control -i on`` after the warm-up, so start-up runs at near-native speed.
PYTHONHASHSEED is fixed, so the counts repeat to within a fraction of a percent.

    bash benchmarks/setup_peers.sh && python benchmarks/bench_openai_overhead.py      # table
    python benchmarks/bench_openai_overhead.py --profile                              # + llm-otel breakdown
    python benchmarks/bench_openai_overhead.py --inner llm_otel stream 5 2            # one plain run

Variants: baseline (uninstrumented), bare_span (hand-written wrapt wrapper, CLIENT span, 10 attributes),
llm_otel (``llm_otel.instrument(prometheus_port=0, tracer_provider=...)``: spans, pricing, Prometheus
processor, live view), llm_otel_no_live (the same with ``live=False``), llm_otel_span_only (the OpenAI
instrumentor + pricing, no metrics processor), official
(opentelemetry-instrumentation-genai-openai), openllmetry (opentelemetry-instrumentation-openai,
TRACELOOP_TRACE_CONTENT=false, metrics code on but against the global no-op MeterProvider).
``--profile`` adds ablations of llm_otel (pieces switched off by monkeypatching in the benchmark process,
cumulatively) from which the breakdown table is computed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from _callgrind import clean_env, inner_main, measure, noop_provider, table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
STREAM_CONTENT_CHUNKS = int(os.environ.get("BENCH_STREAM_CHUNKS", "50"))  # more: per-chunk costs stand out
#: added instructions per call for llm_otel
TARGETS = {"nonstream": 310_000, "stream": 1_000_000, "stream_no_usage": 1_000_000}
#: (warm-up, N1, N2) per mode. Callgrind is exact enough that a difference of 100 / 40 calls suffices.
COUNTS = {"nonstream": (50, 100, 500), "stream": (20, 10, 60), "stream_no_usage": (20, 10, 60)}

MAIN_VARIANTS = ["baseline", "bare_span", "llm_otel", "llm_otel_span_only", "official", "openllmetry"]
PEERS = {"official", "openllmetry"}
#: Ablations of llm_otel, each switching off one more piece than the previous one (see _ablate()).
PROFILE_VARIANTS = [
    "llm_otel_no_onstart",  # full instrument(), metrics processor's on_start a no-op
    "lo_no_pricing",  # span_only, prices=None
    "lo_no_response",  # + response extraction off (Outcome empty / stream accumulator a no-op)
    "lo_no_request",  # + request attribute extraction off (model only, no server attrs)
    "lo_no_context",  # + no context attach/detach, no _IN_CALL contextvar, no sampler wrapper
]


# ----------------------------------------------------------------------------------------------------
# The workload (runs inside the measured process)
# ----------------------------------------------------------------------------------------------------
def _completion_body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-benchNonStream000000000000000",
            "object": "chat.completion",
            "created": 1731368630,
            "model": RESPONSE_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "This is a test.", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "system_fingerprint": "fp_be11c0ffee",
        }
    ).encode()


def _stream_body(include_usage: bool = True) -> bytes:
    """The chunk fields OpenAI streams, 50 content chunks (our own text and ids); the usage chunk only when
    the request asked for it (``stream_options.include_usage``), as OpenAI does."""
    base = {
        "id": "chatcmpl-benchStream000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1731368639,
        "model": RESPONSE_MODEL,
        "system_fingerprint": "fp_be11c0ffee",
    }
    events = []
    for i in range(STREAM_CONTENT_CHUNKS):
        delta: dict[str, Any] = {"content": f" word{i}"}
        if i == 0:
            delta = {"role": "assistant", "content": "This", "refusal": None}
        events.append(
            {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                "usage": None,
            }  # fmt: skip
        )
    events.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                   "usage": None})  # fmt: skip
    usage_event = {
        **base,
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": STREAM_CONTENT_CHUNKS,
            "total_tokens": 12 + STREAM_CONTENT_CHUNKS,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }
    if include_usage:
        events.append(usage_event)
    text = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events) + "data: [DONE]\n\n"
    return text.encode()


def _client() -> Any:
    import httpx2
    import openai

    completion = _completion_body()
    stream = _stream_body()
    stream_no_usage = _stream_body(include_usage=False)
    json_headers = {"content-type": "application/json"}
    sse_headers = {"content-type": "text/event-stream; charset=utf-8"}

    def handler(request: Any) -> Any:
        if b'"stream":true' in request.content:
            body = stream if b'"include_usage":true' in request.content else stream_no_usage
            return httpx2.Response(200, headers=sse_headers, content=body)
        return httpx2.Response(200, headers=json_headers, content=completion)

    return openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler)),
    )


def _bare_span(provider: Any, mode: str) -> None:
    """The reference: a minimal hand-written wrapper, one CLIENT span with 10 attributes."""
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
        model = kwargs.get("model")
        span = tracer.start_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "server.address": "api.openai.com",
                "server.port": 443,
                "gen_ai.request.stream": bool(kwargs.get("stream")),
            },
        )
        result = wrapped(*args, **kwargs)
        if kwargs.get("stream"):
            return StreamProxy(result, span)
        span.set_attributes(
            {
                "gen_ai.response.model": result.model,
                "gen_ai.response.id": result.id,
                "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": result.usage.completion_tokens,
            }
        )
        span.end()
        return result

    wrapt.wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", wrapper)


def _span_only(provider: Any, prices: bool = True) -> None:
    from llm_otel.instrumentors.call import Telemetry
    from llm_otel.instrumentors.openai import OpenAIInstrumentor
    from llm_otel.instrumentors.tracer import make_tracer
    from llm_otel.pricing import PriceTable

    t = Telemetry(tracer=make_tracer(provider), prices=PriceTable.bundled() if prices else None)
    OpenAIInstrumentor().instrument(tracer_provider=provider, llm_otel_telemetry=t)


def _ablate(variant: str, provider: Any) -> None:
    """Cumulative ablations: each lo_* level switches off everything the previous ones did, plus one piece."""
    order = ["lo_no_pricing", "lo_no_response", "lo_no_request", "lo_no_context"]
    level = order.index(variant)
    from llm_otel.instrumentors import call as _call
    from llm_otel.instrumentors.openai import instrumentor as oi
    from llm_otel.instrumentors.openai import request as openai_request
    from llm_otel.instrumentors.openai import response as openai_response

    original_outcome = openai_response.chat_outcome
    if level >= 1:  # response extraction off: empty Outcome, stream accumulator reads nothing

        def chat_outcome(response: Any, capture: bool = False, limit: int = 0) -> Any:
            return _call.Outcome()

        openai_response.ChatChunks.add = lambda self, chunk: False  # type: ignore[method-assign]
        openai_response.ChatChunks.common_chunk_inline = False  # type: ignore[assignment,misc]
        openai_response.ChatChunks.outcome = lambda self: _call.Outcome()  # type: ignore[method-assign]
        oi.ENDPOINTS[:] = [
            oi._Endpoint(
                e.module,
                e.method,
                e.operation,
                e.request,
                chat_outcome if e.outcome is original_outcome else e.outcome,
                e.stream,
                e.is_async,
            )  # fmt: skip
            for e in oi.ENDPOINTS
        ]
    if level >= 2:  # request extraction off: the model only
        oi.server_and_provider = lambda instance, t, azure: ("openai", {})  # type: ignore[assignment]

        def chat_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> Any:
            return kwargs.get("model")

        oi.ENDPOINTS[:] = [
            oi._Endpoint(
                e.module,
                e.method,
                e.operation,
                chat_request if e.request is openai_request.chat_request else e.request,
                e.outcome,
                e.stream,
                e.is_async,
            )  # fmt: skip
            for e in oi.ENDPOINTS
        ]
    if level >= 3:  # no context attach/detach, no in-call contextvar, no sampler wrapper
        import llm_otel.instrumentors.tracer as setup

        setup.record_dropped_spans = lambda tracer: None  # type: ignore[assignment]
        _call.GenAICall.activate = lambda self: None  # type: ignore[method-assign]
        _call.GenAICall.deactivate = staticmethod(lambda token: None)  # type: ignore[method-assign]

        class _Flag:
            @staticmethod
            def get() -> bool:
                return False

            @staticmethod
            def set(value: bool) -> None:
                return None

            @staticmethod
            def reset(token: Any) -> None:
                return None

        oi._IN_CALL = _Flag()  # type: ignore[assignment]
    _span_only(provider, prices=False)


def _setup_variant(variant: str, provider: Any) -> None:
    clean_env()
    if variant == "baseline":
        return
    if variant == "bare_span":
        _bare_span(provider, "")
        return
    if variant == "llm_otel_no_live":  # instrument() with the live view off: llm_otel minus it
        import llm_otel

        llm_otel.instrument(prometheus_port=0, tracer_provider=provider, live=False)
        return
    if variant in ("llm_otel", "llm_otel_no_onstart"):
        import llm_otel

        if variant == "llm_otel_no_onstart":
            from llm_otel.exporters.prometheus import PrometheusMetricsProcessor

            PrometheusMetricsProcessor.on_start = lambda self, span, parent_context=None: None  # type: ignore
        llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
        return
    if variant == "llm_otel_meter":  # instrument() with an SDK MeterProvider: OpenTelemetry metrics too
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        import llm_otel

        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        llm_otel.instrument(prometheus_port=0, tracer_provider=provider, meter_provider=meters)
        return
    if variant == "llm_otel_span_only":
        _span_only(provider)
        return
    if variant.startswith("lo_"):
        _ablate(variant, provider)
        return
    if variant == "official":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return
    if variant == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return
    raise SystemExit(f"unknown variant {variant}")


def _workload(variant: str, mode: str) -> tuple[Any, Any]:
    """The instrumented pipeline and one call of ``mode`` (what _callgrind.inner_main runs N times)."""
    provider = noop_provider()
    _setup_variant(variant, provider)
    client = _client()
    messages = [{"role": "user", "content": "Say this is a test"}]
    create = client.chat.completions.create
    if mode == "stream":

        def one() -> None:
            chunks = 0
            options = {"include_usage": True}
            for _chunk in create(model=MODEL, messages=messages, stream=True, stream_options=options):
                chunks += 1
            assert chunks == STREAM_CONTENT_CHUNKS + 2, chunks

    elif mode == "stream_no_usage":  # the caller does not ask for usage (llm-otel asks, and hides the chunk)

        def one() -> None:
            chunks = 0
            for _chunk in create(model=MODEL, messages=messages, stream=True):
                chunks += 1
            assert chunks == STREAM_CONTENT_CHUNKS + 1, chunks

    else:

        def one() -> None:
            r = create(model=MODEL, messages=messages)
            assert r.usage.prompt_tokens == 12

    return provider, one


# ----------------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------------
def _python_for(variant: str, peers_dir: Path) -> str:
    if variant in PEERS:
        py = peers_dir / variant / "bin" / "python"
        if not py.exists():
            raise SystemExit(f"{py} missing: run  bash benchmarks/setup_peers.sh {peers_dir}")
        return str(py)
    return sys.executable


def _mode_label(mode: str) -> str:
    if mode == "stream_no_usage":
        return f"stream ({STREAM_CONTENT_CHUNKS} chunks), caller without include_usage"
    return mode if mode == "nonstream" else f"stream ({STREAM_CONTENT_CHUNKS} chunks)"


def breakdown(per_call: dict[tuple[str, str], float], modes: list[str]) -> str:
    rows = [
        ("Prometheus processor on_start", "llm_otel", "llm_otel_no_onstart"),
        ("Prometheus processor on_end", "llm_otel_no_onstart", "llm_otel_span_only"),
        ("pricing (PriceTable.cost + cost attrs)", "llm_otel_span_only", "lo_no_pricing"),
        ("response extraction (outcome / stream accumulator)", "lo_no_pricing", "lo_no_response"),
        ("request extraction (server/provider + request attrs)", "lo_no_response", "lo_no_request"),
        ("context attach/detach + _IN_CALL + sampler wrapper", "lo_no_request", "lo_no_context"),
        ("wrapper/GenAICall/proxy structure beyond bare span", "lo_no_context", "bare_span"),
        ("bare span (reference: span + ~10 attrs)", "bare_span", "baseline"),
        ("TOTAL llm_otel added", "llm_otel", "baseline"),
    ]
    head = "| piece | " + " | ".join(f"{m} (instr / call)" for m in modes) + " |"
    lines = [head, "|---|" + "---:|" * len(modes)]
    for name, a, b in rows:
        cells = []
        for mode in modes:
            if (a, mode) in per_call and (b, mode) in per_call:
                cells.append(f"{(per_call[(a, mode)] - per_call[(b, mode)]) / 1e3:,.0f} k")
            else:
                cells.append("n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if inner_main(sys.argv, _workload):
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers-dir", default="/tmp/llm-otel-bench", type=Path)
    ap.add_argument("--variants", default=",".join(MAIN_VARIANTS))
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--profile", action="store_true", help="also run the llm_otel ablations (breakdown)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    modes = [m for m in args.modes.split(",") if m]
    run_variants = variants + (PROFILE_VARIANTS if args.profile else [])
    caller: dict[tuple[str, str], float] = {}
    per_call = measure(
        Path(__file__).resolve(), run_variants, modes, COUNTS, args.jobs,
        python_for=lambda variant: _python_for(variant, args.peers_dir), caller=caller,
    )  # fmt: skip
    OUT.mkdir(exist_ok=True)
    md = ["# llm-otel per-call overhead (callgrind instructions)", "",
          f"python {sys.version.split()[0]}; counts (warm-up, N1, N2): {COUNTS}; "
          f"targets for llm_otel added: {TARGETS}", "",
          table(per_call, variants, modes, _mode_label), "",
          "## The application's (calling) thread only", "",
          "(without the SDK's batch exporter thread and llm-otel's metrics fold thread)", "",
          table(caller, variants, modes, _mode_label)]  # fmt: skip
    if args.profile:
        md += ["", "## llm_otel breakdown (cumulative ablations)", "", breakdown(per_call, modes)]
    md += ["", "raw per-call: " + json.dumps({f"{v}/{m}": round(x) for (v, m), x in per_call.items()})]
    md += [
        "",
        "raw per-call, caller thread: " + json.dumps({f"{v}/{m}": round(x) for (v, m), x in caller.items()}),
    ]
    text = "\n".join(md) + "\n"
    (OUT / "results.md").write_text(text)
    print(text)
    for mode in modes:
        if ("llm_otel", mode) in per_call and ("baseline", mode) in per_call:
            added = per_call[("llm_otel", mode)] - per_call[("baseline", mode)]
            ok = "OK" if added <= TARGETS[mode] else "OVER"
            print(f"llm_otel {mode}: added {added / 1e6:.3f} M (target <= {TARGETS[mode] / 1e6:.2f} M) {ok}")


if __name__ == "__main__":
    main()
