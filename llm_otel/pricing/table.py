"""Price table, model-name normalisation and exact Decimal cost of one LLM call.

Why our own table instead of calling pydantic's ``genai_prices.calc_price`` at run time (genai-prices 0.2.3,
CPython 3.11, same call: gpt-4o-mini-2024-07-18, 1370 input / 1280 cached / 155 output tokens; both give
$0.0002025):

* Hot-path cost: ``calc_price`` takes ~45 µs per call (timeit) and ~657,000 instructions (callgrind,
  difference between 200 and 1,200 calls); a memoised :meth:`PriceTable.cost` takes ~1.9 µs and ~28,500
  instructions, 23x fewer. Cost is computed inside the user's LLM call, so it has to stay a dict hit plus a
  few Decimal products.
* Footprint: genai-prices requires Python >= 3.11 (llm-otel supports 3.10) and pulls in ``pydantic`` and
  ``httpx2``; importing it takes ~100 ms (``-X importtime``). Its fuzzy matching can also price a name that
  is not OpenAI's model (it lists a third-party host's price for gpt-oss), where we want "unpriced".
* It is an excellent *source*: ``tools/build_prices.py`` generates our bundled ``data/prices.json`` from its
  bundled data, offline, and checks a handful of prices against OpenAI's list (research/semconv.md §6.3).

Semantics (OpenAI usage conventions, which the instrumentors keep for every provider):

* ``input_tokens`` INCLUDES cache reads and cache writes; ``output_tokens`` INCLUDES reasoning tokens.
  cost = (input − cache_read − cache_write)·input + cache_read·cached_input + cache_write·cache_write
  (fallback: the input price) + output·output. An entry with a ``reasoning`` price bills reasoning tokens at
  it and the rest of the output at ``output``. An entry without ``output`` (embeddings) bills input only.
* Prices are USD per million tokens, parsed from strings, so everything is ``Decimal`` end to end. Each part
  is quantised to 12 decimal places (ROUND_HALF_EVEN) and ``total = input + output``. A total below $1000 thus
  has at most 15 significant digits, which an IEEE double holds exactly in the sense that
  ``Decimal(repr(float(total))) == total`` (the cost-record exporter relies on this when it reads the
  ``gen_ai.usage.cost`` double back). All arithmetic uses a private decimal context, so an application that
  changes ``decimal.getcontext()`` does not change our results.
* Statuses: ``priced``; ``local`` (a provider in ``local_providers``, default ollama: cost ``Decimal("0")``,
  source ``"local"``, unless the user priced that model or provider, then it is ``priced``); ``unpriced``
  (unknown model, or no token counts at all: total ``None``, never 0, so "free" and "unknown" stay distinct).

Model names: provider prefixes (``openai/gpt-4o``) are stripped, names are lower-cased, Ollama's implicit
``:latest`` tag is dropped, and a dated snapshot (``gpt-4o-mini-2024-07-18``, ``o3-2025-04-16``,
``gpt-4.1-2025-04-14``, compact ``-20251211``) falls back to its family unless the snapshot has its own entry
(``gpt-4o-2024-05-13``). Fine-tuned models (``ft:gpt-4o-mini-2024-07-18:org::id``) are **unpriced** unless
the user prices them (exactly, or with a prefix wildcard such as ``"ft:gpt-4o-mini*"``): their rates differ
from the base model's. Azure (``azure.ai.openai``) deployment names are mapped through ``model_aliases``
(deployment -> model) and then priced as OpenAI models; the name itself is also tried, since Azure reports
real model names in responses. Order: exact entry (user entries replace bundled ones of the same key),
alias, dated-snapshot fallback, then the longest matching ``prefix*`` wildcard (``"ollama/*"`` prices a whole
provider), then local/unpriced. Lookups are memoised per (provider, model).

Price file (``prices=`` / ``LLM_OTEL_PRICES``; JSON or TOML; same shape as the bundled ``data/prices.json``)::

    {"version": "2026-11-01", "currency": "USD", "unit": "per_million_tokens",   # optional; must be these
     "models": {"openai/my-model": {"input": "0.15", "cached_input": "0.075", "cache_write": "0.1875",
                                    "output": "0.60", "reasoning": "0.60",
                                    "tiers": [{"above_input_tokens": 272000, "input": "0.30"}],
                                    "aliases": ["my-model-latest", "my-model-*"]},
                "ollama/*": {"input": "0.02", "output": "0.02"}}}

``models`` may be omitted (a flat mapping of entries). Keys are ``"<provider>/<model>"`` or ``"<model>"``
(= openai); a trailing ``*`` is a prefix wildcard. Only ``input`` is required; prices are strings (or
numbers), finite and >= 0. Anything else is a :class:`~llm_otel.errors.ConfigError` naming ``prices``.

Not modelled: service tiers (flex/priority/batch), per-call tool fees (web/file search), audio/image tokens
(models billed for those are left out of the bundled table, so they are unpriced rather than mispriced).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from llm_otel.errors import ConfigError
from llm_otel.semconv import (
    PRICING_LOCAL,
    PRICING_PRICED,
    PRICING_UNPRICED,
    PROVIDER_AZURE_OPENAI,
    PROVIDER_OPENAI,
)

__all__ = ["Cost", "Price", "PriceTier", "PriceTable"]

_SETTING: Final = "prices"
_UNIT: Final = "per_million_tokens"
_CTX: Final = Context(prec=60, rounding=ROUND_HALF_EVEN)
_Q12: Final = Decimal("1e-12")
_MILLION: Final = Decimal(1_000_000)
_ZERO: Final = Decimal(0)
_MEMO_MAX: Final = 4096  # distinct (provider, model) pairs kept; the memo is cleared beyond that
_PRICE_FIELDS: Final = ("input", "cached_input", "cache_write", "output", "reasoning")
_ENTRY_FIELDS: Final = frozenset((*_PRICE_FIELDS, "tiers", "aliases"))
_TIER_FIELDS: Final = frozenset((*_PRICE_FIELDS, "above_input_tokens"))
_DOC_FIELDS: Final = frozenset(("version", "currency", "unit", "source", "models"))
_DATED: Final = re.compile(r"^(.+?)-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost of one call. ``total``/``input``/``output`` are USD; ``None`` when unpriced.

    Priced amounts have exactly 12 decimal places (so ``str()`` of a tiny amount may read ``5.50000E-7``);
    use ``format(cost.total, "f")`` for a plain decimal string.
    """

    status: str  # "priced" | "local" | "unpriced"
    total: Decimal | None
    input: Decimal | None  # uncached input + cached input + cache writes
    output: Decimal | None  # output, reasoning included
    source: str | None  # the entry that priced it, "local", or None


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices that replace the base ones when a call's input tokens exceed ``above_input_tokens``.

    OpenAI's long-context pricing (gpt-5.4/5.5 above 272k input tokens) applies the higher rate to all tokens.
    """

    above_input_tokens: int
    input: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    output: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. Missing ``cached_input``/``cache_write`` fall back to ``input``."""

    input: Decimal
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()


#: Per-token rates: input, cached input, cache write, output, reasoning (None: billed as output).
_Rates = tuple[Decimal, Decimal, Decimal, Decimal, Decimal | None]


class _Priced:
    """A resolved price entry, with per-token rates precomputed for the hot path."""

    __slots__ = ("source", "price", "rates", "tiers", "pico")

    def __init__(self, source: str, price: Price) -> None:
        self.source = source
        self.price = price
        self.rates = _rates(price.input, price.cached_input, price.cache_write, price.output, price.reasoning)
        tiers: list[tuple[int, _Rates]] = []
        for t in sorted(price.tiers, key=lambda t: t.above_input_tokens, reverse=True):
            tiers.append(
                (
                    t.above_input_tokens,
                    _rates(
                        t.input if t.input is not None else price.input,
                        t.cached_input if t.cached_input is not None else price.cached_input,
                        t.cache_write if t.cache_write is not None else price.cache_write,
                        t.output if t.output is not None else price.output,
                        t.reasoning if t.reasoning is not None else price.reasoning,
                    ),
                )
            )
        self.tiers = tuple(tiers)
        #: Rates as ints in 1e-12 USD per token when every rate is exact at 12 decimals (and no tiers):
        #: then :meth:`PriceTable.cost_floats` needs no Decimal at all and gives exactly cost()'s numbers.
        self.pico: tuple[int, int, int, int, int | None] | None = None
        if not self.tiers:
            scaled = [None if r is None else r.scaleb(12) for r in self.rates]
            if all(v is None or v == v.to_integral_value() for v in scaled):
                self.pico = tuple(None if v is None else int(v) for v in scaled)  # type: ignore[assignment]


def _rates(
    inp: Decimal, cached: Decimal | None, write: Decimal | None, out: Decimal | None, reason: Decimal | None
) -> _Rates:
    """Per-million prices -> exact per-token rates, with the documented fallbacks applied once."""

    def per_token(d: Decimal) -> Decimal:
        return _CTX.divide(d, _MILLION)  # exact: dividing by 10**6 only shifts the exponent

    i = per_token(inp)
    return (
        i,
        per_token(cached) if cached is not None else i,
        per_token(write) if write is not None else i,
        per_token(out) if out is not None else _ZERO,
        per_token(reason) if reason is not None else None,
    )


_UNPRICED: Final = Cost(PRICING_UNPRICED, None, None, None, None)
_LOCAL: Final = Cost(PRICING_LOCAL, Decimal("0"), Decimal("0"), Decimal("0"), "local")


# --- parsing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    provider: str
    model: str  # normalised; ends with "*" for a prefix wildcard
    price: Price
    aliases: tuple[str, ...]
    source: str


def _norm_provider(provider: str | None) -> str:
    return (provider or "").strip().lower()


def _norm_model(provider: str, model: str) -> str:
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


def _bad(origin: str, reason: str) -> ConfigError:
    return ConfigError(_SETTING, origin, reason)


def _decimal(value: object, origin: str, where: str) -> Decimal:
    """A price: a string, int, Decimal (or float from TOML/JSON), finite and >= 0."""
    if isinstance(value, bool):
        raise _bad(origin, f"{where} must be a number or numeric string, got {value!r}")
    try:
        if isinstance(value, (int, Decimal)):
            d = Decimal(value)
        elif isinstance(value, float):
            d = Decimal(repr(value))
        elif isinstance(value, str):
            d = Decimal(value.strip())
        else:
            raise _bad(origin, f"{where} must be a number or numeric string, got {value!r}")
    except InvalidOperation:
        raise _bad(origin, f"{where} is not a number: {value!r}") from None
    if not d.is_finite():
        raise _bad(origin, f"{where} must be finite, got {value!r}")
    if d < 0:
        raise _bad(origin, f"{where} must not be negative, got {value!r}")
    return d


def _prices_of(obj: Mapping[str, Any], fields: Iterable[str], origin: str, where: str) -> dict[str, Decimal]:
    return {f: _decimal(obj[f], origin, f"{where} field {f!r}") for f in fields if f in obj}


def _parse_entry(key: object, raw: object, origin: str, label: str) -> _Entry:
    if not isinstance(key, str) or not key.strip():
        raise _bad(origin, f"entry name must be a non-empty string, got {key!r}")
    where = f"entry {key!r}"
    if not isinstance(raw, Mapping):
        raise _bad(origin, f"{where} must be a table/object of prices, got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in _ENTRY_FIELDS)
    if unknown:
        raise _bad(origin, f"{where} has unknown field(s) {unknown} (allowed: {sorted(_ENTRY_FIELDS)})")
    if "input" not in raw:
        raise _bad(origin, f"{where} needs an 'input' price (USD per million tokens)")
    provider, sep, model = key.strip().partition("/")
    if not sep:
        provider, model = PROVIDER_OPENAI, key.strip()
    provider = _norm_provider(provider)
    model = _norm_model(provider, model)
    if not provider or not model or "*" in model[:-1]:
        raise _bad(origin, f"{where}: expected '<provider>/<model>', '<model>' or a trailing '*' wildcard")
    prices = _prices_of(raw, _PRICE_FIELDS, origin, where)
    tiers: list[PriceTier] = []
    raw_tiers = raw.get("tiers", ())
    if not isinstance(raw_tiers, (list, tuple)):
        raise _bad(origin, f"{where} field 'tiers' must be a list, got {raw_tiers!r}")
    for n, t in enumerate(raw_tiers):
        twhere = f"{where} tier {n}"
        if not isinstance(t, Mapping):
            raise _bad(origin, f"{twhere} must be a table/object, got {t!r}")
        tunknown = sorted(str(k) for k in t if k not in _TIER_FIELDS)
        if tunknown:
            raise _bad(origin, f"{twhere} has unknown field(s) {tunknown} (allowed: {sorted(_TIER_FIELDS)})")
        above = t.get("above_input_tokens")
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            raise _bad(
                origin, f"{twhere} needs 'above_input_tokens' as a non-negative integer, got {above!r}"
            )
        tiers.append(PriceTier(above, **_prices_of(t, _PRICE_FIELDS, origin, twhere)))
    raw_aliases = raw.get("aliases", ())
    if not isinstance(raw_aliases, (list, tuple)) or not all(isinstance(a, str) and a for a in raw_aliases):
        raise _bad(origin, f"{where} field 'aliases' must be a list of model names, got {raw_aliases!r}")
    aliases = tuple(_norm_model(provider, a) for a in raw_aliases)
    price = Price(tiers=tuple(tiers), **prices)
    return _Entry(provider, model, price, aliases, f"{label}{provider}/{model}")


def _parse_document(doc: object, origin: str, label: str) -> tuple[str | None, list[_Entry]]:
    """Either ``{"version", "currency", "unit", "models": {...}}`` or a flat ``{"<key>": {...}}`` mapping."""
    if not isinstance(doc, Mapping):
        raise _bad(origin, f"expected a table/object of model prices, got {type(doc).__name__}")
    version: str | None = None
    entries: Mapping[Any, Any] = doc
    if isinstance(doc.get("models"), Mapping):
        unknown = sorted(str(k) for k in doc if k not in _DOC_FIELDS)
        if unknown:
            raise _bad(origin, f"unknown top-level field(s) {unknown} (allowed: {sorted(_DOC_FIELDS)})")
        if doc.get("currency", "USD") != "USD":
            raise _bad(origin, f"currency must be 'USD', got {doc.get('currency')!r}")
        if doc.get("unit", _UNIT) != _UNIT:
            raise _bad(
                origin, f"unit must be {_UNIT!r} (prices are USD per million tokens), got {doc.get('unit')!r}"
            )
        version = None if doc.get("version") is None else str(doc["version"])
        entries = doc["models"]
    parsed: list[_Entry] = []
    seen: dict[tuple[str, str], object] = {}
    for key, raw in entries.items():
        entry = _parse_entry(key, raw, origin, label)
        ident = (entry.provider, entry.model)
        if ident in seen:
            raise _bad(
                origin, f"entries {seen[ident]!r} and {key!r} name the same model {ident[0]}/{ident[1]}"
            )
        seen[ident] = key
        parsed.append(entry)
    return version, parsed


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _read_file(path: str | os.PathLike[str]) -> object:
    p = Path(path)
    origin = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise _bad(origin, "price file must end in .json or .toml")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise _bad(origin, "price file not found") from None
    except OSError as exc:
        raise _bad(origin, f"cannot read price file: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(data, parse_float=Decimal, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, duplicate keys
            raise _bad(origin, f"malformed JSON: {exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as toml
        except ImportError:
            raise _bad(
                origin, "TOML price files need Python 3.11+ or `pip install tomli`; or use JSON"
            ) from None
    try:
        return toml.loads(data.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError is a ValueError
        raise _bad(origin, f"malformed TOML: {exc}") from None


@cache
def _bundled_entries() -> tuple[str, tuple[_Entry, ...]]:
    """Parse the bundled table once per process (no network, ever)."""
    text = (resources.files("llm_otel") / "data" / "prices.json").read_text(encoding="utf-8")
    doc = json.loads(text, parse_float=Decimal)
    version = str(doc["version"])
    _, entries = _parse_document(doc, "bundled prices.json", f"bundled:{version}:")
    return version, tuple(entries)


# --- the table --------------------------------------------------------------------------------------------


class PriceTable:
    """Immutable price table: bundled prices plus user prices (which win). Build with :meth:`load`."""

    _bundled_instance: PriceTable | None = None
    _bundled_lock = threading.Lock()

    def __init__(
        self,
        entries: Iterable[_Entry],
        *,
        version: str,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = ("ollama",),
    ) -> None:
        self.version = version
        self._exact: dict[tuple[str, str], _Entry] = {}
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
        self._local = frozenset(_norm_provider(p) for p in local_providers)
        aliases: dict[str, str] = {}
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
            aliases[dep.strip().lower()] = target
        self._deployments = aliases
        self._memo: dict[tuple[str, str | None], Cost | _Priced] = {}

    @classmethod
    def load(
        cls,
        prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        model_aliases: Mapping[str, str] | None = None,
        local_providers: Iterable[str] = ("ollama",),
    ) -> PriceTable:
        """Bundled table plus user prices from a ``.json``/``.toml`` file path or a dict; user entries win.

        Raises :class:`~llm_otel.errors.ConfigError` (setting ``prices``) for a missing or malformed file, an
        unknown field, or a negative or non-numeric price.
        """
        version, bundled = _bundled_entries()
        user: list[_Entry] = []
        if isinstance(prices, Mapping):
            _, user = _parse_document(prices, "<dict>", "user:")
        elif prices is not None:
            if not isinstance(prices, (str, os.PathLike)) or not str(prices).strip():
                raise _bad(repr(prices), "expected a path to a .json/.toml file or a mapping of prices")
            _, user = _parse_document(_read_file(prices), str(prices), f"override:{prices}:")
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
        return f"PriceTable(version={self.version!r}, entries={len(self._exact)})"

    # -- lookup (cold path, memoised) --------------------------------------------------------------------

    def _find(self, provider: str, name: str) -> _Entry | None:
        e = self._exact.get((provider, name))
        if e is None:
            target = self._alias.get((provider, name))
            if target is not None:
                e = self._exact[target]
        return e

    def _resolve(self, provider: str, model: str | None) -> Cost | _Priced:
        p = _norm_provider(provider)
        chain = (p, PROVIDER_OPENAI) if p == PROVIDER_AZURE_OPENAI else (p,)
        names: list[str] = []
        if model is not None and model.strip():
            m = _norm_model(p, model)
            target = self._deployments.get(m)
            if target is not None:
                names.append(_norm_model(p, target))
            names.append(m)
        for name in names:  # exact, alias, then dated-snapshot fallback
            for prov in chain:
                e = self._find(prov, name)
                if e is None and (family := _undated(name)) is not None:
                    e = self._find(prov, family)
                if e is not None:
                    return _Priced(e.source, e.price)
        for prov in chain:  # then the longest prefix wildcard ("ollama/*" matches every model)
            for prefix, key in self._prefix.get(prov, ()):
                if any(n.startswith(prefix) for n in names) or (prefix == "" and not names):
                    e = self._exact[key]
                    return _Priced(e.source, e.price)
        return _LOCAL if p in self._local else _UNPRICED

    def _resolved(self, provider: str, model: str | None) -> Cost | _Priced:
        key = (provider, model)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._resolve(provider, model)
            if len(self._memo) >= _MEMO_MAX:  # an unbounded stream of model names must not grow memory
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def lookup(self, provider: str, model: str) -> tuple[str, Price] | None:
        """The (source, price) that :meth:`cost` would use; ``None`` if unpriced or local without a price."""
        hit = self._resolved(provider, model)
        return (hit.source, hit.price) if isinstance(hit, _Priced) else None

    # -- cost (hot path) ---------------------------------------------------------------------------------

    def cost(
        self,
        provider: str,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> Cost:
        """Exact cost of one call. Token semantics are OpenAI's (input includes cache, output reasoning)."""
        hit = self._memo.get((provider, model))
        if hit is None:
            hit = self._resolved(provider, model)
        if not isinstance(hit, _Priced):
            return hit  # local (cost 0 whatever the usage) or unpriced
        if input_tokens is None and output_tokens is None:
            return _UNPRICED  # usage unknown: no cost rather than a wrong one
        i = input_tokens if input_tokens and input_tokens > 0 else 0
        o = output_tokens if output_tokens and output_tokens > 0 else 0
        cr = cache_read_tokens if cache_read_tokens and cache_read_tokens > 0 else 0
        cw = cache_write_tokens if cache_write_tokens and cache_write_tokens > 0 else 0
        rates = hit.rates
        if hit.tiers:
            for above, tier_rates in hit.tiers:  # highest threshold first
                if i > above:
                    rates = tier_rates
                    break
        r_in, r_cached, r_write, r_out, r_reason = rates
        mul = _CTX.multiply
        uncached = i - cr - cw
        inp = mul(uncached, r_in) if uncached > 0 else _ZERO
        if cr:
            inp = _CTX.add(inp, mul(cr, r_cached))
        if cw:
            inp = _CTX.add(inp, mul(cw, r_write))
        if r_reason is not None and reasoning_tokens and reasoning_tokens > 0:
            rt = min(reasoning_tokens, o)
            out = _CTX.add(mul(o - rt, r_out), mul(rt, r_reason))
        else:
            out = mul(o, r_out)
        inp = inp.quantize(_Q12, context=_CTX)
        out = out.quantize(_Q12, context=_CTX)
        return Cost(PRICING_PRICED, _CTX.add(inp, out), inp, out, hit.source)

    def cost_floats(
        self,
        provider: str,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> tuple[str, str | None, float | None, float | None, float | None]:
        """``(status, source, total, input, output)`` as floats, for span attributes on the hot path.

        The same numbers as :meth:`cost` (each float is the correctly rounded value of its exact Decimal),
        computed with integers in 1e-12 USD units when the entry allows it: about 10x cheaper.
        """
        hit = self._memo.get((provider, model))
        if hit is None:
            hit = self._resolved(provider, model)
        if hit.__class__ is not _Priced:
            c: Cost = hit  # type: ignore[assignment]
            return c.status, c.source, _float(c.total), _float(c.input), _float(c.output)
        if input_tokens is None and output_tokens is None:
            return PRICING_UNPRICED, None, None, None, None
        pico = hit.pico  # type: ignore[union-attr]
        if pico is None:
            c = self.cost(
                provider,
                model,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            )
            return c.status, c.source, _float(c.total), _float(c.input), _float(c.output)
        i = input_tokens if input_tokens and input_tokens > 0 else 0
        o = output_tokens if output_tokens and output_tokens > 0 else 0
        cr = cache_read_tokens if cache_read_tokens and cache_read_tokens > 0 else 0
        cw = cache_write_tokens if cache_write_tokens and cache_write_tokens > 0 else 0
        r_in, r_cached, r_write, r_out, r_reason = pico
        uncached = i - cr - cw
        inp = (uncached * r_in if uncached > 0 else 0) + cr * r_cached + cw * r_write
        if r_reason is not None and reasoning_tokens and reasoning_tokens > 0:
            rt = min(reasoning_tokens, o)
            out = (o - rt) * r_out + rt * r_reason
        else:
            out = o * r_out
        return PRICING_PRICED, hit.source, (inp + out) / _PICO, inp / _PICO, out / _PICO  # type: ignore[union-attr]


_PICO: Final = 10**12


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
