"""Where the content event goes: a log record through the OpenTelemetry Logs API, else a span event.

With content capture on events (``EVENT_ONLY``, ``SPAN_AND_EVENT``) the conventions' event
``gen_ai.client.inference.operation.details`` is a log record: event name set, severity DEBUG (5), the
inference span's attributes with the message content in structured form (lists and objects, not JSON
text), emitted in the span's context so backends join it to the trace. That needs a LoggerProvider: the
one given to the instrumentor (``logger_provider=``), else the application's global one. When there is
none (the API's default proxy or no-op provider), or the installed API cannot build such a record, the
event stays a span event carrying the same content as JSON text, as before.

The provider is looked up per call only when content goes to events, and the logger is cached for as long
as the provider stays the same: one global read and an identity check.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import trace

from .. import guard
from .. import semconv as sc
from ..version import __version__

#: content attributes: JSON text on spans and span events, structured values in a log record
CONTENT_KEYS = (sc.INPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS, sc.OUTPUT_MESSAGES)
#: the inference span's attributes that the event repeats (the conventions' namespaces; not llm-otel's own)
_PREFIXES = ("gen_ai.", "server.", "openai.", "error.type")

try:  # the Logs API as the conventions' event needs it (event name, context): opentelemetry-api 1.35+
    from opentelemetry._logs import LogRecord, NoOpLoggerProvider, SeverityNumber
    from opentelemetry._logs import get_logger_provider as _global_provider
    from opentelemetry._logs._internal import ProxyLoggerProvider  # the default until one is set

    _DEFAULT_PROVIDERS: tuple[type, ...] = (NoOpLoggerProvider, ProxyLoggerProvider)
    _LOGS = "event_name" in LogRecord.__init__.__code__.co_varnames
except ImportError:  # pragma: no cover - an API without the Logs API: span events only
    _LOGS = False


class ContentEvents:
    """The logger for content events, or None when they stay span events."""

    __slots__ = ("explicit", "provider", "logger")

    def __init__(self, logger_provider: Any = None) -> None:
        self.explicit = logger_provider
        self.provider: Any = None
        self.logger: Any = None

    def current(self) -> Any:
        if not _LOGS:
            return None
        provider = self.explicit if self.explicit is not None else _global_provider()
        if provider is not self.provider:
            self.provider = provider
            self.logger = (
                None
                if isinstance(provider, _DEFAULT_PROVIDERS)
                else provider.get_logger(sc.SCOPE_NAME, __version__)
            )
        return self.logger

    def emit(self, span: Any, encoded: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        """The event of one call: ``encoded`` holds the content attributes as JSON text (what a span event
        carries), ``extra`` the end-of-call attributes not yet on the span."""
        try:
            logger = self.current()
            if logger is not None:
                logger.emit(_record(span, encoded, extra))
                return
        except Exception as exc:  # an odd provider or exporter never costs the caller the call
            guard.report("content.log_event", exc)
        span.add_event(sc.EVENT_INFERENCE_DETAILS, encoded)


def _record(span: Any, encoded: dict[str, Any], extra: dict[str, Any] | None) -> Any:
    attributes: dict[str, Any] = {}
    for source in (getattr(span, "attributes", None), extra):
        if source:
            for key, value in source.items():
                if key.startswith(_PREFIXES) and key not in CONTENT_KEYS:
                    attributes[key] = value
    for key, value in encoded.items():
        # the same (capped, cleaned) content as on a span, back in structured form
        attributes[key] = json.loads(value) if key in CONTENT_KEYS else value
    return LogRecord(
        timestamp=time.time_ns(),
        context=trace.set_span_in_context(span),
        severity_number=SeverityNumber.DEBUG,
        severity_text="DEBUG",
        attributes=attributes,
        event_name=sc.EVENT_INFERENCE_DETAILS,
    )
