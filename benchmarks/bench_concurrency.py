"""Concurrency: calls/s as application threads grow (1 to 64) and with 200 concurrent async streams, with
and without llm-otel, and the process's memory along the way (wall clock: indicative, see the README).

Workload: the openai client of ``bench_openai_overhead.py`` (in-process mock transport, same bodies),
the same no-op tracing pipeline. One process per variant: ``baseline`` (uninstrumented) and ``llm_otel``
(``instrument(prometheus_port=0)``: spans, cost, Prometheus metrics folded off the calling threads, live
view). Each thread count makes the same total number of non-stream calls, split evenly over the threads;
then rounds of 200 concurrent ``AsyncOpenAI`` streams (50 chunks each) in one event loop. Memory is the
process's resident set (VmRSS) after each step. At the end the llm_otel process checks that its
``llm_otel_requests_total`` equals the calls made and no span was dropped from the metrics.

    python benchmarks/bench_concurrency.py            # about 2 min on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _callgrind import _env, clean_env, noop_provider  # noqa: E402

THREADS = (1, 2, 4, 8, 16, 32, 64)
OUT = Path(__file__).resolve().parent / "out"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _async_client() -> Any:
    import httpx2
    import openai
    from bench_openai_overhead import _completion_body, _stream_body

    completion = _completion_body()
    stream = _stream_body()

    async def handler(request: Any) -> Any:
        if b'"stream":true' in request.content:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=completion)

    return openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handler)),
    )


def inner(variant: str, total_calls: int, rounds: int, streams: int) -> dict[str, Any]:
    from bench_openai_overhead import MODEL, _client

    clean_env()
    provider = noop_provider()
    if variant == "llm_otel":
        import llm_otel

        llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    client = _client()
    messages = [{"role": "user", "content": "Say this is a test"}]
    create = client.chat.completions.create
    made = 0
    for _ in range(200):  # warm-up
        create(model=MODEL, messages=messages)
    made += 200
    result: dict[str, Any] = {"threads": [], "async": [], "rss_start_mb": _rss_mb()}
    for n_threads in THREADS:
        per_thread = total_calls // n_threads
        barrier = threading.Barrier(n_threads + 1)

        def work(per_thread: int = per_thread, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(per_thread):
                create(model=MODEL, messages=messages)

        threads = [threading.Thread(target=work) for _ in range(n_threads)]
        for t in threads:
            t.start()
        barrier.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.join()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        calls = per_thread * n_threads
        made += calls
        result["threads"].append(
            {
                "threads": n_threads,
                "calls_per_s": calls / elapsed,
                "cpu_us": cpu / calls * 1e6,
                "rss_mb": _rss_mb(),
            }
        )
        print(f"  {variant} {n_threads:3d} threads: {result['threads'][-1]}", file=sys.stderr, flush=True)

    aclient = _async_client()
    acreate = aclient.chat.completions.create

    async def one_stream() -> None:
        chunks = 0
        async for _ in await acreate(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        ):
            chunks += 1
        assert chunks == 52, chunks

    async def rounds_of_streams() -> None:
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one_stream() for _ in range(streams)))
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            result["async"].append(
                {"streams_per_s": streams / elapsed, "cpu_us": cpu / streams * 1e6, "rss_mb": _rss_mb()}
            )
            print(f"  {variant} {streams} async streams: {result['async'][-1]}", file=sys.stderr, flush=True)

    asyncio.run(rounds_of_streams())
    made += rounds * streams
    if variant == "llm_otel":
        from llm_otel.metrics_registry import REGISTRY

        requests = sum(
            s.value
            for m in REGISTRY.collect()
            if m.name == "llm_otel_requests"
            for s in m.samples
            if s.name == "llm_otel_requests_total"
        )
        dropped = REGISTRY.get_sample_value("llm_otel_metrics_dropped_spans_total") or 0
        result["metrics_exact"] = requests == made and dropped == 0
        result["requests_total"] = requests
        result["calls_made"] = made
    provider.shutdown()
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        out = inner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3200, help="non-stream calls per thread count (all threads)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of concurrent async streams")
    ap.add_argument("--streams", type=int, default=200, help="concurrent async streams per round")
    args = ap.parse_args()
    results = {}
    for variant in ("baseline", "llm_otel"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--inner", variant, str(args.calls),
               str(args.rounds), str(args.streams)]  # fmt: skip
        proc = subprocess.run(cmd, cwd="/", env=_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    base, lo = results["baseline"], results["llm_otel"]
    md = ["# Concurrency (wall clock and process CPU time: NOISY, indicative only)", "",
          f"{args.calls} non-stream calls per thread count; {args.rounds} rounds of {args.streams} "
          "concurrent async 50-chunk streams. calls/s: wall clock; CPU µs: process CPU time (all threads) "
          "per call, less sensitive to other load; ratio: llm_otel / baseline of each; RSS: resident memory "
          "after the step.", "",
          "| threads | calls/s base | calls/s llm_otel | ratio | CPU µs/call base "
          "| CPU µs/call llm_otel | ratio | RSS MB base | RSS MB llm_otel |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for b, o in zip(base["threads"], lo["threads"], strict=True):
        md.append(f"| {b['threads']} | {b['calls_per_s']:.0f} | {o['calls_per_s']:.0f} | "
                  f"{o['calls_per_s'] / b['calls_per_s']:.2f} | {b['cpu_us']:.0f} | {o['cpu_us']:.0f} | "
                  f"{o['cpu_us'] / b['cpu_us']:.2f} | {b['rss_mb']:.1f} | {o['rss_mb']:.1f} |")  # fmt: skip
    md += ["", "| async round | streams/s base | streams/s llm_otel | ratio | CPU µs/stream base "
           "| CPU µs/stream llm_otel | ratio | RSS MB base | RSS MB llm_otel |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for i, (b, o) in enumerate(zip(base["async"], lo["async"], strict=True), 1):
        md.append(f"| {i} | {b['streams_per_s']:.0f} | {o['streams_per_s']:.0f} | "
                  f"{o['streams_per_s'] / b['streams_per_s']:.2f} | {b['cpu_us']:.0f} | {o['cpu_us']:.0f} | "
                  f"{o['cpu_us'] / b['cpu_us']:.2f} | {b['rss_mb']:.1f} | {o['rss_mb']:.1f} |")  # fmt: skip
    md += ["", f"llm_otel metrics exact at the end: {lo.get('metrics_exact')} "
           f"(llm_otel_requests_total {lo.get('requests_total')}, "
           f"calls made {lo.get('calls_made')})"]  # fmt: skip
    text = "\n".join(md) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "concurrency_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
