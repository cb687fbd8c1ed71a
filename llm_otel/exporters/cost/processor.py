"""The span processor in front of the cost exporter, and :func:`build_cost_processor`, the one entry point.

A separate processor (rather than the exporter behind a ``BatchSpanProcessor``) because cost records must
cover every call: ``on_end`` sees recorded-but-unsampled spans too, and all it does on the application
thread is one append to the exporter's queue.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from ...guard import report
from .exporter import CostAPIExporter


class CostRecordProcessor(SpanProcessor):
    """Hands llm-otel's finished spans (sampled or not) to a :class:`CostAPIExporter`: one append.
    (``on_start`` is the base class's no-op.)"""

    def __init__(self, exporter: CostAPIExporter) -> None:
        self.exporter = exporter
        self._enqueue = exporter.enqueue

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._enqueue(span)
        except Exception as exc:  # never into the application's call
            report("cost_export.on_end", exc)

    def spool_queued(self, deadline: float) -> bool:
        """Commit the queued records to the spool now (``deadline``: ``time.monotonic()``)."""
        return self.exporter.spool_queued(deadline)

    def shutdown(self, timeout: float | None = None) -> None:
        """Spool, then send until ``timeout`` seconds (default: the exporter's ``shutdown_timeout``)."""
        self.exporter.shutdown(timeout)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def build_cost_processor(url: str, api_key: str | None, **kwargs: Any) -> CostRecordProcessor:
    """The one entry point: validate the settings (ConfigError), open the spool, start the threads.

    ``kwargs`` are :class:`CostAPIExporter`'s keyword arguments (organization_id, spool_path, timeout,
    max_batch, flush_interval, max_queue, spool_max_records, shutdown_timeout, ...).
    """
    return CostRecordProcessor(CostAPIExporter(url, api_key, **kwargs))
