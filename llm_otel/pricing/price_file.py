"""Price files: parse and validate the bundled table and user prices into :class:`Entry` objects.

Everything a user can get wrong about prices is caught here, at configuration time, as a
:class:`~llm_otel.errors.ConfigError` naming the ``prices`` setting, the file and the entry; nothing here
runs during an LLM call.

User prices (``prices=`` / ``LLM_OTEL_PRICES``) are a ``.json`` or ``.toml`` file or a dict, in the shape
of the bundled ``llm_otel/data/prices.json``::

    {"version": "2026-11-01", "currency": "USD", "unit": "per_million_tokens",   # optional; must be these
     "models": {"openai/my-model": {"input": "0.15", "cached_input": "0.075", "cache_write": "0.1875",
                                    "output": "0.60", "reasoning": "0.60",
                                    "input_audio": "10", "output_audio": "20",
                                    "tiers": [{"above_input_tokens": 272000, "input": "0.30"}],
                                    "aliases": ["my-model-latest", "my-model-*"]},
                "ollama/*": {"input": "0.02", "output": "0.02"}}}

``models`` may be omitted (a flat mapping of entries). Keys are ``"<provider>/<model>"`` or ``"<model>"``
(= openai); a trailing ``*`` is a prefix wildcard. Only ``input`` is required. Prices are USD per million
tokens, given as strings (or numbers), read as exact ``Decimal``: finite, >= 0, below
:data:`MAX_PRICE` and with at most :data:`MAX_PLACES` decimal places, so that the cost arithmetic stays
exact integer arithmetic on small integers and every cost fits a float. Missing ``cached_input`` and
``cache_write`` prices mean "billed at the input price"; a missing ``reasoning`` price means "billed as
output"; an entry without ``output`` (embeddings) bills input only. ``input_audio`` / ``output_audio`` are
the prices of audio tokens (the response's ``audio_tokens``); a call that reports audio tokens to an entry
without the matching audio price is unpriced, not billed at the text rate.

Not modelled: service tiers (flex/priority/batch), per-call tool fees (web/file search), cached-audio, image
and video token prices and time-of-day prices (models billed for those are left out of the bundled table,
so they are unpriced rather than mispriced), Anthropic's 1-hour cache writes (one ``cache_write`` price: the
bundled one is the 5-minute write price).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from llm_otel.errors import ConfigError
from llm_otel.semconv import PROVIDER_OPENAI

from .lookup import norm_model, norm_provider

#: Upper bound (exclusive) of a price, USD per million tokens: a thousand dollars per token.
MAX_PRICE: Final = Decimal(10**9)
#: Most decimal places a price (USD per million tokens) may have, trailing zeros aside.
MAX_PLACES: Final = 30

_SETTING: Final = "prices"
_UNIT: Final = "per_million_tokens"
_PRICE_FIELDS: Final = ("input", "cached_input", "cache_write", "output", "reasoning")
#: Audio token prices: base entries only (no tiers), used only when a call reports audio tokens.
_AUDIO_FIELDS: Final = ("input_audio", "output_audio")
_ENTRY_FIELDS: Final = frozenset((*_PRICE_FIELDS, *_AUDIO_FIELDS, "tiers", "aliases"))
_TIER_FIELDS: Final = frozenset((*_PRICE_FIELDS, "above_input_tokens"))
_DOC_FIELDS: Final = frozenset(("version", "currency", "unit", "source", "models"))


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
    #: Audio tokens (a subset of input / output): None = no audio price, so a call with audio is unpriced.
    input_audio: Decimal | None = None
    output_audio: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One validated price entry: the key it prices, its prices, its aliases and where it came from."""

    provider: str
    model: str  # normalised; ends with "*" for a prefix wildcard
    price: Price
    aliases: tuple[str, ...]
    source: str  # llm_otel.pricing.source: "bundled:<version>:<key>", "user:<key>", "override:<file>:<key>"


def user_entries(prices: str | os.PathLike[str] | Mapping[str, Any]) -> list[Entry]:
    """Entries of user prices given as a ``.json``/``.toml`` file path or a mapping."""
    if isinstance(prices, Mapping):
        return _parse_document(prices, "<dict>", "user:")
    if not isinstance(prices, (str, os.PathLike)) or not str(prices).strip():
        raise _bad(repr(prices), "expected a path to a .json/.toml file or a mapping of prices")
    return _parse_document(_read_file(prices), str(prices), f"override:{prices}:")


@cache
def bundled_entries() -> tuple[str, tuple[Entry, ...]]:
    """Version and entries of the bundled table, parsed once per process (no network, ever)."""
    text = (resources.files("llm_otel") / "data" / "prices.json").read_text(encoding="utf-8")
    doc = json.loads(text, parse_float=Decimal)
    version = str(doc["version"])
    return version, tuple(_parse_document(doc, "bundled prices.json", f"bundled:{version}:"))


def decimal_parts(d: Decimal) -> tuple[int, int]:
    """``(c, e)`` with ``d == c * 10**e`` and no trailing zeros in ``c`` (``(0, 0)`` for 0), context-free."""
    _, digits, exponent = d.as_tuple()
    text = "".join(map(str, digits))
    stripped = text.rstrip("0")
    if not stripped:
        return 0, 0
    return int(stripped), int(exponent) + len(text) - len(stripped)


def _bad(origin: str, reason: str) -> ConfigError:
    return ConfigError(_SETTING, origin, reason)


def _decimal(value: object, origin: str, where: str) -> Decimal:
    """A price: a string, int, Decimal (or float from TOML/JSON), finite, >= 0, bounded and not too fine."""
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
    if d >= MAX_PRICE:
        raise _bad(origin, f"{where} must be below {MAX_PRICE} (USD per million tokens), got {value!r}")
    if -decimal_parts(d)[1] > MAX_PLACES:
        raise _bad(origin, f"{where} must have at most {MAX_PLACES} decimal places, got {value!r}")
    return d


def _prices_of(obj: Mapping[str, Any], fields: Iterable[str], origin: str, where: str) -> dict[str, Decimal]:
    return {f: _decimal(obj[f], origin, f"{where} field {f!r}") for f in fields if f in obj}


def _parse_entry(key: object, raw: object, origin: str, label: str) -> Entry:
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
    provider = norm_provider(provider)
    model = norm_model(provider, model)
    if not provider or not model or "*" in model[:-1]:
        raise _bad(origin, f"{where}: expected '<provider>/<model>', '<model>' or a trailing '*' wildcard")
    prices = _prices_of(raw, (*_PRICE_FIELDS, *_AUDIO_FIELDS), origin, where)
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
    aliases = tuple(norm_model(provider, a) for a in raw_aliases)
    price = Price(tiers=tuple(tiers), **prices)
    return Entry(provider, model, price, aliases, f"{label}{provider}/{model}")


def _parse_document(doc: object, origin: str, label: str) -> list[Entry]:
    """Either ``{"version", "currency", "unit", "models": {...}}`` or a flat ``{"<key>": {...}}`` mapping."""
    if not isinstance(doc, Mapping):
        raise _bad(origin, f"expected a table/object of model prices, got {type(doc).__name__}")
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
        entries = doc["models"]
    parsed: list[Entry] = []
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
    return parsed


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
