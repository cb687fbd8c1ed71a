"""The shipped examples: the alert rules only query series llm-otel really exports, under both metric-name
sets, and the example scripts run standalone (``python examples/x.py``) and print what they promise.

The Grafana dashboard is tested with the stack that provisions it (tests/test_stack.py); the series names
come from the real exporter (tests/exported_metrics.py), never from a hand-written list.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from exported_metrics import exported_names, referenced

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_alert_rules_query_series_exported_under_both_name_sets() -> None:
    names = referenced((EXAMPLES / "alert_rules.yml").read_text())
    assert names, "the alert rules query no llm-otel metric"
    for latest in (False, True):
        assert names <= exported_names(latest), names - exported_names(latest)


def test_alert_rule_tests_use_the_series_names_of_the_rules() -> None:
    """promtool's rule tests (alert_rules_test.yml) feed series under the names the rules query."""
    rules = referenced((EXAMPLES / "alert_rules.yml").read_text())
    fed = referenced((EXAMPLES / "alert_rules_test.yml").read_text())
    assert fed <= exported_names(False) & exported_names(True), fed - exported_names(False)
    assert rules <= fed, rules - fed


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
