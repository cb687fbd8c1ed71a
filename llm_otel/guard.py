"""Containment of llm-otel's own failures.

Every piece of llm-otel code that runs inside a user's call goes through :func:`report`: the failure is
logged once per site (with its traceback), counted in ``llm_otel_instrumentation_errors_total{site}``,
and swallowed, so the user always gets the real result or the real exception. A value llm-otel refuses to
record (a token count of ``1e308``, a model name that is not a string) goes through :func:`reject`: same
counter and once-per-site log, without a traceback.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from .metrics_registry import REGISTRY

logger = logging.getLogger("llm_otel")

INSTRUMENTATION_ERRORS = Counter(
    "llm_otel_instrumentation_errors",
    "Failures inside llm-otel's own code that were contained (the user's call was not affected).",
    ["site"],
    registry=REGISTRY,
)

_logged_sites: set[str] = set()


def report(site: str, exc: BaseException) -> None:
    """Record an internal failure at ``site``; never raises."""
    try:
        INSTRUMENTATION_ERRORS.labels(site).inc()
        if site not in _logged_sites:
            _logged_sites.add(site)
            logger.warning(
                "llm-otel: internal error at %s (the instrumented call is unaffected; "
                "further errors at this site are only counted)",
                site,
                exc_info=exc,
            )
    except Exception:  # pragma: no cover - logging itself failed
        pass


def reject(site: str, detail: str) -> None:
    """Record that a value from a response (or the user) was left off at ``site``; never raises."""
    try:
        INSTRUMENTATION_ERRORS.labels(site).inc()
        if site not in _logged_sites:
            _logged_sites.add(site)
            logger.warning(
                "llm-otel: %s (left off the span; further values at %s are only counted)", detail, site
            )
    except Exception:  # pragma: no cover - logging itself failed
        pass
