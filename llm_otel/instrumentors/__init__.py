"""Where GenAI spans start: one instrumentor per client library, on shared call machinery.

``openai/`` and ``ollama/`` patch their client; beside them, what both use: ``call.py`` (the span lifecycle
and cost), ``streams.py`` (stream proxies), ``server.py`` (server address and provider), ``tracer.py``
(tracer and :class:`~llm_otel.instrumentors.call.Telemetry` set-up), ``content_capture.py`` (opt-in message
content) and ``fast_attributes.py`` (attribute writes without per-value validation).
"""
