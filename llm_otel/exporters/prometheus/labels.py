"""Bounded label values: every Prometheus series llm-otel creates comes from a value set of known size.

A label whose values are open-ended (model names, tag values) gets a :class:`BoundedLabel`: the first
``cap`` distinct values are kept, later ones become ``other``, so a bug or an attacker sending 10,000
model names costs at most ``cap + 1`` series per label, not 10,000. Values that are not strings (lists,
numbers, None, dicts) never raise: they are stringified, or folded into ``other`` when they have no sane
text form. Label texts are always encodable (a lone surrogate becomes U+FFFD): one that is not would make
every later scrape fail. This runs only for a label combination not seen before.
"""

from __future__ import annotations

import threading
from typing import Final

from ...values import clean_text

OTHER: Final = "other"
#: Longer values are cut: a label is an identifier, not free text.
MAX_LABEL_CHARS: Final = 128


def label_text(value: object) -> str:
    """The label text of an attribute value; ``""`` (same as absent in Prometheus) for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        text = ",".join(str(v) for v in value)
    else:
        return OTHER
    return clean_text(text[:MAX_LABEL_CHARS])


class BoundedLabel:
    """Maps values to at most ``cap`` distinct label texts (+ ``other``). Admission never shrinks, so a
    value maps to the same text for the life of the process (the in-flight gauge relies on that)."""

    __slots__ = ("cap", "_admitted", "_lock")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = label_text(value)
        if not text or text in self._admitted:
            return text
        with self._lock:
            if text in self._admitted:
                return text
            if len(self._admitted) >= self.cap:
                return OTHER
            self._admitted.add(text)
            return text

    def __len__(self) -> int:
        return len(self._admitted)
