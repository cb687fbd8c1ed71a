"""The shipped Grafana dashboard and alert rules only query metrics llm-otel really exposes."""

from __future__ import annotations

import json
import re
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
