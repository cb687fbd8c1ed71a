"""Prometheus metrics derived from llm-otel's GenAI spans, and the ``/metrics`` endpoint.

``processor.py`` holds :class:`PrometheusMetricsProcessor` (span -> metric values, on the application
thread), ``metrics.py`` the metric families, ``labels.py`` the bounded label values, ``fastpath.py`` the
cheap writers its hot path uses, ``server.py`` the stand-alone endpoint and the WSGI/ASGI apps.
"""

from .processor import DEFAULT_MAX_MODELS, PrometheusMetricsProcessor
from .server import MetricsServer, make_asgi_app, make_wsgi_app, serving_registry, start_metrics_server

__all__ = [
    "DEFAULT_MAX_MODELS",
    "MetricsServer",
    "PrometheusMetricsProcessor",
    "make_asgi_app",
    "make_wsgi_app",
    "serving_registry",
    "start_metrics_server",
]
