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
    "Records lost, by reason: spool_full (size cap), spool_busy (locked by another process while the queue "
    "was full), spool_error (unwritable), unmappable, spool_damaged (unreadable in a damaged spool), "
    "shutdown (not spooled by the deadline), temporary_spool (left in a per-process fallback spool).",
    ["reason"],
    registry=REGISTRY,
)
SPOOL_DAMAGED = Counter(
    "llm_otel_cost_export_spool_damaged",
    "Damaged spool files found at start-up, moved aside (kept next to the spool) and replaced by a new one.",
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
