"""Sinks fed by llm-otel's finished spans: Prometheus metrics, the cost API exporter and its spool."""
