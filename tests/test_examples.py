"""The shipped examples: the Grafana dashboard and alert rules only query metrics llm-otel really exposes, and
the example scripts run standalone (``python examples/x.py``) and print what they promise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from prometheus_client import generate_latest

import llm_otel.exporters.cost.metrics  # noqa: F401 - registers the cost exporter's self-metrics
from llm_otel.exporters.prometheus import PrometheusMetricsProcessor
from llm_otel.metrics_registry import REGISTRY

EXAMPLES = Path(__file__).parents[1] / "examples"
_NAME = re.compile(r"\b((?:llm_otel|gen_ai_client)_[a-z_]+)\b")  # metric names, not label names
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _exposed() -> set[str]:
    PrometheusMetricsProcessor()  # registers (or reuses) every family in the registry
    text = generate_latest(REGISTRY).decode()
    return {_family(n) for n in re.findall(r"^# TYPE (\S+) ", text, re.M)}


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _referenced(text: str) -> set[str]:
    return {_family(n) for n in _NAME.findall(text)}


def test_dashboard_queries_existing_metrics() -> None:
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    referenced = _referenced(exprs)
    assert referenced, "the dashboard queries no llm-otel metric"
    assert referenced <= _exposed(), referenced - _exposed()


def test_alert_rules_query_existing_metrics() -> None:
    referenced = _referenced((EXAMPLES / "alert_rules.yml").read_text())
    assert referenced and referenced <= _exposed(), referenced - _exposed()


def run_example(name: str) -> str:
    """``python examples/<name>`` in a fresh interpreter (no OTEL_*/LLM_OTEL_* settings); its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # this work tree's llm_otel
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_track_anthropic_example() -> None:
    out = run_example("track_anthropic.py")
    assert "span 'chat claude-sonnet-4-5': provider=anthropic" in out
    assert "851 input (512 read from the cache, 256 written to it), 4 output" in out
    # 83 uncached * 3/M + 512 read * 0.30/M + 256 written * 3.75/M + 4 output * 15/M
    assert "pricing priced, source bundled:2026-11-01:anthropic/claude-sonnet-4-5" in out
    assert "exact: $0.0014226 " in out


def test_record_usage_example() -> None:
    out = run_example("record_usage.py")
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith("==")}
    assert "2 calls" in lines["claude-haiku-4-5-20251001"]  # reported twice, counted once
    assert lines["gemini-2.5-pro"].endswith("$0.60572")  # 230000 * 2.5/M + 2048 * 15/M: the long-context rate
    total = lines["total"].split("$")[1]
    assert Decimal(total) == Decimal("0.6640572")
    assert "expected from the report: $0.6640572 (equal)" in out
