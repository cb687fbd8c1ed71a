"""Self-metrics of the cost exporter, on llm-otel's Prometheus endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from ...metrics_registry import REGISTRY

RECORDS_SENT = Counter(
    "llm_otel_cost_export_records_sent",
    "Cost records the cost API acknowledged (accepted, or already held as a duplicate id).",
    registry=REGISTRY,
)
RECORDS_RETRIED = Counter(
    "llm_otel_cost_export_records_retried",
    "Records in a request that failed retryably (429, 5xx, timeout, network, bad answer); they stay spooled.",
    registry=REGISTRY,
)
RECORDS_SPOOLED = Counter(
    "llm_otel_cost_export_records_spooled",
    "Records committed to the disk spool (every record passes through it before it is sent).",
    registry=REGISTRY,
)
RECORDS_DEAD_LETTERED = Counter(
    "llm_otel_cost_export_records_dead_lettered",
    "Records the cost API rejected as invalid; written to the dead-letter file, never retried.",
    registry=REGISTRY,
)
RECORDS_DROPPED = Counter(
    "llm_otel_cost_export_records_dropped",
    "Records lost: spool at its size cap, spool unwritable, or a span that could not be mapped.",
    ["reason"],
    registry=REGISTRY,
)
SPOOL_DEPTH = Gauge(
    "llm_otel_cost_export_spool_depth", "Records waiting in the disk spool.", registry=REGISTRY
)
LAST_SUCCESS = Gauge(
    "llm_otel_cost_export_last_success_timestamp_seconds",
    "Unix time of the last request the cost API acknowledged.",
    registry=REGISTRY,
)
