"""The prometheus-client registry that holds every llm-otel metric.

A registry of our own (not prometheus-client's global one) so that the endpoint serves only llm-otel's
series and repeated ``instrument()`` calls in one process never register a metric twice. Users who want
the series on their own ``/metrics`` can mount :func:`llm_otel.exporters.prometheus.make_wsgi_app` or add
this registry's collectors to theirs.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)
