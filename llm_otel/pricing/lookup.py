"""Model-name normalisation and the lookup of the price entry for a (provider, model) pair.

Clients report names in many spellings; this module maps them to the keys of the price table, so a dated
snapshot, a cloud's spelling or an Azure deployment gets its model's price and an unknown name gets none.

* Providers are the conventions' ``gen_ai.provider.name`` values; the older ``gen_ai.system`` spellings
  (``xai``, ``gemini``, ``vertex_ai``, ``az.ai.openai``) are read as the current ones.
* Names are lower-cased; a routing prefix is stripped (``openai/gpt-4o``, ``anthropic/claude-...``,
  ``mistral/...``, ``xai/...``, ``bedrock/...``; for Google, everything up to the last ``/``, so
  ``models/gemini-2.5-pro`` and ``publishers/google/models/...`` work); Ollama's implicit ``:latest`` tag
  is dropped.
* A dated snapshot (``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-5-20250929``, Vertex AI's
  ``claude-sonnet-4-5@20250929``, compact ``gpt-5.2-20251211``) falls back to its family unless the
  snapshot has its own entry (``gpt-4o-2024-05-13``).
* AWS Bedrock (``aws.bedrock``): an ARN is read as its last path segment
  (``arn:aws:bedrock:...:inference-profile/us.anthropic...``); a geographic cross-region inference prefix
  (``us.``, ``eu.``, ``apac.``, ``au.``, ``jp.``, ``ca.``, ``in.``, ``us-gov.``) is priced like the
  in-region model id, as AWS bills it; ``global.`` profiles have entries of their own (cheaper for recent
  models), so they are never stripped.
* Fine-tuned models (``ft:gpt-4o-mini-2024-07-18:org::id``) have no fallback, so they are unpriced unless
  the user prices them (exactly, or with a prefix wildcard such as ``"ft:gpt-4o-mini*"``): their rates
  differ from the base model's.
* One provider can fall back to another's entries: ``azure.ai.openai`` to ``openai`` (an
  ``azure.ai.openai/...`` entry beats the ``openai/...`` one), ``gcp.vertex_ai`` to ``gcp.gemini`` (Google
  lists one price for Gemini on both), ``gcp.gen_ai`` (a Google endpoint of either kind) to both. Azure
  deployment names are mapped through ``model_aliases`` (deployment -> model); the reported name itself is
  also tried, since Azure reports real model names in responses.

Order: exact entry (user entries replace bundled ones of the same key), alias, dated-snapshot fallback, then
the longest matching ``prefix*`` wildcard (``"ollama/*"`` prices a whole provider), each over the provider's
fallback chain. Whatever matches none is local (cost 0) for a provider in ``local_providers`` (by default
the self-hosted servers of :data:`SELF_HOSTED_PROVIDERS`), else unpriced; that decision is the table's.
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

_DATED: Final = re.compile(r"^(.+?)(?:-(?:\d{4}-\d{2}-\d{2}|20\d{6})|@20\d{6})$")

ANTHROPIC: Final = "anthropic"
AWS_BEDROCK: Final = "aws.bedrock"
GCP_GEMINI: Final = "gcp.gemini"
GCP_VERTEX_AI: Final = "gcp.vertex_ai"
GCP_GEN_AI: Final = "gcp.gen_ai"
MISTRAL_AI: Final = "mistral_ai"
DEEPSEEK: Final = "deepseek"
X_AI: Final = "x_ai"

#: Provider names of self-hosted model servers (``provider_hosts`` maps a server's host to one): a model
#: that no price entry matches costs 0 there (``local``), whatever its name, so a local model served as
#: ``gpt-4o-mini`` is never billed at OpenAI's list price. Any other unmatched provider is ``unpriced``.
SELF_HOSTED_PROVIDERS: Final = (
    "ollama",
    "llama_cpp",
    "vllm",
    "lm_studio",
    "localai",
    "llamafile",
    "sglang",
    "tgi",
)

#: Older ``gen_ai.system`` spellings -> the conventions' ``gen_ai.provider.name``.
_PROVIDER_SYNONYMS: Final = {
    "az.ai.openai": PROVIDER_AZURE_OPENAI,
    "gemini": GCP_GEMINI,
    "vertex_ai": GCP_VERTEX_AI,
    "xai": X_AI,
}
#: Routing prefixes stripped from a model name (``"anthropic/claude-..."``), beyond the provider's own name.
_HEADS: Final[dict[str, frozenset[str]]] = {
    PROVIDER_OPENAI: frozenset({PROVIDER_OPENAI}),
    PROVIDER_AZURE_OPENAI: frozenset({PROVIDER_OPENAI, "azure", PROVIDER_AZURE_OPENAI}),
    ANTHROPIC: frozenset({ANTHROPIC}),
    MISTRAL_AI: frozenset({"mistral", "mistralai", MISTRAL_AI}),
    DEEPSEEK: frozenset({DEEPSEEK}),
    X_AI: frozenset({"xai", "x-ai", X_AI}),
    AWS_BEDROCK: frozenset({"bedrock", AWS_BEDROCK}),
}
#: Google providers: a model name is its last path segment (``models/...``, ``publishers/google/models/...``).
_GCP: Final = frozenset({GCP_GEMINI, GCP_VERTEX_AI, GCP_GEN_AI})
#: Providers whose entries price a provider's model that has no entry of its own, in order.
_FALLBACKS: Final[dict[str, tuple[str, ...]]] = {
    PROVIDER_AZURE_OPENAI: (PROVIDER_OPENAI,),
    GCP_VERTEX_AI: (GCP_GEMINI,),
    GCP_GEN_AI: (GCP_VERTEX_AI, GCP_GEMINI),
}
#: Geographic cross-region inference prefixes of Bedrock model ids: billed like the in-region model.
BEDROCK_GEO_PREFIX: Final = re.compile(r"^(?:us|us-gov|eu|apac|au|jp|ca|in)\.(?=[a-z0-9-]+\.)")


def norm_provider(provider: str | None) -> str:
    """Lower-case; an older ``gen_ai.system`` spelling becomes the ``gen_ai.provider.name`` value."""
    p = (provider or "").strip().lower()
    return _PROVIDER_SYNONYMS.get(p, p)


def norm_model(provider: str, model: str) -> str:
    """Lower-case, strip a routing prefix (see the module docstring) and Ollama's implicit ``:latest`` tag."""
    m = model.strip().lower()
    if provider == AWS_BEDROCK and m.startswith("arn:"):
        m = m.rpartition("/")[2] or m
    if "/" in m:
        if provider in _GCP:
            m = m.rpartition("/")[2] or m
        else:
            head, _, rest = m.partition("/")
            if rest and (head == provider or head in _HEADS.get(provider, ())):
                m = rest
    if m.endswith(":latest"):
        m = m[: -len(":latest")]
    return m


def provider_chain(provider: str) -> tuple[str, ...]:
    """The provider, then the providers whose entries price its models that have none of their own."""
    return (provider, *_FALLBACKS.get(provider, ()))


def _undated(model: str) -> str | None:
    match = _DATED.match(model)
    return match.group(1) if match else None


def _spellings(provider: str, model: str) -> list[str]:
    """The names to try for one normalised model name: itself, and for Bedrock its in-region id."""
    if provider == AWS_BEDROCK:
        in_region = BEDROCK_GEO_PREFIX.sub("", model, count=1)
        if in_region != model:
            return [model, in_region]
    return [model]


class ModelIndex(Generic[Entry]):
    """Price entries indexed by name: exact keys, aliases, prefix wildcards, plus Azure deployment names."""

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = SELF_HOSTED_PROVIDERS,
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
        chain = provider_chain(p)
        names: list[str] = []
        if model is not None and model.strip():
            m = norm_model(p, model)
            target = self._deployments.get(m)
            if target is not None:
                names += _spellings(p, norm_model(p, target))
            names += _spellings(p, m)
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
