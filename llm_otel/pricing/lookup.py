"""Model-name normalisation and the lookup of the price entry for a (provider, model) pair.

Clients report names in many spellings; this module maps them to the keys of the price table, so a dated
snapshot or an Azure deployment gets its model's price and an unknown name gets none.

* Provider prefixes (``openai/gpt-4o``) are stripped, names are lower-cased and Ollama's implicit
  ``:latest`` tag is dropped.
* A dated snapshot (``gpt-4o-mini-2024-07-18``, ``o3-2025-04-16``, compact ``gpt-5.2-20251211``) falls back
  to its family unless the snapshot has its own entry (``gpt-4o-2024-05-13``).
* Fine-tuned models (``ft:gpt-4o-mini-2024-07-18:org::id``) have no fallback, so they are unpriced unless
  the user prices them (exactly, or with a prefix wildcard such as ``"ft:gpt-4o-mini*"``): their rates
  differ from the base model's.
* Azure (``azure.ai.openai``) deployment names are mapped through ``model_aliases`` (deployment -> model)
  and priced as OpenAI models; the reported name itself is also tried, since Azure reports real model names
  in responses. An ``azure.ai.openai/...`` entry beats the ``openai/...`` one.

Order: exact entry (user entries replace bundled ones of the same key), alias, dated-snapshot fallback, then
the longest matching ``prefix*`` wildcard (``"ollama/*"`` prices a whole provider). Whatever matches none is
local (cost 0) for a provider in ``local_providers``, else unpriced; that decision is the table's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, Generic, Protocol, TypeVar

from llm_otel.errors import ConfigError
from llm_otel.semconv import PROVIDER_AZURE_OPENAI, PROVIDER_OPENAI


class Named(Protocol):
    """What the index needs of a price entry: the key it prices and its other names."""

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...


Entry = TypeVar("Entry", bound=Named)

_DATED: Final = re.compile(r"^(.+?)-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")


def norm_provider(provider: str | None) -> str:
    return (provider or "").strip().lower()


def norm_model(provider: str, model: str) -> str:
    """Lower-case, strip a provider prefix and Ollama's implicit ``:latest`` tag."""
    m = model.strip().lower()
    if "/" in m:
        head, _, rest = m.partition("/")
        openai_like = provider in (PROVIDER_OPENAI, PROVIDER_AZURE_OPENAI)
        if rest and (
            head == provider or (openai_like and head in (PROVIDER_OPENAI, "azure", PROVIDER_AZURE_OPENAI))
        ):
            m = rest
    if m.endswith(":latest"):
        m = m[: -len(":latest")]
    return m


def _undated(model: str) -> str | None:
    match = _DATED.match(model)
    return match.group(1) if match else None


class ModelIndex(Generic[Entry]):
    """Price entries indexed by name: exact keys, aliases, prefix wildcards, plus Azure deployment names."""

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = ("ollama",),
    ) -> None:
        self._exact: dict[tuple[str, str], Entry] = {}
        self._alias: dict[tuple[str, str], tuple[str, str]] = {}
        self._prefix: dict[str, list[tuple[str, tuple[str, str]]]] = {}
        all_entries = list(entries)
        for e in all_entries:  # later entries (user) replace earlier ones (bundled) with the same key
            self._exact[(e.provider, e.model)] = e
        for e in reversed(all_entries):  # user entries come last: register their aliases first, so they win
            if self._exact[(e.provider, e.model)] is not e:
                continue
            for name in (e.model, *e.aliases):
                if name.endswith("*"):
                    self._prefix.setdefault(e.provider, []).append((name[:-1], (e.provider, e.model)))
                elif name != e.model:
                    self._alias.setdefault((e.provider, name), (e.provider, e.model))
        for plist in self._prefix.values():
            plist.sort(key=lambda item: len(item[0]), reverse=True)  # stable: user before bundled on ties
        if isinstance(local_providers, str):
            local_providers = (local_providers,)
        self._local = frozenset(norm_provider(p) for p in local_providers)
        deployments: dict[str, str] = {}
        for dep, target in (model_aliases or {}).items():
            if (
                not isinstance(dep, str)
                or not isinstance(target, str)
                or not dep.strip()
                or not target.strip()
            ):
                raise ConfigError(
                    "model_aliases", {dep: target}, "deployment and model must be non-empty strings"
                )
            deployments[dep.strip().lower()] = target
        self._deployments = deployments

    def __len__(self) -> int:
        return len(self._exact)

    def is_local(self, provider: str) -> bool:
        """Whether an unmatched model of this provider runs locally (cost 0) rather than being unpriced."""
        return norm_provider(provider) in self._local

    def find(self, provider: str, model: str | None) -> Entry | None:
        """The entry that prices this model, or ``None``."""
        p = norm_provider(provider)
        chain = (p, PROVIDER_OPENAI) if p == PROVIDER_AZURE_OPENAI else (p,)
        names: list[str] = []
        if model is not None and model.strip():
            m = norm_model(p, model)
            target = self._deployments.get(m)
            if target is not None:
                names.append(norm_model(p, target))
            names.append(m)
        for name in names:  # exact, alias, then dated-snapshot fallback
            for prov in chain:
                e = self._named(prov, name)
                if e is None and (family := _undated(name)) is not None:
                    e = self._named(prov, family)
                if e is not None:
                    return e
        for prov in chain:  # then the longest prefix wildcard ("ollama/*" matches every model)
            for prefix, key in self._prefix.get(prov, ()):
                if any(n.startswith(prefix) for n in names) or (prefix == "" and not names):
                    return self._exact[key]
        return None

    def _named(self, provider: str, name: str) -> Entry | None:
        e = self._exact.get((provider, name))
        if e is None:
            target = self._alias.get((provider, name))
            if target is not None:
                e = self._exact[target]
        return e
