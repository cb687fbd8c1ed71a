"""The shipped alert rules only query series llm-otel really exports, under both metric-name sets.

The Grafana dashboard is tested with the stack that provisions it (tests/test_stack.py); the series names
come from the real exporter (tests/exported_metrics.py), never from a hand-written list.
"""

from __future__ import annotations

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
