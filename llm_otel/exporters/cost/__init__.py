"""Cost records to a cost API: span processor -> in-memory queue -> SQLite spool -> HTTP, exactly once.

``build_cost_processor(url, api_key, ...)`` is the entry point; ``processor.py`` holds the span processor,
``exporter.py`` the exporter and its spooler/sender threads, ``records.py`` the span -> record mapping,
``spool.py`` the durable spool and dead-letter file, ``transport.py`` the HTTP client, ``metrics.py`` the
exporter's own Prometheus metrics. The record format is :mod:`llm_otel.cost_contract`.
"""

from .exporter import CostAPIExporter
from .processor import CostRecordProcessor, build_cost_processor

__all__ = ["CostAPIExporter", "CostRecordProcessor", "build_cost_processor"]
