"""Cost records to a cost API: span processor -> in-memory queue -> SQLite spool -> HTTP, exactly once.

``build_cost_processor(url, api_key, ...)`` is the entry point; ``processor.py`` holds the span processor,
``exporter.py`` the exporter and its spooler/sender threads, ``records.py`` the span -> record mapping,
``spool.py`` the durable spool and dead-letter file, ``transport.py`` the HTTP client, ``metrics.py`` the
exporter's own Prometheus metrics. The record format is :mod:`llm_otel.cost_contract`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exporter import CostAPIExporter
    from .processor import CostRecordProcessor, build_cost_processor

__all__ = ["CostAPIExporter", "CostRecordProcessor", "build_cost_processor"]


def __getattr__(name: str) -> Any:
    """Loaded on first use: the live view imports ``records`` alone, and an application without a cost API
    URL never pays for the spool (sqlite3) and the sender at start-up."""
    if name == "CostAPIExporter":
        from .exporter import CostAPIExporter

        return CostAPIExporter
    if name in ("CostRecordProcessor", "build_cost_processor"):
        from . import processor

        return getattr(processor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
