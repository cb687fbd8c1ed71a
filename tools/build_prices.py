"""Generate ``llm_otel/data/prices.json`` from the installed ``genai-prices`` package (offline).

Why a generator and not a runtime dependency: see the docstring of ``llm_otel/pricing/__init__.py``. This
script reads pydantic's maintained price database (bundled in the ``genai-prices`` wheel, no network),
evaluates every OpenAI model's standard-tier price on the table date, keeps only what llm-otel can price
exactly from the token counts it records, and writes our small, dated, Decimal-string table.

Usage (from the repo root, with genai-prices installed)::

    python tools/build_prices.py [--date 2026-11-01] [--check]

``--check`` exits non-zero if the committed file differs from what would be generated.

Kept out (and so reported as ``unpriced`` rather than mispriced):
  * fine-tuned models (``ft:...``): their price depends on the base model and training date; users price them,
  * models with audio/image/character/hour prices (realtime, audio, tts, transcribe, image models): llm-otel
    records text token counts only, so pricing them at the text rate would be wrong,
  * models with no token price at all (moderation),
  * open-weight models (gpt-oss) and router-only ids (``:extended``): OpenAI does not sell them; genai-prices
    lists a third-party host's price, which would put a cost on a self-hosted gpt-oss behind an OpenAI client.
Per-call tool fees (web search, file search) are not token prices and are dropped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from genai_prices import data as gp_data
from genai_prices import types as gp

OUT = Path(__file__).resolve().parents[1] / "llm_otel" / "data" / "prices.json"

#: genai-prices price key -> our field. Everything else either is dropped (tool fees) or excludes the model.
FIELD_MAP = {
    "input_mtok": "input",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "output_mtok": "output",
}
IGNORED_KEYS = {"web_searches_kcount", "storage_searches_kcount"}
NAME_EXCLUDE = re.compile(
    r"(^ft:|\.ft-|audio|realtime|transcribe|tts|whisper|image|moderation|^gpt-oss|:extended$)"
)
DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")

#: Spot checks against OpenAI's published list prices (standard tier, USD per 1M tokens): input, cached input,
#: output.
EXPECTED = {
    "gpt-4o": ("2.5", "1.25", "10"),
    "gpt-4o-mini": ("0.15", "0.075", "0.6"),
    "gpt-4.1": ("2", "0.5", "8"),
    "gpt-4.1-mini": ("0.4", "0.1", "1.6"),
    "gpt-4.1-nano": ("0.1", "0.025", "0.4"),
    "o3": ("2", "0.5", "8"),
    "o4-mini": ("1.1", "0.275", "4.4"),
    "gpt-5": ("1.25", "0.125", "10"),
    "gpt-5-mini": ("0.25", "0.025", "2"),
    "gpt-5-nano": ("0.05", "0.005", "0.4"),
    "gpt-5.5": ("5", "0.5", "30"),
    "text-embedding-3-small": ("0.02", None, None),
    "text-embedding-3-large": ("0.13", None, None),
    "gpt-4o-2024-05-13": ("5", None, "15"),
}
REQUIRED = [
    "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "o1", "o1-mini", "o3-mini", "gpt-5.4",
    "text-embedding-ada-002", "davinci-002", "babbage-002",
]  # fmt: skip


def _s(d: Decimal) -> str:
    """Plain decimal string, no exponent, no trailing zeros (``Decimal('2.50')`` -> ``'2.5'``)."""
    text = format(d.normalize(), "f")
    return text


def _names(clause: Any) -> list[str]:
    """Flatten a genai-prices match clause into exact names and ``prefix*`` wildcards."""
    if isinstance(clause, gp.ClauseEquals):
        return [clause.equals.lower()]
    if isinstance(clause, gp.ClauseStartsWith):
        return [clause.starts_with.lower() + "*"]
    if isinstance(clause, gp.ClauseOr):
        return [n for c in clause.or_ for n in _names(c)]
    return []  # contains/regex/and: too fuzzy to carry over; the canonical id still matches exactly


def _entry(model: Any, when: datetime) -> tuple[dict[str, Any] | None, str]:
    prices = model.get_prices(when)
    values = {k: v for k, v in prices.__dict__.items() if v is not None and not k.startswith("_")}
    unknown = set(values) - set(FIELD_MAP) - IGNORED_KEYS
    if unknown:
        return None, f"non-token prices {sorted(unknown)}"
    if "input_mtok" not in values:
        return None, "no input price"
    entry: dict[str, Any] = {}
    tiers: dict[int, dict[str, Any]] = {}
    for key, field in FIELD_MAP.items():
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, gp.TieredPrices):
            entry[field] = _s(value.base)
            for tier in value.tiers:
                tiers.setdefault(tier.start, {"above_input_tokens": tier.start})[field] = _s(tier.price)
        else:
            entry[field] = _s(value)
    if tiers:
        entry["tiers"] = [tiers[k] for k in sorted(tiers)]
    return entry, ""


def build(table_date: date, *, verbose: bool = False) -> dict[str, Any]:
    when = datetime(table_date.year, table_date.month, table_date.day, 12, tzinfo=timezone.utc)
    openai = next(p for p in gp_data.providers if p.id == "openai")
    models: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    skipped: list[str] = []
    for model in openai.models:  # genai-prices order is first-match-wins: keep the first owner of a name
        mid = model.id.lower()
        if NAME_EXCLUDE.search(mid) or mid.endswith(("-", ":free")):
            skipped.append(f"{mid}: excluded by name")
            continue
        entry, why = _entry(model, when)
        if entry is None:
            skipped.append(f"{mid}: {why}")
            continue
        names = [n for n in _names(model.match) if n != mid and not n.startswith("ft:") and n not in taken]
        undated = {mid, *names}
        # A dated snapshot of the id or of an alias is covered by llm-otel's date fallback: leave it out.
        aliases = [
            n
            for n in dict.fromkeys(names)
            if n.endswith("*") or DATE_SUFFIX.sub("", n) == n or DATE_SUFFIX.sub("", n) not in undated
        ]
        taken.update(aliases)
        if aliases:
            entry["aliases"] = aliases
        models[f"openai/{mid}"] = entry
        taken.add(mid)
    for line in skipped if verbose else ():
        print(f"skipped {line}", file=sys.stderr)
    return {
        "version": table_date.isoformat(),
        "currency": "USD",
        "unit": "per_million_tokens",
        "source": (
            f"genai-prices {dist_version('genai-prices')} (github.com/pydantic/genai-prices, MIT), OpenAI "
            f"standard tier on {table_date.isoformat()}; generated by tools/build_prices.py"
        ),
        "models": dict(sorted(models.items())),
    }


def verify(table: dict[str, Any]) -> None:
    models = table["models"]
    for name, (inp, cached, out) in EXPECTED.items():
        entry = models[f"openai/{name}"]
        got = (entry.get("input"), entry.get("cached_input"), entry.get("output"))
        want = tuple(None if v is None else _s(Decimal(v)) for v in (inp, cached, out))
        if got != want:
            raise SystemExit(f"price check failed for {name}: got {got}, OpenAI's list price is {want}")
    missing = [m for m in REQUIRED if f"openai/{m}" not in models]
    if missing:
        raise SystemExit(f"required models missing: {missing}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default="2026-11-01", help="table version: prices in force on this date")
    parser.add_argument("--check", action="store_true", help="fail if the committed file is out of date")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the models left out and why")
    args = parser.parse_args()
    table = build(date.fromisoformat(args.date), verbose=args.verbose)
    verify(table)
    text = json.dumps(table, indent=1, sort_keys=False) + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run tools/build_prices.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(table['models'])} models to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
