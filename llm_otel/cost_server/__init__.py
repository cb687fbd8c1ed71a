"""Reference implementation of the cost API: SQLite-backed, standard library only.

It receives the usage records the cost exporter sends, stores each record id once, and answers exact cost
totals; the record fields, endpoints and limits it enforces are defined in :mod:`llm_otel.cost_contract`,
which the exporter uses too. For tests, demos and small deployments; ``llm-otel cost-api`` runs it.
The HTTP side is the standard library's ``http.server`` request parsing behind a small connection loop of
its own (one thread reads request heads for all connections; a fixed pool of workers answers complete
requests), with read timeouts and a connection cap: requests are small (at most
``MAX_RECORDS_PER_REQUEST`` records, body-capped), writes serialise on SQLite anyway, and it keeps the
reference server free of web-framework dependencies.
"""

from .server import CostAPIServer, make_server
from .store import UsageStore

__all__ = ["CostAPIServer", "UsageStore", "make_server"]
