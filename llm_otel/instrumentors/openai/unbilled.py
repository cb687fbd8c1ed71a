"""Responses whose usage no span has recorded yet: so a later fetch records it once, and only then.

A Responses API call made with ``background=True`` returns while the response is still ``queued`` or
``in_progress`` (no usage yet), and a stream can end before its ``response.completed`` event (the client
cut it; it is resumed with ``responses.retrieve(id, stream=True, starting_after=...)``). The usage of such
a response first appears on a later ``fetch_response`` (``responses.retrieve``) or on the resumed stream.
The conventions say a ``fetch_response`` span SHOULD NOT report token usage, and fetching a completed
response again is not a new billable generation; but dropping the usage of a background response would lose
its cost. The rule: a response's usage and cost are recorded on the first span that sees it complete. A
create that saw none puts the response id here; the fetch that sees the completed response with usage takes
it out and keeps the usage; every other fetch records no usage and no cost.

Per process, bounded (the oldest ids are forgotten first); thread-safe. A response created in another
process and fetched here records no usage (its usage is unknown to this process as unbilled).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

#: Most response ids waiting at once (background responses in flight, cut streams not resumed yet).
MAX_PENDING = 10_000

_pending: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def remember(response_id: object) -> None:
    """A response was seen without usage: its first complete fetch records the usage."""
    if not isinstance(response_id, str) or not response_id:
        return
    with _lock:
        _pending[response_id] = None
        _pending.move_to_end(response_id)
        while len(_pending) > MAX_PENDING:
            _pending.popitem(last=False)


def settle(response_id: object) -> bool:
    """True (once) when this response's usage is still to be recorded; the id is then forgotten."""
    if not isinstance(response_id, str) or not _pending:
        return False
    with _lock:
        return _pending.pop(response_id, False) is None


def clear() -> None:
    """Forget every pending id (tests)."""
    with _lock:
        _pending.clear()
