"""Shared harness of the per-call overhead benchmarks (bench_openai_overhead.py, bench_ollama_overhead.py).

Driver side: run a benchmark script's ``--inner VARIANT MODE N WARMUP`` under callgrind, twice per
(variant, mode) with N1 and N2 calls after the same warm-up, and report
``(Ir(N2) - Ir(N1)) / (N2 - N1)`` instructions per call; optionally time plain (non-valgrind) loops with
``--inner-time VARIANT MODE N WARMUP REPS``. Workload side (inside the measured process): the SDK
TracerProvider + BatchSpanProcessor + no-op exporter pipeline, and the warm-up / ``gc.freeze()`` /
``callgrind_control -i on`` / measured-loop sequence. Only the standard library is imported at module
level, so the peers' venvs can import this module too.
"""

from __future__ import annotations

import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: (variant, mode) -> instructions per call
PerCall = dict[tuple[str, str], float]


# ----------------------------------------------------------------------------------------------------
# Workload side (runs inside the measured process)
# ----------------------------------------------------------------------------------------------------
def noop_provider() -> Any:
    """SDK TracerProvider + BatchSpanProcessor + an exporter that only counts (and keeps the last span)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoopExporter(SpanExporter):
        exported = 0
        last: Any = None

        def export(self, spans: Any) -> SpanExportResult:
            NoopExporter.exported += len(spans)
            NoopExporter.last = spans[-1] if spans else NoopExporter.last
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(NoopExporter()))
    provider._bench_exporter = NoopExporter  # type: ignore[attr-defined]
    return provider


def clean_env() -> None:
    """No OTEL_* / LLM_OTEL_* settings leak from the caller into a variant."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLM_OTEL_")):
            del os.environ[key]


def _warm(one: Callable[[], None], warmup: int) -> None:
    for _ in range(warmup):
        one()
    # A full (gen 2) collection over everything the imports created costs tens of millions of instructions
    # and lands in one run but not the other depending on thread interleaving: freeze the warm heap so the
    # measured calls pay only for collecting what they allocate themselves.
    gc.collect()
    gc.freeze()


def run_counted(one: Callable[[], None], n: int, warmup: int) -> None:
    """Warm up, then (under valgrind) switch callgrind's counting on and make the n measured calls."""
    _warm(one, warmup)
    if os.environ.get("BENCH_CALLGRIND_ON"):
        # valgrind ran with --instr-atstart=no: start-up and warm-up run fast and uncounted; from here on
        # everything is counted (the tail of this subprocess call too, the same in the N1 and N2 runs).
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    for _ in range(n):
        one()


def run_timed(one: Callable[[], None], n: int, warmup: int, reps: int) -> list[float]:
    """Warm up, then ``reps`` plain timed loops of n calls; returns microseconds per call of each loop."""
    _warm(one, warmup)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            one()
        out.append((time.perf_counter_ns() - t0) / n / 1e3)
    return out


def report(provider: Any, variant: str, mode: str) -> None:
    """Shut the pipeline down; with BENCH_VERBOSE=1 say what was exported (a check that spans happen)."""
    provider.shutdown()
    if os.environ.get("BENCH_VERBOSE"):
        exp = provider._bench_exporter
        attrs = dict(exp.last.attributes) if exp.last is not None else {}
        print(f"{variant}/{mode}: {exp.exported} spans exported; last: {exp.last and exp.last.name} "
              f"{len(attrs)} attrs {sorted(attrs)}", file=sys.stderr)  # fmt: skip


def inner_main(argv: list[str], workload: Callable[[str, str], tuple[Any, Callable[[], None]]]) -> bool:
    """Run ``--inner`` / ``--inner-time`` (workload(variant, mode) -> (provider, one)); False if neither."""
    if len(argv) > 1 and argv[1] == "--inner":
        variant, mode, n, warmup = argv[2], argv[3], int(argv[4]), int(argv[5])
        provider, one = workload(variant, mode)
        run_counted(one, n, warmup)
        report(provider, variant, mode)
        return True
    if len(argv) > 1 and argv[1] == "--inner-time":
        variant, mode, n, warmup, reps = argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6])
        provider, one = workload(variant, mode)
        us = run_timed(one, n, warmup, reps)
        report(provider, variant, mode)
        print(json.dumps(us))
        return True
    return False


# ----------------------------------------------------------------------------------------------------
# Driver side
# ----------------------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_", "TRACELOOP_"))}
    # The runs use cwd=/: a relative PYTHONPATH (``PYTHONPATH=.``) would silently import another llm_otel.
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p
        )
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _file_total(path: Path) -> int:
    text = path.read_text()
    m = re.search(r"^totals:\s*(\d+)", text, re.M) or re.search(r"^summary:\s*(\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {path}")
    return int(m.group(1))


def callgrind_threads(
    python: str, script: Path, variant: str, mode: str, n: int, warmup: int, tmp: Path
) -> tuple[int, int]:
    """(all threads, the main thread = the caller's) instructions (Ir) of one ``script --inner variant mode
    n warmup`` run under callgrind (``--separate-threads=yes``: one output file per thread, ``-01`` the
    main thread; the others are the SDK's batch exporter, llm-otel's metrics fold, ...)."""
    out = tmp / f"cg.{variant}.{mode}.{n}.out"
    env = _env()
    env["BENCH_CALLGRIND_ON"] = "1"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
           "--dump-line=no", "--separate-threads=yes",
           python, str(script), "--inner", variant, mode, str(n), str(warmup)]  # fmt: skip
    # cwd=/ so that peers' venvs cannot import llm_otel from the work tree
    proc = subprocess.run(cmd, cwd="/", env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant}/{mode}/{n} failed:\n{proc.stderr[-3000:]}")
    files = sorted(tmp.glob(out.name + "-*"))
    if not files:  # an old valgrind ignoring the option: one file, all threads
        total = _file_total(out)
        return total, total
    main = tmp / (out.name + "-01")
    return sum(_file_total(f) for f in files), _file_total(main)


def callgrind_total(
    python: str, script: Path, variant: str, mode: str, n: int, warmup: int, tmp: Path
) -> int:
    """Total instructions (Ir), all threads, of one ``script --inner variant mode n warmup`` run."""
    return callgrind_threads(python, script, variant, mode, n, warmup, tmp)[0]


def measure(
    script: Path,
    variants: list[str],
    modes: list[str],
    counts: dict[str, tuple[int, int, int]],
    jobs: int,
    python_for: Callable[[str], str] = lambda variant: sys.executable,
    caller: PerCall | None = None,
) -> PerCall:
    """Instructions per call of every (variant, mode), all threads; counts[mode] = (warm-up, N1, N2).
    ``caller``, if given, receives the same for the main (the calling) thread alone."""
    tmp = Path(tempfile.mkdtemp(prefix="llm-otel-cg-"))
    tasks = []
    for variant in variants:
        for mode in modes:
            warmup, n1, n2 = counts[mode]
            for n in (n1, n2):
                tasks.append((variant, mode, n, warmup))
    # longest first (streams), so the pool ends together
    tasks.sort(key=lambda t: (not t[1].startswith("stream"), -t[2]))
    totals: dict[tuple[str, str, int], int] = {}
    mains: dict[tuple[str, str, int], int] = {}

    def run(task: tuple[str, str, int, int]) -> None:
        variant, mode, n, warmup = task
        t0 = time.monotonic()
        python = python_for(variant)
        key = (variant, mode, n)
        totals[key], mains[key] = callgrind_threads(python, script, variant, mode, n, warmup, tmp)
        print(f"  {variant:22s} {mode:9s} n={n:<5d} Ir={totals[key]:>14,d} "
              f"(caller thread {mains[key]:>14,d}) ({time.monotonic() - t0:.0f}s)",
              file=sys.stderr, flush=True)  # fmt: skip

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, tasks))
    result = {}
    for variant in variants:
        for mode in modes:
            _, n1, n2 = counts[mode]
            result[(variant, mode)] = (totals[(variant, mode, n2)] - totals[(variant, mode, n1)]) / (n2 - n1)
            if caller is not None:
                caller[(variant, mode)] = (mains[(variant, mode, n2)] - mains[(variant, mode, n1)]) / (
                    n2 - n1
                )
    return result


def wallclock(
    script: Path,
    variants: list[str],
    modes: list[str],
    counts: dict[str, tuple[int, int]],
    reps: int,
    python_for: Callable[[str], str] = lambda variant: sys.executable,
) -> dict[tuple[str, str], list[float]]:
    """Microseconds per call of ``reps`` plain timed loops per (variant, mode), one process each, run one
    after the other (no valgrind, nothing else of ours running); counts[mode] = (warm-up, N)."""
    result = {}
    for mode in modes:
        warmup, n = counts[mode]
        for variant in variants:
            args = ["--inner-time", variant, mode, str(n), str(warmup), str(reps)]
            cmd = [python_for(variant), str(script), *args]
            proc = subprocess.run(cmd, cwd="/", env=_env(), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{variant}/{mode} timing failed:\n{proc.stderr[-3000:]}")
            result[(variant, mode)] = json.loads(proc.stdout.strip().splitlines()[-1])
            med = statistics.median(result[(variant, mode)])
            print(f"  {variant:22s} {mode:9s} wall {med:8.1f} us/call (median of {reps})",
                  file=sys.stderr, flush=True)  # fmt: skip
    return result


def fmt_m(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e6:.3f} M"


def table(per_call: PerCall, variants: list[str], modes: list[str], mode_label: Callable[[str], str]) -> str:
    """Markdown: instructions per call, added vs baseline, added relative to bare_span's added."""
    lines = ["| variant | mode | instructions / call | added vs baseline | added / bare_span added |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for mode in modes:
        base = per_call.get(("baseline", mode))
        bare = per_call.get(("bare_span", mode))
        bare_added = bare - base if bare is not None and base is not None else None
        for variant in variants:
            v = per_call[(variant, mode)]
            added = v - base if base is not None else None
            ratio = f"{added / bare_added:.2f}x" if added is not None and bare_added else "n/a"
            lines.append(f"| {variant} | {mode_label(mode)} | {fmt_m(v)} | {fmt_m(added)} | {ratio} |")
    return "\n".join(lines)


def wall_table(
    wall: dict[tuple[str, str], list[float]], variants: list[str], modes: list[str],
    mode_label: Callable[[str], str],
) -> str:  # fmt: skip
    """Markdown: median (min-max) microseconds per call, and the median's difference to baseline."""
    lines = ["| variant | mode | µs / call, median (min–max) | added vs baseline (medians) |",
             "|---|---|---:|---:|"]  # fmt: skip
    for mode in modes:
        base = statistics.median(wall[("baseline", mode)]) if ("baseline", mode) in wall else None
        for variant in variants:
            if (variant, mode) not in wall:
                continue
            runs = wall[(variant, mode)]
            med = statistics.median(runs)
            added = f"{med - base:+.1f} µs" if base is not None else "n/a"
            lines.append(f"| {variant} | {mode_label(mode)} | {med:.1f} ({min(runs):.1f}–{max(runs):.1f}) "
                         f"| {added} |")  # fmt: skip
    return "\n".join(lines)


def dist_version(dist: str) -> str:
    """An installed distribution's version for a results header, or ``n/a``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "n/a"
