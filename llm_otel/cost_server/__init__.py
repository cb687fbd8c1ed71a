"""Reference implementation of the cost API (DESIGN.md §6): SQLite-backed, standard library only.

For tests, demos and small deployments; ``llm-otel cost-api`` runs it. ``ThreadingHTTPServer`` is enough
here: requests are small (≤ 1000 records, body-capped), writes serialise on SQLite anyway, and it keeps
the reference server free of web-framework dependencies.
"""

from .server import CostAPIServer, make_server
from .store import UsageStore

__all__ = ["CostAPIServer", "UsageStore", "make_server"]
