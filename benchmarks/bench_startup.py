"""Start-up cost of ``llm_otel.instrument()`` over ``import openai`` alone (issue target: <= 150 M
instructions and <= 0.1 s).

Each variant is one whole Python process (``python -c CODE``), so everything counts: interpreter start,
imports, ``instrument()`` (settings, price table, span processors, the ``/metrics`` endpoint thread). The
added cost of a variant is its total minus the ``openai`` variant's total.

- callgrind: ``valgrind --tool=callgrind`` over the whole process, total instructions (Ir), one run per
  variant (start-up is deterministic to within a few M instructions; ``PYTHONHASHSEED=0``).
- wall clock: paired runs (baseline and variant back to back, the order alternating), the median of the
  per-pair differences, so machine noise common to a pair cancels.

Each variant also reports which optional client modules its process ended up importing: ``instrument()``
must leave ``ollama`` and openai's lazily-loaded modules alone until the application imports them.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: the checkout whose llm_otel is measured (``--root``: another one, e.g. to compare with main)
ROOT = Path(__file__).resolve().parent.parent
_measured = {"root": ROOT}

#: modules instrument() must not import on its own (the application did not)
WATCHED = (
    "ollama",
    "openai.lib.streaming.chat._completions",
    "openai.lib.streaming.responses._responses",
    "openai.resources.responses",
)
_REPORT = (
    "import sys; print('LOADED=' + ','.join(m for m in %r if m in sys.modules))" % (WATCHED,)  # noqa: UP031
)

VARIANTS: dict[str, str] = {
    "openai": "import openai",
    "llm_otel": "import openai, llm_otel; llm_otel.instrument()",
    "llm_otel_no_client": "import llm_otel; llm_otel.instrument()",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = str(_measured["root"])
    # a real /metrics endpoint, on a port no other process holds (9464 may be taken on a shared machine)
    env["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(_free_port())
    return env


def _code(variant: str) -> str:
    return f"{VARIANTS[variant]}\n{_REPORT}"


def run_plain(python: str, variant: str) -> tuple[float, str]:
    """Wall seconds of one process, and the watched modules it imported."""
    start = time.perf_counter()
    # cwd: ``python -c`` puts it first on sys.path, so it must be the measured checkout
    proc = subprocess.run(
        [python, "-c", _code(variant)], env=_env(), cwd=_measured["root"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    loaded = re.search(r"^LOADED=(.*)$", proc.stdout, re.M)
    return elapsed, loaded.group(1) if loaded else "?"


def callgrind(python: str, variant: str, tmp: Path) -> int:
    out = tmp / f"cg.{variant}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
           python, "-c", _code(variant)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), cwd=_measured["root"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed under callgrind:\n{proc.stderr[-3000:]}")
    text = out.read_text()
    m = re.search(r"^totals:\s*(\d+)", text, re.M) or re.search(r"^summary:\s*(\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {out}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter with llm-otel's dependencies")
    ap.add_argument("--pairs", type=int, default=20, help="paired wall-clock runs per variant (0: none)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose llm_otel to measure")
    args = ap.parse_args()
    _measured["root"] = args.root.resolve()
    variants = list(VARIANTS)

    # a first plain run of each variant writes the .pyc files, so no measured run pays for compiling
    loaded = {v: run_plain(args.python, v)[1] for v in variants}

    totals: dict[str, int] = {}
    if not args.no_callgrind:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
            counted = pool.map(lambda v: callgrind(args.python, v, Path(tmp)), variants)
            totals = dict(zip(variants, counted, strict=True))

    walls: dict[str, float] = {}
    for variant in variants[1:]:
        diffs = []
        for i in range(args.pairs):
            order = ["openai", variant] if i % 2 == 0 else [variant, "openai"]
            times = {v: run_plain(args.python, v)[0] for v in order}
            diffs.append(times[variant] - times["openai"])
        if diffs:
            walls[variant] = statistics.median(diffs)

    base = totals.get("openai")
    wall_head = f"added wall (median of {args.pairs} pairs)"
    print(
        f"| variant | code | Ir total | added Ir vs `import openai` | {wall_head} | client modules imported |"
    )
    print("|---|---|---:|---:|---:|---|")
    for variant in variants:
        total = totals.get(variant)
        added = f"{(total - base) / 1e6:+.0f} M" if total is not None and base is not None else "–"
        wall = f"{walls[variant] * 1000:+.0f} ms" if variant in walls else "–"
        ir = f"{total / 1e6:,.0f} M" if total is not None else "–"
        print(
            f"| `{variant}` | `{VARIANTS[variant]}` | {ir} | {added} | {wall} | {loaded[variant] or 'none'} |"
        )


if __name__ == "__main__":
    main()
