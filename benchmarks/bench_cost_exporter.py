"""Cost exporter benchmarks: app-thread cost of ``on_end``, delivery throughput, outage footprint.

    python benchmarks/bench_cost_exporter.py                  # all three, 30 s outage
    python benchmarks/bench_cost_exporter.py --outage-seconds 600 --only outage

1. callgrind: instructions per ``CostRecordProcessor.on_end`` on the application thread only
   (``--separate-threads=yes``, thread 1), as (I(N2) - I(N1)) / (N2 - N1), minus the same loop calling an
   empty function.
2. throughput and CPU shares, for max_batch 1000 and 100: pre-built finished spans go in through
   ``on_end``; wall time until the last one is acknowledged, and CPU time per record of each share: the
   application thread (``on_end``), the spooler and sender threads (per-thread CPU clocks) and the server
   process (``/proc``). Three runs: end to end with the reference server (``llm-otel cost-api`` in a
   subprocess, checked to hold every record), the exporter alone against a minimal sink that answers 200
   without reading, and the server alone receiving pre-built gzip batches. "records/s on one core" is
   1 / (CPU seconds per record), which a loaded machine does not distort the way wall time does.
3. a simulated outage (nothing listening) at a steady call rate: RSS and spool size over time, extrapolated
   to 10 minutes.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import Tracer  # noqa: E402
from opentelemetry.util.types import AttributeValue  # noqa: E402

from llm_otel.exporters.cost import CostRecordProcessor, build_cost_processor  # noqa: E402
from llm_otel.exporters.cost.records import span_to_row  # noqa: E402
from llm_otel.semconv import SCOPE_NAME  # noqa: E402

ATTRS: dict[str, AttributeValue] = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 143, "gen_ai.usage.cache_read.input_tokens": 512,
    "gen_ai.usage.cost": 0.0002076, "llm_otel.pricing.status": "priced", "llm_otel.tag.tenant": "acme",
    "llm_otel.tag.feature": "search",
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tracer_for(processor: CostRecordProcessor | None) -> Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    if processor is not None:
        provider.add_span_processor(processor)
    return provider.get_tracer(SCOPE_NAME)


def emit(tracer: Tracer, n: int) -> None:
    for _ in range(n):
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes(ATTRS)


def one_span() -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer(SCOPE_NAME).start_as_current_span("chat") as span:
        span.set_attributes(ATTRS)
    return exporter.get_finished_spans()[0]


# --- 1. callgrind ------------------------------------------------------------------------------------


def _callgrind_child(mode: str, n: int, workdir: str) -> None:
    """Runs under valgrind: the measured loop, on the main thread."""
    span = one_span()
    if mode == "map":  # the spooler's first step, one record at a time
        for _ in range(n):
            span_to_row(span)
        os._exit(0)
    if mode == "server":  # the server's handler minus HTTP: decode, validate, store (batches of 1000)
        _server_loop(span, n, workdir)
        os._exit(0)
    processor = build_cost_processor(
        f"http://127.0.0.1:{free_port()}", None, spool_path=Path(workdir) / "spool.sqlite", max_queue=10**7,
        retry_initial=60.0, retry_max=60.0,
    )  # fmt: skip
    target = processor.on_end if mode == "on_end" else (lambda s: None)
    for _ in range(n):
        target(span)
    processor.exporter.shutdown(timeout=0.0)
    os._exit(0)  # skip interpreter teardown: it is not part of the measurement


def _server_loop(span: ReadableSpan, n: int, workdir: str) -> None:
    from llm_otel.cost_server.server import handle_records
    from llm_otel.cost_server.store import UsageStore

    row = span_to_row(span)
    assert row is not None

    def body(b: int) -> bytes:  # 1000 records with distinct ids (a duplicate costs the store less)
        rows = ",".join(row[1].replace('"id":"', f'"id":"{b}-{i}-', 1) for i in range(1000))
        return ('{"records":[' + rows + "]}").encode()

    bodies = [body(b) for b in range(n // 1000)]
    store = UsageStore(Path(workdir) / "usage.sqlite")
    for body in bodies:
        status, _answer = handle_records(store, json.loads(body))
        assert status == 200


def _main_thread_instructions(out_prefix: str) -> int:
    files = sorted(glob.glob(out_prefix + "*"))
    thread1 = [f for f in files if f.endswith("-01")] or files
    with open(thread1[0]) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {thread1[0]}")


def bench_callgrind(n1: int, n2: int, modes: tuple[str, ...] = ("on_end", "empty")) -> dict[str, float]:
    if not shutil.which("valgrind"):
        return {}
    results: dict[str, float] = {}
    for mode in modes:
        counts = []
        for n in (n1, n2):
            with tempfile.TemporaryDirectory() as tmp:
                prefix = os.path.join(tmp, "cg.out")
                valgrind = ["valgrind", "--tool=callgrind", "--separate-threads=yes"]
                valgrind.append(f"--callgrind-out-file={prefix}")
                subprocess.run(
                    [*valgrind, sys.executable, __file__, "--_callgrind-child", mode, str(n), tmp],
                    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)},
                )  # fmt: skip
                counts.append(_main_thread_instructions(prefix))
        results[mode] = (counts[1] - counts[0]) / (n2 - n1)
    return results


# --- 2. throughput and CPU shares ---------------------------------------------------------------------

SINK = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"accepted":0,"duplicates":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST
srv = HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
print("ready", flush=True)
srv.serve_forever()
"""


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a child process has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(thread: Any) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _start(kind: str, tmp: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    if kind == "server":
        cmd = [sys.executable, "-m", "llm_otel.cli", "cost-api", "--no-auth", "--db", f"{tmp}/api.sqlite",
               "--port", str(port)]  # fmt: skip
    else:
        cmd = [sys.executable, "-c", SINK, str(port)]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


def finished_spans(n: int) -> list[ReadableSpan]:
    """``n`` finished GenAI spans (distinct ids), made before any measurement."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit(provider.get_tracer(SCOPE_NAME), n)
    return list(exporter.get_finished_spans())


def bench_pipeline(spans: list[ReadableSpan], max_batch: int, target: str) -> dict[str, float]:
    """Finished spans in through ``on_end`` (the application thread's share), out acknowledged by
    ``target`` ("server": the reference server storing them; "sink": a minimal HTTP server that answers
    200 without reading the records). CPU seconds per thread / process, wall time to the last ack."""
    from llm_otel.exporters.cost.metrics import RECORDS_SENT

    n = len(spans)
    tmp = tempfile.mkdtemp()
    try:
        proc, url = _start(target, tmp)
        processor = build_cost_processor(url, None, spool_path=f"{tmp}/spool.sqlite", max_batch=max_batch,
                                         max_queue=10 * n)  # fmt: skip
        exporter = processor.exporter
        time.sleep(0.3)  # threads started, first (empty) rounds done
        sent0 = RECORDS_SENT._value.get()
        threads = {"spooler": exporter._spooler, "sender": exporter._sender}
        cpu0 = {name: _thread_cpu(t) for name, t in threads.items()}
        remote0 = _process_cpu(proc.pid)
        wall0, app0 = time.perf_counter(), time.thread_time()
        on_end = processor.on_end
        for span in spans:
            on_end(span)
        app = time.thread_time() - app0
        exporter.spool_wake.set()
        while RECORDS_SENT._value.get() - sent0 < n:
            time.sleep(0.005)
        wall = time.perf_counter() - wall0
        shares = {name: _thread_cpu(t) - cpu0[name] for name, t in threads.items()}
        remote = _process_cpu(proc.pid) - remote0
        if target == "server":
            with urllib.request.urlopen(url + "/v1/costs", timeout=60) as resp:
                stored = json.load(resp)["total"]["records"]
            if stored != n:
                raise RuntimeError(f"server stored {stored} of {n}")
        processor.shutdown()
        proc.terminate()
        proc.wait(10)
        return {"wall": wall, "app": app, **shares, target: remote, "n": n}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_server_alone(spans: list[ReadableSpan], max_batch: int) -> dict[str, float]:
    """The reference server receiving pre-built gzip batches over one keep-alive connection: its CPU."""
    import gzip
    import http.client

    from llm_otel.exporters.cost.records import encode, span_to_record

    rows = [encode(rec) for rec in map(span_to_record, spans) if rec is not None]
    bodies = [
        gzip.compress(('{"records":[' + ",".join(rows[i : i + max_batch]) + "]}").encode(), 1)
        for i in range(0, len(rows), max_batch)
    ]
    tmp = tempfile.mkdtemp()
    try:
        proc, url = _start("server", tmp)
        conn = http.client.HTTPConnection(url.split("//")[1], timeout=60)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        cpu0, wall0 = _process_cpu(proc.pid), time.perf_counter()
        for body in bodies:
            conn.request("POST", "/v1/usage", body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"server answered {resp.status}")
        wall = time.perf_counter() - wall0
        cpu = _process_cpu(proc.pid) - cpu0
        conn.close()
        proc.terminate()
        proc.wait(10)
        return {"wall": wall, "server": cpu, "n": len(rows)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def throughput_rows(records: int, batches: tuple[int, ...]) -> list[tuple[str, str]]:
    """Records/s and CPU µs per record, end to end and per share, for each batch size."""
    t0 = time.thread_time()
    spans = finished_spans(records)
    span_us = (time.thread_time() - t0) / records * 1e6
    rows = [("SDK span with 11 attributes, made by the app (not export), CPU µs/span", f"{span_us:.1f}")]

    def us(seconds: float, n: float) -> str:
        return f"{seconds / n * 1e6:.1f}"

    for batch in batches:
        e2e = bench_pipeline(spans, batch, "server")
        sink = bench_pipeline(spans, batch, "sink")
        alone = bench_server_alone(spans, batch)
        n = e2e["n"]
        cpu = e2e["app"] + e2e["spooler"] + e2e["sender"] + e2e["server"]
        exporter_cpu = sink["app"] + sink["spooler"] + sink["sender"]
        rows += [
            (f"batch {batch}: end to end, records/s (wall, this machine)", f"{n / e2e['wall']:,.0f}"),
            ("  end to end, CPU µs/record (app + spooler + sender + server)",
             f"{us(cpu, n)} = {us(e2e['app'], n)} + {us(e2e['spooler'], n)} + {us(e2e['sender'], n)} + "
             f"{us(e2e['server'], n)}"),
            ("  end to end, records/s on one core (1 / CPU per record)", f"{n / cpu:,.0f}"),
            ("  exporter alone (minimal sink), CPU µs/record (app + spooler + sender)",
             f"{us(exporter_cpu, n)} = {us(sink['app'], n)} + {us(sink['spooler'], n)} + "
             f"{us(sink['sender'], n)}"),
            ("  exporter alone, records/s on one core", f"{n / exporter_cpu:,.0f}"),
            ("  server alone (pre-built batches), CPU µs/record", us(alone["server"], alone["n"])),
            ("  server alone, records/s on one core", f"{alone['n'] / alone['server']:,.0f}"),
        ]  # fmt: skip
    return rows


# --- 3. outage footprint -----------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        match = re.search(r"VmRSS:\s+(\d+) kB", fh.read())
    return int(match.group(1)) / 1024 if match else float("nan")


def _spool_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def bench_outage(seconds: float, rate: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp()
    try:
        spool = Path(tmp) / "spool.sqlite"
        processor = build_cost_processor(f"http://127.0.0.1:{free_port()}", None, spool_path=spool)
        tracer = tracer_for(processor)
        emit(tracer, 100)  # warm up
        time.sleep(0.5)
        rss0, bytes0 = _rss_mb(), _spool_bytes(spool)
        start = time.monotonic()
        sent = 0
        samples: list[tuple[float, float, int]] = []
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            emit(tracer, due - sent)
            sent = due
            if not samples or elapsed - samples[-1][0] >= 1.0:
                samples.append((elapsed, _rss_mb(), _spool_bytes(spool)))
            time.sleep(0.01)
        time.sleep(0.5)
        depth = processor.exporter.spool_depth()
        rss1, bytes1 = _rss_mb(), _spool_bytes(spool)
        processor.exporter.shutdown(timeout=0.0)
        half = [s for s in samples if s[0] >= seconds / 2] or samples
        rss_slope = (rss1 - half[0][1]) / max(1e-9, seconds - half[0][0])  # MB/s over the second half
        per_record = (bytes1 - bytes0) / max(1, depth)  # includes the WAL file (bounded, ~4 MB)
        spool_slope = (bytes1 - half[0][2]) / max(1e-9, seconds - half[0][0])  # bytes/s, second half
        return {
            "seconds": seconds, "rate": rate, "calls": sent, "spooled": depth,
            "rss_start_mb": rss0, "rss_end_mb": rss1, "rss_slope_mb_per_min": rss_slope * 60,
            "spool_mb": bytes1 / 1e6, "bytes_per_record": per_record,
            "spool_mb_10min": (bytes1 + spool_slope * (600 - seconds)) / 1e6,
            "rss_mb_10min": rss1 + rss_slope * (600 - seconds),
        }  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["callgrind", "throughput", "outage"])
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=200, help="calls per second during the outage")
    parser.add_argument("--records", type=int, default=20_000, help="records for the throughput run")
    parser.add_argument("--batches", type=int, nargs="+", default=[1000, 100], help="max_batch values")
    parser.add_argument("--_callgrind-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._callgrind_child:
        mode, n, workdir = args._callgrind_child
        _callgrind_child(mode, int(n), workdir)
        return
    rows: list[tuple[str, str]] = []
    if args.only in (None, "callgrind"):
        cg = bench_callgrind(2_000, 22_000)
        if cg:
            rows.append(("on_end instructions/call (app thread)", f"{cg['on_end']:,.0f}"))
            rows.append(("  of which loop + call overhead", f"{cg['empty']:,.0f}"))
            rows.append(("  on_end net (target <= 50,000)", f"{cg['on_end'] - cg['empty']:,.0f}"))
        else:
            rows.append(("on_end instructions/call", "valgrind not installed"))
        cg = bench_callgrind(1_000, 3_000, ("map", "server"))
        if cg:
            rows.append(("span -> spooled JSON (span_to_row), instructions/record", f"{cg['map']:,.0f}"))
            rows.append(("server: decode + validate + store, instructions/record", f"{cg['server']:,.0f}"))
    if args.only in (None, "throughput"):
        rows += throughput_rows(args.records, tuple(args.batches))
    if args.only in (None, "outage"):
        o = bench_outage(args.outage_seconds, args.rate)
        rows += [
            (
                f"outage: {o['calls']} calls in {o['seconds']:.0f} s at {o['rate']}/s",
                f"{o['spooled']} spooled",
            ),
            ("  RSS start -> end (MB)", f"{o['rss_start_mb']:.1f} -> {o['rss_end_mb']:.1f}"),
            ("  RSS slope, second half (MB/min)", f"{o['rss_slope_mb_per_min']:.2f}"),
            ("  spool size (MB), bytes/record", f"{o['spool_mb']:.2f}, {o['bytes_per_record']:.0f}"),
            (
                "  extrapolated to 10 min: spool MB / RSS MB",
                f"{o['spool_mb_10min']:.1f} / {o['rss_mb_10min']:.1f}",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 20}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
