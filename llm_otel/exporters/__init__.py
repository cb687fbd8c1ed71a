"""Sinks fed by llm-otel's finished spans, one package each: ``prometheus`` (metrics and the ``/metrics``
endpoint) and ``cost`` (usage records to a cost API, through a disk spool)."""
