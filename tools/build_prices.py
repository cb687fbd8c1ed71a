"""Generate ``llm_otel/data/prices.json`` from the installed ``genai-prices`` package (offline).

Why a generator and not a runtime dependency: see the docstring of ``llm_otel/pricing/__init__.py``. This
script reads pydantic's maintained price database (bundled in the ``genai-prices`` wheel, no network),
evaluates the standard-tier price of every model of the providers below on the table date, keeps only what
llm-otel can price exactly from the token counts it records, and writes our small, dated, Decimal-string
table under the GenAI conventions' ``gen_ai.provider.name`` values.

Usage (from the repo root, with the pinned genai-prices installed: ``pip install -e '.[test]'``)::

    python tools/build_prices.py [--date 2026-11-01] [--check] [-v]

``--check`` exits non-zero if the committed file differs from what would be generated
(``tests/test_pricing.py::test_generated_file_is_up_to_date`` runs it in CI).

The genai-prices version is pinned (``==``) in pyproject's ``test`` extra, to the version the committed
table was generated with (:data:`GENAI_PRICES_VERSION`): a newer genai-prices may change prices, and the
table is regenerated and reviewed on purpose, not on whatever version CI happens to install. To move to a
newer one: bump both pins, run this script, review the diff of ``prices.json`` (and the list prices in
``tests/test_pricing.py``), commit.

Sources (genai-prices provider -> ``gen_ai.provider.name``):
  * ``openai`` -> ``openai``; ``anthropic`` -> ``anthropic``; ``mistral`` -> ``mistral_ai``;
    ``deepseek`` -> ``deepseek``; ``x-ai`` -> ``x_ai``.
  * ``google`` (one price list for both Google endpoints) -> ``gcp.gemini`` for Gemini and Gemma models;
    its Claude models and Model-as-a-Service (``-maas``) models, which only Vertex AI serves, ->
    ``gcp.vertex_ai``. llm-otel's lookup prices a ``gcp.vertex_ai`` model without an entry of its own with
    the ``gcp.gemini`` entry.
  * ``azure`` (Global deployments) -> ``azure.ai.openai``: OpenAI models only, and only where Azure's price
    differs from OpenAI's or OpenAI has none (the lookup falls back from ``azure.ai.openai`` to ``openai``).
  * ``aws`` -> ``aws.bedrock``, keyed by Bedrock model id: ``regional.<id>`` (in-region ids and
    geographic cross-region profiles ``us.``/``eu.``/..., which the lookup maps to the in-region id) becomes
    ``<id>``; ``global.<id>`` (global cross-region inference, cheaper for recent models) stays.

Kept out (and so reported as ``unpriced`` rather than mispriced):
  * models with prices for anything but text and audio tokens (image or video tokens, cached audio, audio
    hours, pages, characters, messages): llm-otel records one input and one output count plus the audio
    subsets, so pricing those at the text rate would be wrong; for the same reason names saying
    realtime/transcribe/tts/whisper/image/live/ocr/moderation are left out, and so are names saying audio
    whose entry has no audio input price (gpt-4o-audio-preview lists text prices only: an audio call to it
    would be billed at the text rate). Audio input/output token prices are kept (``input_audio`` /
    ``output_audio``; gpt-audio, gpt-audio-mini, Bedrock's Nova Sonic);
  * models whose price depends on the time of day on the table date (DeepSeek's peak/off-peak rates):
    the cost formula does not see the call's time;
  * models with no token price at all, and models without an output price that are not embedding models
    (incomplete data: their output would be billed as free);
  * fine-tuned models (``ft:...``): their price depends on the base model and training date; users price them;
  * from ``openai`` and ``azure``: open-weight models (gpt-oss) and router-only ids (``:extended``): OpenAI
    does not sell them; genai-prices lists a third-party host's price, which would put a cost on a
    self-hosted gpt-oss behind an OpenAI client (Bedrock sells gpt-oss itself: those entries are Bedrock's);
  * free-tier ids (``:free``).
Dropped from a model that is kept:
  * per-call tool fees (web search, file search): not token prices;
  * Anthropic's 1-hour cache-write price: usage counts carry one cache-write number, so ``cache_write`` is the
    5-minute (default) write price; 1-hour writes (2x input) are billed at it, i.e. under-priced;
  * batch, flex/priority and fast modes (genai-prices' price variants): the standard price is used.
Name matching carried over from genai-prices: exact names and ``starts with`` clauses as they are;
``contains X`` as the prefix wildcard ``X*`` and ``ends with X`` as the exact name ``X`` (the common forms of
what they match); regular expressions and ``and`` clauses are dropped (their dated forms are covered by
llm-otel's dated-snapshot fallback). :func:`verify_against_source` then resolves every name genai-prices
knows for these providers (ids, exact aliases, dated forms) through llm-otel's own lookup and fails if one
resolves to a different price than genai-prices gives it, or prices a model that is kept out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # llm-otel's own lookup: the table is checked the way it will be read

from genai_prices import data as gp_data  # noqa: E402
from genai_prices import types as gp  # noqa: E402

from llm_otel.pricing.lookup import (  # noqa: E402
    BEDROCK_GEO_PREFIX,
    ModelIndex,
    norm_model,
)
from llm_otel.pricing.price_file import Entry, user_entries  # noqa: E402

OUT = ROOT / "llm_otel" / "data" / "prices.json"
#: The genai-prices version the committed table is generated with; pinned in pyproject's ``test`` extra.
GENAI_PRICES_VERSION = "0.2.3"

#: genai-prices price key -> our field. Any other key is dropped (IGNORED_KEYS) or excludes the model.
FIELD_MAP = {
    "input_mtok": "input",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "output_mtok": "output",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
}
#: Our audio fields: base prices only (a tiered audio price excludes the model).
AUDIO_FIELDS = {"input_audio", "output_audio"}
#: Tool fees, and the 1-hour cache-write price (see the module docstring).
IGNORED_KEYS = {"web_searches_kcount", "storage_searches_kcount", "cache_write_1h_mtok"}
NAME_EXCLUDE = re.compile(
    r"(^ft:|\.ft-|realtime|transcribe|tts|whisper|image|moderation|(^|[-.])live([-.]|$)|ocr|:extended$)"
)
#: Not sold by OpenAI (or Azure OpenAI): a third party's price would misprice a self-hosted one.
OPENAI_ONLY_EXCLUDE = re.compile(r"(^|\.)gpt-oss")
#: Azure's price list also has non-OpenAI models (Phi, WizardLM, MAI): those are not azure.ai.openai's.
AZURE_NOT_OPENAI = re.compile(r"^(phi-|wizardlm|mai-)")
#: Embedding models bill input only; any other model without an output price has incomplete data.
EMBEDDING = re.compile(r"(embed|^ada$)")
DATE_SUFFIX = re.compile(r"(-(\d{4}-\d{2}-\d{2}|\d{8})|@\d{8})$")

#: Spot checks against published list prices (standard tier, USD per 1M tokens): input, cached input, output.
#: Independent of genai-prices: a regenerated table that drifts from them fails here (tests/test_pricing.py
#: has a longer list, with dates).
EXPECTED = {
    "openai/gpt-4o": ("2.5", "1.25", "10"),
    "openai/gpt-4o-mini": ("0.15", "0.075", "0.6"),
    "openai/gpt-4.1": ("2", "0.5", "8"),
    "openai/gpt-4.1-mini": ("0.4", "0.1", "1.6"),
    "openai/gpt-4.1-nano": ("0.1", "0.025", "0.4"),
    "openai/o3": ("2", "0.5", "8"),
    "openai/o4-mini": ("1.1", "0.275", "4.4"),
    "openai/gpt-5": ("1.25", "0.125", "10"),
    "openai/gpt-5-mini": ("0.25", "0.025", "2"),
    "openai/gpt-5-nano": ("0.05", "0.005", "0.4"),
    "openai/gpt-5.5": ("5", "0.5", "30"),
    "openai/text-embedding-3-small": ("0.02", None, None),
    "openai/text-embedding-3-large": ("0.13", None, None),
    "openai/gpt-4o-2024-05-13": ("5", None, "15"),
    "anthropic/claude-sonnet-4-5": ("3", "0.3", "15"),
    "anthropic/claude-haiku-4-5": ("1", "0.1", "5"),
    "anthropic/claude-opus-4-1": ("15", "1.5", "75"),
    "gcp.gemini/gemini-2.5-pro": ("1.25", "0.125", "10"),
    "mistral_ai/mistral-large": ("2", None, "6"),
    "x_ai/grok-3": ("3", "0.75", "15"),
    "aws.bedrock/anthropic.claude-3-haiku-20240307-v1:0": ("0.25", None, "1.25"),
    "aws.bedrock/amazon.nova-micro-v1:0": ("0.035", "0.00875", "0.14"),
}
REQUIRED = [
    "openai/gpt-4-turbo", "openai/gpt-4", "openai/gpt-3.5-turbo", "openai/o1", "openai/o1-mini",
    "openai/o3-mini", "openai/gpt-5.4", "openai/text-embedding-ada-002", "openai/davinci-002",
    "openai/babbage-002", "anthropic/claude-3-5-haiku-latest", "anthropic/claude-sonnet-4-0",
    "gcp.vertex_ai/claude-sonnet-4-5", "mistral_ai/codestral", "deepseek/deepseek-v3.2", "x_ai/grok-4-0709",
    "aws.bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "aws.bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
]  # fmt: skip


def _s(d: Decimal) -> str:
    """Plain decimal string, no exponent, no trailing zeros (``Decimal('2.50')`` -> ``'2.5'``)."""
    return format(d.normalize(), "f")


# --- which genai-prices model goes where --------------------------------------------------------------


def _google(model_id: str) -> str:
    return "gcp.vertex_ai" if model_id.startswith("claude") or model_id.endswith("-maas") else "gcp.gemini"


def _aws_key(model_id: str) -> str:
    return model_id.removeprefix("regional.")


#: genai-prices provider id -> (gen_ai.provider.name of a model id, our model key of a model id, exclusion).
SOURCES: dict[str, tuple[Callable[[str], str], Callable[[str], str], re.Pattern[str] | None]] = {
    "openai": (lambda _: "openai", lambda m: m, OPENAI_ONLY_EXCLUDE),
    "anthropic": (lambda _: "anthropic", lambda m: m, None),
    "google": (_google, lambda m: m, None),
    "mistral": (lambda _: "mistral_ai", lambda m: m, None),
    "deepseek": (lambda _: "deepseek", lambda m: m, None),
    "x-ai": (lambda _: "x_ai", lambda m: m, None),
    "azure": (lambda _: "azure.ai.openai", lambda m: m, OPENAI_ONLY_EXCLUDE),
    "aws": (lambda _: "aws.bedrock", _aws_key, None),
}


def _names(clause: Any) -> list[str]:
    """Flatten a genai-prices match clause into exact names and ``prefix*`` wildcards."""
    if isinstance(clause, gp.ClauseEquals):
        return [clause.equals.lower()]
    if isinstance(clause, (gp.ClauseStartsWith, gp.ClauseContains)):  # contains X: the names starting with X
        text = clause.starts_with if isinstance(clause, gp.ClauseStartsWith) else clause.contains
        return [text.lower() + "*"]
    if isinstance(clause, gp.ClauseEndsWith):  # ends with X: the name X (of a path: its last segment)
        return [clause.ends_with.lower().lstrip("/")]
    if isinstance(clause, gp.ClauseOr):
        return [n for c in clause.or_ for n in _names(c)]
    return []  # regex / and: too fuzzy to carry over; dated forms are covered by the lookup's date fallback


def _fields(prices: Any) -> dict[str, Any]:
    return {k: v for k, v in prices.__dict__.items() if v is not None and not k.startswith("_")}


def _day_varies(model: Any, table_date: date) -> bool:
    """Whether the model's price changes during the table date (a time-of-day constraint that applies)."""
    if isinstance(model.prices, gp.ModelPrice) or not any(
        isinstance(c.constraint, gp.TimeOfDateConstraint) for c in model.prices
    ):
        return False
    start = datetime(table_date.year, table_date.month, table_date.day, tzinfo=timezone.utc)
    seen = {repr(model.get_prices(start + timedelta(minutes=m))) for m in range(0, 24 * 60, 5)}
    return len(seen) > 1


def _entry(model: Any, when: datetime) -> tuple[dict[str, Any] | None, str]:
    """Our entry (prices and tiers, no aliases) of a genai-prices model on ``when``, or why there is none."""
    if _day_varies(model, when.date()):
        return None, "price depends on the time of day"
    values = _fields(model.get_prices(when))
    unknown = set(values) - set(FIELD_MAP) - IGNORED_KEYS
    if unknown:
        return None, f"non-token prices {sorted(unknown)}"
    if "input_mtok" not in values:
        return None, "no input price"
    if "output_mtok" not in values and not EMBEDDING.search(model.id.lower()):
        return None, "no output price (and not an embedding model)"
    if "audio" in model.id.lower() and "input_audio_mtok" not in values:
        return None, "an audio model without audio token prices"
    entry: dict[str, Any] = {}
    tiers: dict[int, dict[str, Any]] = {}
    for key, field in FIELD_MAP.items():
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, gp.TieredPrices):
            if field in AUDIO_FIELDS:
                return None, "tiered audio prices"
            entry[field] = _s(value.base)
            for tier in value.tiers:
                tiers.setdefault(tier.start, {"above_input_tokens": tier.start})[field] = _s(tier.price)
        else:
            entry[field] = _s(value)
    if tiers:
        entry["tiers"] = [tiers[k] for k in sorted(tiers)]
    return entry, ""


def _excluded(source: str, model_id: str) -> str:
    """Why a model is left out by its name, or ``""``."""
    mid = model_id.lower()
    exclude = SOURCES[source][2]
    if NAME_EXCLUDE.search(mid) or mid.endswith(("-", ":free")) or (exclude and exclude.search(mid)):
        return "excluded by name"
    if source == "azure" and AZURE_NOT_OPENAI.search(mid):
        return "not an OpenAI model"
    return ""


def convert(source: str, model: Any, when: datetime) -> tuple[dict[str, Any] | None, str]:
    """Our entry for one genai-prices model, or ``(None, why it is left out)``."""
    why = _excluded(source, model.id)
    if why:
        return None, why
    return _entry(model, when)


# --- the table -------------------------------------------------------------------------------------------


def _provider(source: str) -> Any:
    return next(p for p in gp_data.providers if p.id == source)


def _index(models: dict[str, dict[str, Any]]) -> ModelIndex[Entry]:
    return ModelIndex(user_entries({"models": models}), local_providers=())


def _same_price(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "aliases"} == {k: v for k, v in b.items() if k != "aliases"}


def build(table_date: date, *, verbose: bool = False) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The table, and where each entry came from: key -> (genai-prices provider id, model id)."""
    when = datetime(table_date.year, table_date.month, table_date.day, 12, tzinfo=timezone.utc)
    models: dict[str, dict[str, Any]] = {}
    origin: dict[str, tuple[str, str]] = {}
    taken: dict[str, set[str]] = {}  # per gen_ai.provider.name: names already given to an entry
    skipped: list[str] = []
    azure: list[tuple[str, dict[str, Any], str]] = []
    for source, (provider_of, key_of, _) in SOURCES.items():
        for model in _provider(source).models:  # genai-prices order is first-match-wins: keep the first owner
            mid = model.id.lower()
            entry, why = convert(source, model, when)
            if entry is None:
                skipped.append(f"{source}/{mid}: {why}")
                continue
            provider = provider_of(mid)
            key = norm_model(provider, key_of(mid))
            mine = taken.setdefault(provider, set())
            if key in mine:
                skipped.append(f"{source}/{mid}: name already taken by an earlier model")
                continue
            names = []
            for raw in _names(model.match):
                n = norm_model(provider, raw)
                if provider == "aws.bedrock":  # us./eu./... profiles are priced as the in-region id
                    n = BEDROCK_GEO_PREFIX.sub("", n, count=1)
                if n != key and not n.startswith("ft:") and n not in mine and n not in names:
                    names.append(n)
            undated = {key, *names}
            # A dated snapshot of the id or of an alias is covered by llm-otel's date fallback: leave it out.
            aliases = [
                n
                for n in names
                if n.endswith("*") or DATE_SUFFIX.sub("", n) == n or DATE_SUFFIX.sub("", n) not in undated
            ]
            if aliases:
                entry["aliases"] = aliases
            if source == "azure":
                azure.append((key, entry, mid))
                continue
            mine.update(aliases)
            mine.add(key)
            models[f"{provider}/{key}"] = entry
            origin[f"{provider}/{key}"] = (source, model.id)
    # Azure: an entry only where its price differs from the OpenAI entry the lookup would fall back to.
    openai = _index(models)
    for key, entry, mid in azure:
        found = openai.find("openai", key)
        fallback = models[f"{found.provider}/{found.model}"] if found is not None else None
        if fallback is not None and _same_price(entry, fallback):
            skipped.append(f"azure/{mid}: same price as OpenAI's")
            continue
        entry.pop("aliases", None)  # Azure's spellings are OpenAI's: the fallback has them
        models[f"azure.ai.openai/{key}"] = entry
        origin[f"azure.ai.openai/{key}"] = ("azure", mid)
    for line in skipped if verbose else ():
        print(f"skipped {line}", file=sys.stderr)
    table = {
        "version": table_date.isoformat(),
        "currency": "USD",
        "unit": "per_million_tokens",
        "source": (
            f"genai-prices {dist_version('genai-prices')} (github.com/pydantic/genai-prices, MIT): standard "
            f"tier on {table_date.isoformat()} of {', '.join(SOURCES)}; generated by tools/build_prices.py"
        ),
        "models": dict(sorted(models.items())),
    }
    return table, origin


# --- checks ----------------------------------------------------------------------------------------------


def verify(table: dict[str, Any]) -> None:
    models = table["models"]
    for key, (inp, cached, out) in EXPECTED.items():
        entry = models.get(key, {})
        got = (entry.get("input"), entry.get("cached_input"), entry.get("output"))
        want = tuple(None if v is None else _s(Decimal(v)) for v in (inp, cached, out))
        if got != want:
            raise SystemExit(f"price check failed for {key}: got {got}, the list price is {want}")
    missing = [m for m in REQUIRED if m not in models]
    if missing:
        raise SystemExit(f"required models missing: {missing}")


def _probes(source: str, model: Any) -> set[str]:
    """Names a user may send for this model: its id, exact aliases, and (but for Bedrock ids) dated forms."""
    key_of = SOURCES[source][1]
    exact = {key_of(n) for n in [model.id.lower(), *_names(model.match)] if not n.endswith("*")}
    if source == "aws":
        return exact
    return exact | {f"{n}{d}" for n in exact if not DATE_SUFFIX.search(n) for d in ("-20990101", "@20990101")}


def verify_against_source(table: dict[str, Any], table_date: date) -> list[str]:
    """Every name genai-prices resolves for our sources resolves, through llm-otel's lookup, to the same
    prices (or, for a model kept out, to none); returns the disagreements."""
    when = datetime(table_date.year, table_date.month, table_date.day, 12, tzinfo=timezone.utc)
    models = table["models"]
    index = _index(models)
    problems = []
    for source, (provider_of, _, _) in SOURCES.items():
        gp_provider = _provider(source)
        # only Azure's lookup falls back to another provider's entries as genai-prices does (to OpenAI's)
        others = gp_data.providers if source == "azure" else None
        for model in gp_provider.models:
            for name in sorted(_probes(source, model)):
                want_model = gp_provider.find_model(name, all_providers=others)
                if want_model is None:
                    continue
                owner = next(p.id for p in gp_data.providers if any(m is want_model for m in p.models))
                want, _ = convert(owner, want_model, when)
                if want is None and source == "azure":  # kept out: the lookup falls back to OpenAI's entry
                    fallback = _provider("openai").find_model(name)
                    want = convert("openai", fallback, when)[0] if fallback is not None else None
                provider = provider_of(want_model.id.lower())
                found = index.find(provider, name)
                got = models[f"{found.provider}/{found.model}"] if found is not None else None
                if want is None and got is None:
                    continue
                if got is None and DATE_SUFFIX.search(name) and not DATE_SUFFIX.search(model.id.lower()):
                    continue  # a dated form made up here that genai-prices' fuzzier rules price: fine
                if want is None or got is None or not _same_price(want, got):
                    where = f"{found.provider}/{found.model}" if found is not None else "unpriced"
                    problems.append(
                        f"{provider} {name!r}: genai-prices {owner}/{want_model.id} "
                        f"{'(kept out)' if want is None else ''} -> ours {where}"
                    )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default="2026-11-01", help="table version: prices in force on this date")
    parser.add_argument("--check", action="store_true", help="fail if the committed file is out of date")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the models left out and why")
    args = parser.parse_args()
    installed = dist_version("genai-prices")
    if installed != GENAI_PRICES_VERSION:
        print(
            f"genai-prices {installed} is installed; the table is generated with {GENAI_PRICES_VERSION} "
            "(pinned in pyproject's test extra): install that, or bump both pins on purpose",
            file=sys.stderr,
        )
        return 1
    table_date = date.fromisoformat(args.date)
    table, _ = build(table_date, verbose=args.verbose)
    verify(table)
    problems = verify_against_source(table, table_date)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} names resolve differently from genai-prices", file=sys.stderr)
        return 1
    text = json.dumps(table, indent=1, sort_keys=False) + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run tools/build_prices.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    counts: dict[str, int] = {}
    for key in table["models"]:
        counts[key.split("/", 1)[0]] = counts.get(key.split("/", 1)[0], 0) + 1
    print(f"wrote {len(table['models'])} models to {args.out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
