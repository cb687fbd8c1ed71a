"""The price table: bundled prices plus user prices, tied to the name lookup and the cost arithmetic.

:class:`PriceTable` is what the rest of llm-otel holds: :meth:`PriceTable.load` reads the bundled table and
the user's prices (:mod:`.price_file`), indexes them by name (:mod:`.lookup`) and compiles, on first use,
the entry each (provider, model) resolves to for the arithmetic of :mod:`.cost`, whose
:meth:`~llm_otel.pricing.cost.CostCalculator.cost_floats` the instrumentors call once per LLM call. Lookups
are memoised per (provider, model), so a call costs a dict hit plus a few integer products.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .cost import LOCAL, UNPRICED, CostCalculator, Fixed, Priced
from .lookup import SELF_HOSTED_PROVIDERS, ModelIndex
from .price_file import Entry, bundled_entries, user_entries


class PriceTable(CostCalculator):
    """Immutable price table: bundled prices plus user prices (which win). Build with :meth:`load`."""

    _bundled_instance: PriceTable | None = None
    _bundled_lock = threading.Lock()

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        version: str,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = SELF_HOSTED_PROVIDERS,
    ) -> None:
        super().__init__()
        self.version = version
        self._index = ModelIndex(entries, model_aliases=model_aliases, local_providers=local_providers)

    @classmethod
    def load(
        cls,
        prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = SELF_HOSTED_PROVIDERS,
    ) -> PriceTable:
        """Bundled table plus user prices from a ``.json``/``.toml`` file path or a dict; user entries win.

        Raises :class:`~llm_otel.errors.ConfigError` (setting ``prices``) for a missing or malformed file, an
        unknown field, or a negative, non-numeric or out-of-range price; (setting ``model_aliases``) for an
        empty deployment or model name.
        """
        version, bundled = bundled_entries()
        user = [] if prices is None else user_entries(prices)
        return cls(
            (*bundled, *user), version=version, model_aliases=model_aliases, local_providers=local_providers
        )

    @classmethod
    def bundled(cls) -> PriceTable:
        """The bundled table (shared, created once)."""
        inst = cls._bundled_instance
        if inst is None:
            with cls._bundled_lock:
                inst = cls._bundled_instance
                if inst is None:
                    inst = cls._bundled_instance = cls.load()
        return inst

    def __repr__(self) -> str:
        return f"PriceTable(version={self.version!r}, entries={len(self._index)})"

    def _resolve(self, provider: str, model: str | None) -> Priced | Fixed:
        entry = self._index.find(provider, model)
        if entry is not None:
            return Priced(entry.source, entry.price)
        return LOCAL if self._index.is_local(provider) else UNPRICED
