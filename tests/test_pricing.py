"""Price table and cost: exact Decimal values, name normalisation, user overrides, config errors."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from decimal import Decimal, Inexact, Rounded, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from realworld import load_exchange

import llm_otel
from llm_otel import manual, pipeline
from llm_otel import semconv as sc
from llm_otel.errors import ConfigError
from llm_otel.pricing import Cost, PriceTable

BUNDLED_FILE = Path(__file__).parents[1] / "llm_otel" / "data" / "prices.json"
BUNDLED = "bundled:2026-11-01:"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.bundled()


def prices_via_cost(table: PriceTable, model: str) -> tuple[str | None, Decimal, Decimal, Decimal]:
    """(source, input, cached input, output) in USD per 1M tokens as cost() bills them, below any tier."""
    n = 100_000
    plain = table.cost("openai", model, n, n)
    cached = table.cost("openai", model, n, 0, cache_read_tokens=n)
    assert plain.input is not None and plain.output is not None and cached.input is not None
    return plain.source, plain.input * 10, cached.input * 10, plain.output * 10


def usage_of(name: str) -> tuple[str, dict[str, Any]]:
    """(response model, usage block) of a recorded OpenAI chat response."""
    body = json.loads(load_exchange(name)["response"]["body"])
    return body["model"], body["usage"]


# --- real recorded usage -------------------------------------------------------------------------------


def test_cached_tokens_from_recorded_response(table: PriceTable) -> None:
    model, usage = usage_of("openai_chat_cached_tokens.json")
    assert (model, usage["prompt_tokens"], usage["completion_tokens"]) == (
        "gpt-4o-mini-2024-07-18",
        1370,
        155,
    )
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert cached == 1280
    c = table.cost(
        "openai", model, usage["prompt_tokens"], usage["completion_tokens"], cache_read_tokens=cached
    )
    # 90 uncached * 0.15/M + 1280 cached * 0.075/M = 0.0000135 + 0.000096; 155 * 0.60/M = 0.000093
    assert c == Cost(
        "priced",
        Decimal("0.0002025"),
        Decimal("0.0001095"),
        Decimal("0.000093"),
        BUNDLED + "openai/gpt-4o-mini",
    )
    assert c.total is not None and c.total.as_tuple().exponent == -12
    # the classic bug (langfuse#4590): cached tokens priced at full rate or counted twice
    assert c.total != Decimal("0.0003000")  # 1370 * 0.15/M + 155 * 0.6/M


def test_reasoning_tokens_from_recorded_response(table: PriceTable) -> None:
    model, usage = usage_of("openai_chat_reasoning.json")
    assert model == "gpt-5-nano-2025-08-07"
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], reasoning) == (11, 228, 192)
    c = table.cost("openai", model, 11, 228, cache_read_tokens=0, reasoning_tokens=reasoning)
    # reasoning is inside completion_tokens and billed at the output rate: 11 * 0.05/M, 228 * 0.40/M
    assert (c.status, c.input, c.output, c.total) == (
        "priced",
        Decimal("0.00000055"),
        Decimal("0.0000912"),
        Decimal("0.00009175"),
    )
    assert c.source == BUNDLED + "openai/gpt-5-nano"


def test_separate_reasoning_price() -> None:
    t = PriceTable.load({"openai/thinker": {"input": "1", "output": "2", "reasoning": "3"}})
    c = t.cost("openai", "thinker", 11, 228, reasoning_tokens=192)
    assert c.output == Decimal("0.000648")  # 36 * 2/M + 192 * 3/M
    assert c.total == Decimal("0.000659")
    # reasoning above output (bad data) is capped: never more than all output at the reasoning rate
    assert t.cost("openai", "thinker", 0, 10, reasoning_tokens=50).output == Decimal("0.00003")


def test_cache_write_price_and_fallback() -> None:
    t = PriceTable.load(
        {
            "openai/w": {"input": "2", "cached_input": "0.5", "cache_write": "2.5", "output": "8"},
            "openai/nw": {"input": "2", "output": "8"},
        }
    )
    # 1000 input = 600 uncached + 300 read + 100 written
    c = t.cost("openai", "w", 1000, 0, cache_read_tokens=300, cache_write_tokens=100)
    assert c.input == Decimal("0.0016")  # 600*2 + 300*0.5 + 100*2.5 = 1600 per M
    # no cached/cache-write price: both billed at the input rate
    assert t.cost("openai", "nw", 1000, 0, cache_read_tokens=300, cache_write_tokens=100).input == Decimal(
        "0.002"
    )


def test_inconsistent_usage_never_goes_negative(table: PriceTable) -> None:
    c = table.cost("openai", "gpt-4o-mini", 100, -5, cache_read_tokens=500)
    assert c.input == Decimal("0.0000375") and c.output == 0  # 500 cached at 0.075/M, uncached clamped to 0


def test_embeddings_bill_input_only(table: PriceTable) -> None:
    c = table.cost("openai", "text-embedding-3-small", 8, None)
    assert (c.status, c.input, c.output, c.total) == (
        "priced",
        Decimal("0.00000016"),
        0,
        Decimal("0.00000016"),
    )
    assert table.cost("openai", "text-embedding-ada-002", 1_000_000, 0).total == Decimal("0.1")


def test_long_context_tier(table: PriceTable) -> None:
    at = table.cost("openai", "gpt-5.5", 272_000, 1000)
    above = table.cost("openai", "gpt-5.5", 272_001, 1000, cache_read_tokens=1)
    assert at.total == Decimal("1.39")  # 272000 * 5/M + 1000 * 30/M
    assert above.input == Decimal("2.720001")  # 272000 * 10/M + 1 * 1/M: the higher rate for every token
    assert above.output == Decimal("0.045")


# --- bundled table -------------------------------------------------------------------------------------

#: OpenAI's published list prices (standard tier), USD per 1M tokens: input, cached input, output. Kept here
#: independently of the generated table, so a regenerated table that drifts from them fails.
OPENAI_LIST_PRICES = {
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    "o3": ("2.00", "0.50", "8.00"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "gpt-5": ("1.25", "0.125", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "gpt-5-nano": ("0.05", "0.005", "0.40"),
    "gpt-5.5": ("5.00", "0.50", "30.00"),
    "text-embedding-3-small": ("0.02", None, None),
    "text-embedding-3-large": ("0.13", None, None),
}


@pytest.mark.parametrize("model", sorted(OPENAI_LIST_PRICES))
def test_bundled_prices_match_openai_list(table: PriceTable, model: str) -> None:
    inp, cached, out = (None if v is None else Decimal(v) for v in OPENAI_LIST_PRICES[model])
    assert inp is not None
    # no cached price: cached input is billed at the input price; no output price: output is free
    expected = (f"{BUNDLED}openai/{model}", inp, inp if cached is None else cached, out or 0)
    assert prices_via_cost(table, model) == expected


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        ("gpt-4-turbo", "10", "30"),
        ("gpt-4", "30", "60"),
        ("gpt-3.5-turbo", "0.5", "1.5"),
        ("o1", "15", "60"),
        ("o1-mini", "1.1", "4.4"),
        ("o3-mini", "1.1", "4.4"),
        ("gpt-5.4", "2.5", "15"),
        ("text-embedding-ada-002", "0.1", None),
        ("davinci-002", "2", "2"),
        ("babbage-002", "0.4", "0.4"),
        ("gpt-4o-2024-05-13", "5", "15"),
    ],
)
def test_bundled_covers_legacy_and_new_models(
    table: PriceTable, model: str, inp: str, out: str | None
) -> None:
    source, p_in, _, p_out = prices_via_cost(table, model)
    assert (source, p_in, p_out) == (f"{BUNDLED}openai/{model}", Decimal(inp), Decimal(out or 0))


def test_bundled_file_schema() -> None:
    doc = json.loads(BUNDLED_FILE.read_text())
    assert (doc["version"], doc["currency"], doc["unit"]) == ("2026-11-01", "USD", "per_million_tokens")
    assert len(doc["models"]) > 300
    providers = {key.split("/", 1)[0] for key in doc["models"]}
    # gen_ai.provider.name values of the GenAI conventions
    assert providers == {
        "openai", "azure.ai.openai", "anthropic", "gcp.gemini", "gcp.vertex_ai", "mistral_ai", "deepseek",
        "x_ai", "aws.bedrock",
    }  # fmt: skip
    for key, entry in doc["models"].items():
        assert not key.split("/", 1)[1].startswith("ft:"), key
        for field in ("input", "cached_input", "cache_write", "output"):
            assert field not in entry or isinstance(entry[field], str), (key, field)  # strings: Decimal-exact


def test_bundled_is_a_cached_singleton() -> None:
    assert PriceTable.bundled() is PriceTable.bundled()
    assert PriceTable.bundled().version == PriceTable.load().version == "2026-11-01"


def test_generated_file_is_up_to_date() -> None:
    pytest.importorskip("genai_prices")
    script = Path(__file__).parents[1] / "tools" / "build_prices.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


# --- providers beyond OpenAI ---------------------------------------------------------------------------

#: Published list prices, USD per 1M tokens: (input, cache read, 5-minute cache write, output); None where
#: the provider publishes none (cache reads and writes then bill at the input price), "?" where it is not
#: checked here (Mistral's later cache-read prices). Facts, written here
#: independently of genai-prices and of the generated table, so a regenerated table that drifts fails.
#: Anthropic, platform.claude.com/docs/en/about-claude/pricing (standard tier, prompts up to 200k tokens):
#: each figure as published at the model's launch (Haiku 3.5: 2024-11, Opus 4.1: 2025-08, Sonnet 4.5:
#: 2025-09-29, Haiku 4.5: 2025-10, Opus 4.5: 2025-11, Sonnet 5: 2026-06) and still listed for the table's
#: date, 2026-11-01. Cache writes are the 5-minute ones (1.25x input), cache reads 0.1x input.
ANTHROPIC_LIST_PRICES = {
    "claude-sonnet-4-5": ("3", "0.30", "3.75", "15"),
    "claude-haiku-4-5": ("1", "0.10", "1.25", "5"),
    "claude-opus-4-1": ("15", "1.50", "18.75", "75"),
    "claude-opus-4-5": ("5", "0.50", "6.25", "25"),
    "claude-sonnet-5": ("2", "0.20", "2.50", "10"),
    "claude-3-5-haiku-20241022": ("0.80", "0.08", "1", "4"),
}
#: Google Gemini API, ai.google.dev/gemini-api/docs/pricing, paid tier, prompts up to 200k (1.5: 128k)
#: tokens, text: Gemini 2.5 Pro as listed since its context-caching price cut of 2025 (cache $0.125),
#: 2.0 Flash-Lite since 2025-02, 1.5 Pro since its 2024-10 price cut, gemini-embedding-001 since 2025-07.
GEMINI_LIST_PRICES = {
    "gemini-2.5-pro": ("1.25", "0.125", None, "10"),
    "gemini-2.0-flash-lite": ("0.075", None, None, "0.30"),
    "gemini-1.5-pro": ("1.25", None, None, "5"),
    "gemini-embedding-001": ("0.15", None, None, None),
}
#: Mistral AI, mistral.ai/pricing (La Plateforme), as listed in 2025 for these dated model versions.
MISTRAL_LIST_PRICES = {
    "mistral-large-2411": ("2", None, None, "6"),
    "mistral-medium-2505": ("0.40", "?", None, "2"),
    "mistral-small-2506": ("0.10", None, None, "0.30"),
    "codestral-2501": ("0.30", None, None, "0.90"),
    "ministral-8b-2410": ("0.10", None, None, "0.10"),
    "mistral-nemo": ("0.15", None, None, "0.15"),
    "pixtral-large-2411": ("2", None, None, "6"),
}
#: xAI, docs.x.ai/docs/models, as listed from each model's launch in 2025 (grok-code-fast-1: 2025-08).
XAI_LIST_PRICES = {
    "grok-3": ("3", "0.75", None, "15"),
    "grok-3-mini": ("0.30", "0.075", None, "0.50"),
    "grok-code-fast-1": ("0.20", "0.02", None, "1.50"),
}
#: AWS Bedrock on-demand, aws.amazon.com/bedrock/pricing (us-east-1 in-region; geographic cross-region
#: profiles bill the same): Claude 3 Haiku since 2024-03, Claude 3.5 Haiku since its 2024-12 cut, Nova
#: since 2024-12, Llama 3.3 70B since 2024-12, Titan Text Embeddings V2 since 2024-04; Claude Sonnet 4.5
#: since 2025-10, when AWS priced in-region and geographic profiles 10 % above global cross-region inference.
BEDROCK_LIST_PRICES = {
    "anthropic.claude-3-haiku-20240307-v1:0": ("0.25", None, None, "1.25"),
    "anthropic.claude-3-5-haiku-20241022-v1:0": ("0.80", "0.08", "1", "4"),
    "amazon.nova-micro-v1:0": ("0.035", "0.00875", None, "0.14"),
    "amazon.nova-lite-v1:0": ("0.06", "0.015", None, "0.24"),
    "amazon.nova-pro-v1:0": ("0.80", "0.20", None, "3.20"),
    "meta.llama3-3-70b-instruct-v1:0": ("0.72", None, None, "0.72"),
    "amazon.titan-embed-text-v2:0": ("0.02", None, None, None),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": ("3.30", "0.33", "4.125", "16.50"),
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0": ("3", "0.30", "3.75", "15"),
}
LIST_PRICES = [
    *(("anthropic", m, p) for m, p in ANTHROPIC_LIST_PRICES.items()),
    *(("gcp.gemini", m, p) for m, p in GEMINI_LIST_PRICES.items()),
    *(("mistral_ai", m, p) for m, p in MISTRAL_LIST_PRICES.items()),
    *(("x_ai", m, p) for m, p in XAI_LIST_PRICES.items()),
    *(("aws.bedrock", m, p) for m, p in BEDROCK_LIST_PRICES.items()),
]


def billed_per_million(table: PriceTable, provider: str, model: str) -> tuple[Decimal, ...]:
    """(input, cache read, cache write, output) in USD per 1M tokens as cost() bills them, below any tier."""
    n = 100_000
    plain = table.cost(provider, model, n, n)
    read = table.cost(provider, model, n, 0, cache_read_tokens=n)
    write = table.cost(provider, model, n, 0, cache_write_tokens=n)
    assert plain.status == "priced", (provider, model)
    amounts = (plain.input, read.input, write.input, plain.output)
    assert all(a is not None for a in amounts)
    return tuple(a * 10 for a in amounts)  # type: ignore[operator]


@pytest.mark.parametrize(("provider", "model", "prices"), LIST_PRICES, ids=lambda v: str(v)[:40])
def test_bundled_prices_match_list_prices(
    table: PriceTable, provider: str, model: str, prices: tuple[str | None, ...]
) -> None:
    inp, read, write, out = (None if v in (None, "?") else Decimal(v) for v in prices)
    assert inp is not None
    expected = [inp, inp if read is None else read, inp if write is None else write, out or 0]
    got = list(billed_per_million(table, provider, model))
    for i, v in enumerate(prices):
        if v == "?":
            got[i] = expected[i] = None
    assert got == expected


def test_anthropic_cache_reads_and_writes(table: PriceTable) -> None:
    # Anthropic reports input_tokens without the cache; the conventions' input includes it:
    # 114 uncached + 1000 read from the cache + 256 written to it = 1370 input tokens
    c = table.cost("anthropic", "claude-sonnet-4-5-20250929", 1370, 155, 1000, 256)
    # 114 * 3/M + 1000 * 0.30/M + 256 * 3.75/M = 0.000342 + 0.0003 + 0.00096; 155 * 15/M = 0.002325
    assert (c.input, c.output, c.total) == (Decimal("0.001602"), Decimal("0.002325"), Decimal("0.003927"))
    assert c.source == BUNDLED + "anthropic/claude-sonnet-4-5"
    # the classic mistakes: cache tokens billed at the input price, or counted on top of the input
    assert c.total != table.cost("anthropic", "claude-sonnet-4-5", 1370, 155).total
    assert c.total != table.cost("anthropic", "claude-sonnet-4-5", 1370 + 1256, 155, 1000, 256).total


def test_anthropic_long_context_tier(table: PriceTable) -> None:
    # Sonnet 4.5 above 200k input tokens (cache included): $6 / $0.60 / $7.50 / $22.50 per 1M, every token
    at = table.cost("anthropic", "claude-sonnet-4-5", 200_000, 1000)
    assert at.total == Decimal("0.615")  # 200000 * 3/M + 1000 * 15/M
    above = table.cost("anthropic", "claude-sonnet-4-5", 200_001, 1000, 100_000, 1)
    # 100000 uncached * 6/M + 100000 read * 0.6/M + 1 written * 7.5/M; 1000 * 22.5/M
    assert (above.input, above.output) == (Decimal("0.6600075"), Decimal("0.0225"))
    # Haiku 4.5 has no long-context tier
    assert table.cost("anthropic", "claude-haiku-4-5", 1_000_000, 0).total == Decimal("1")


def test_gemini_cached_and_long_context(table: PriceTable) -> None:
    c = table.cost("gcp.gemini", "gemini-2.5-pro", 10_000, 2000, cache_read_tokens=8000)
    assert (c.input, c.output) == (Decimal("0.0035"), Decimal("0.02"))  # 2000*1.25 + 8000*0.125; 2000*10
    above = table.cost("gcp.gemini", "gemini-2.5-pro", 300_000, 2000, cache_read_tokens=100_000)
    assert (above.input, above.output) == (Decimal("0.525"), Decimal("0.03"))  # 200000*2.5 + 100000*0.25
    # Vertex AI bills Gemini as the Gemini API does: the gcp.gemini entry prices it
    assert table.cost("gcp.vertex_ai", "gemini-2.5-pro", 10_000, 2000, 8000) == c


def test_xai_cached_tokens(table: PriceTable) -> None:
    c = table.cost("x_ai", "grok-3", 10_000, 500, cache_read_tokens=6000)
    assert (c.input, c.output) == (Decimal("0.0165"), Decimal("0.0075"))  # 4000*3 + 6000*0.75; 500*15


def test_bedrock_global_is_cheaper_than_regional(table: PriceTable) -> None:
    usage = (10_000, 1000, 4000, 2000)  # input (cache included), output, cache read, cache write
    regional = table.cost("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", *usage)
    geo = table.cost("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", *usage)
    global_ = table.cost("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", *usage)
    # 4000*3 + 4000*0.3 + 2000*3.75 = 20700 per M; 1000 * 15 = 15000 per M; regional 10 % more
    assert (global_.input, global_.output) == (Decimal("0.0207"), Decimal("0.015"))
    assert (regional.input, regional.output) == (Decimal("0.02277"), Decimal("0.0165"))
    assert geo == regional


def test_deepseek_time_of_day_prices_stay_unpriced(table: PriceTable) -> None:
    # DeepSeek bills deepseek-chat / deepseek-reasoner / V4 at peak and off-peak rates by the time of day
    # (UTC windows, weekends): the count of tokens alone cannot price them, so they are unpriced, never 0
    for model in ("deepseek-chat", "deepseek-reasoner", "deepseek-v4-pro", "deepseek-v4-flash"):
        assert table.cost("deepseek", model, 1000, 1000) == Cost("unpriced", None, None, None, None), model
    # flat-priced DeepSeek models are priced
    c = table.cost("deepseek", "deepseek/deepseek-v3.2-exp", 1_000_000, 1_000_000)
    assert (c.status, c.source) == ("priced", BUNDLED + "deepseek/deepseek-v3.2-exp")
    user = PriceTable.load(
        {"deepseek/deepseek-chat": {"input": "0.28", "cached_input": "0.028", "output": "0.42"}}
    )
    assert user.cost("deepseek", "deepseek-chat", 1_000_000, 0).total == Decimal("0.28")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("gcp.gemini", "gemini-2.5-flash"),  # audio input has its own price: text tokens alone can't price it
        ("gcp.gemini", "gemini-2.5-flash-image"),  # image output tokens
        ("gcp.gemini", "gemini-2.5-flash-preview-tts"),
        ("mistral_ai", "voxtral-small-latest"),  # audio billed per hour
        ("mistral_ai", "mistral-ocr-latest"),  # billed per page
        ("x_ai", "grok-voice-latest"),
        ("openai", "gpt-4o-audio-preview"),  # text prices only in the source: audio would be mispriced
        ("openai", "gpt-4o-mini-audio-preview"),
        ("anthropic", "claude-nonexistent-9"),
        ("anthropic", "gpt-4o"),  # no provider borrows another's prices
        ("mistral_ai", "claude-sonnet-4-5"),
        ("gcp.gemini", "claude-sonnet-4-5"),  # Claude is on Vertex AI, not the Gemini API
        ("aws.bedrock", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"),
        ("aws.bedrock", "global.amazon.nova-micro-v1:0"),  # no global price listed: not the regional one
    ],
)
def test_new_providers_unknown_or_unpriceable_is_unpriced(
    table: PriceTable, provider: str, model: str
) -> None:
    assert table.cost(provider, model, 100, 100) == Cost("unpriced", None, None, None, None)


@pytest.mark.parametrize(
    ("provider", "model", "entry"),
    [
        # Anthropic: dated ids, aliases, routing prefixes
        ("anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
        ("anthropic", "anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
        ("anthropic", "Claude-Haiku-4-5-20251001", "anthropic/claude-haiku-4-5"),
        ("anthropic", "claude-opus-4-1-20250805", "anthropic/claude-opus-4-1"),
        ("anthropic", "claude-3-5-haiku-20241022", "anthropic/claude-3-5-haiku-latest"),
        ("anthropic", "claude-3-7-sonnet-20250219", "anthropic/claude-3-7-sonnet-latest"),
        ("anthropic", "claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-0"),
        ("anthropic", "claude-opus-4-5-20251101", "anthropic/claude-opus-4-5"),
        # Vertex AI: Claude as "model@date", resource paths; Gemini through the gcp.gemini entries
        ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "gcp.vertex_ai/claude-sonnet-4-5"),
        ("gcp.vertex_ai", "publishers/anthropic/models/claude-opus-4-1@20250805",
         "gcp.vertex_ai/claude-4-opus"),
        ("gcp.vertex_ai", "gemini-2.5-pro", "gcp.gemini/gemini-2.5-pro"),
        ("gcp.gen_ai", "claude-haiku-4-5@20251001", "gcp.vertex_ai/claude-haiku-4-5"),
        ("gcp.gen_ai", "gemini-2.5-pro", "gcp.gemini/gemini-2.5-pro"),
        # Gemini API: "models/..." resource names, version suffixes
        ("gcp.gemini", "models/gemini-2.5-pro", "gcp.gemini/gemini-2.5-pro"),
        ("gcp.gemini", "gemini-1.5-pro-002", "gcp.gemini/gemini-1.5-pro"),
        # older gen_ai.system spellings of the provider
        ("gemini", "gemini-2.5-pro", "gcp.gemini/gemini-2.5-pro"),
        ("vertex_ai", "claude-sonnet-4-5@20250929", "gcp.vertex_ai/claude-sonnet-4-5"),
        ("xai", "grok-3", "x_ai/grok-3"),
        # Mistral, xAI, DeepSeek
        ("mistral_ai", "mistral-large-latest", "mistral_ai/mistral-large"),
        ("mistral_ai", "mistral/mistral-large-2411", "mistral_ai/mistral-large"),
        ("mistral_ai", "open-mistral-nemo", "mistral_ai/mistral-nemo"),
        ("x_ai", "grok-4", "x_ai/grok-4-0709"),
        ("x_ai", "xai/grok-3-mini-latest", "x_ai/grok-3-mini"),
        ("deepseek", "deepseek-v3.2", "deepseek/deepseek-v3.2"),
        # Bedrock: model ids, geographic cross-region profiles, global profiles, ARNs, routing prefix
        ("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0",
         "aws.bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
         "aws.bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("aws.bedrock", "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
         "aws.bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("aws.bedrock", "apac.amazon.nova-pro-v1:0", "aws.bedrock/amazon.nova-pro-v1:0"),
        ("aws.bedrock", "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
         "aws.bedrock/anthropic.claude-3-haiku-20240307-v1:0"),
        ("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
         "aws.bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("aws.bedrock", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
         "aws.bedrock/anthropic.claude-3-haiku-20240307-v1:0"),
        ("aws.bedrock", "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0",
         "aws.bedrock/amazon.nova-lite-v1:0"),
        ("aws.bedrock", "bedrock/meta.llama3-3-70b-instruct-v1:0",
         "aws.bedrock/meta.llama3-3-70b-instruct-v1:0"),
        ("aws.bedrock", "claude-sonnet-4-5-20250929",
         "aws.bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"),
        # Azure OpenAI: OpenAI's prices (genai-prices lists Azure's Global prices equal to them)
        ("azure.ai.openai", "o3-2025-04-16", "openai/o3"),
        ("az.ai.openai", "gpt-4o-mini", "openai/gpt-4o-mini"),
    ],
)  # fmt: skip
def test_name_forms_of_other_providers(table: PriceTable, provider: str, model: str, entry: str) -> None:
    c = table.cost(provider, model, 10, 10)
    assert (c.status, c.source) == ("priced", BUNDLED + entry)


def test_tracked_anthropic_call_is_priced(
    telemetry: Any, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call reported through track() gets the bundled Anthropic price, exactly, on its span."""
    monkeypatch.setattr(manual, "_fallback", telemetry)  # track() bound to the test's telemetry
    monkeypatch.setattr(pipeline, "_active", None)
    with llm_otel.track("chat", provider="anthropic", model="claude-sonnet-4-5") as call:
        call.set_response(model="claude-sonnet-4-5-20250929", id="msg_01", finish_reasons=["end_turn"])
        call.set_usage(input_tokens=1370, output_tokens=155, cache_read_tokens=1000, cache_write_tokens=256)
    attrs = spans.one().attributes
    assert attrs[sc.PRICING_STATUS] == "priced"
    assert attrs[sc.PRICING_SOURCE] == BUNDLED + "anthropic/claude-sonnet-4-5"
    # the same figures as test_anthropic_cache_reads_and_writes: $0.001602 in, $0.002325 out
    assert (attrs[sc.USAGE_COST], attrs[sc.COST_INPUT], attrs[sc.COST_OUTPUT]) == (
        0.003927,
        0.001602,
        0.002325,
    )
    assert Decimal(repr(attrs[sc.USAGE_COST])) == Decimal("0.003927")


# --- model names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "entry"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
        ("openai", "o3-2025-04-16", "openai/o3"),
        ("openai", "gpt-4.1-2025-04-14", "openai/gpt-4.1"),
        ("openai", "gpt-4.1-mini-2025-04-14", "openai/gpt-4.1-mini"),
        ("openai", "gpt-5-2025-08-07", "openai/gpt-5"),
        ("openai", "gpt-5.2-20251211", "openai/gpt-5.2"),  # compact date
        ("openai", "gpt-4o-2024-08-06", "openai/gpt-4o"),
        ("openai", "gpt-4o-2024-05-13", "openai/gpt-4o-2024-05-13"),  # snapshot with its own price
        ("openai", "openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        ("openai", "  OpenAI/GPT-4o-Mini ", "openai/gpt-4o-mini"),
        ("OpenAI", "gpt-4o", "openai/gpt-4o"),
        ("openai", "gpt-4-0613", "openai/gpt-4"),  # bundled alias
        ("openai", "gpt-5-chat-latest", "openai/gpt-5"),
        ("openai", "gpt-5-5", "openai/gpt-5.5"),
        ("azure.ai.openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),  # Azure reports real names
        ("azure.ai.openai", "gpt-35-turbo", "openai/gpt-3.5-turbo"),  # Azure's spelling
    ],
)
def test_name_normalisation(table: PriceTable, provider: str, model: str, entry: str) -> None:
    c = table.cost(provider, model, 10, 10)
    assert (c.status, c.source) == ("priced", BUNDLED + entry)


def test_date_fallback_prices_like_the_family(table: PriceTable) -> None:
    assert table.cost("openai", "o3-2025-04-16", 1000, 1000) == table.cost("openai", "o3", 1000, 1000)
    assert table.cost("openai", "gpt-4o-2024-05-13", 1_000_000, 0).total == Decimal("5")
    assert table.cost("openai", "gpt-4o-2024-11-20", 1_000_000, 0).total == Decimal("2.5")


def test_azure_deployment_alias() -> None:
    t = PriceTable.load(model_aliases={"Prod-Chat": "gpt-4o-mini", "emb": "openai/text-embedding-3-large"})
    c = t.cost("azure.ai.openai", "prod-chat", 1370, 155, cache_read_tokens=1280)
    assert (c.total, c.source) == (Decimal("0.0002025"), BUNDLED + "openai/gpt-4o-mini")
    assert t.cost("azure.ai.openai", "emb", 1_000_000, None).total == Decimal("0.13")
    assert t.cost("azure.ai.openai", "unknown-deployment", 10, 10).status == "unpriced"
    assert PriceTable.bundled().cost("azure.ai.openai", "prod-chat", 10, 10).status == "unpriced"


def test_azure_specific_user_price_beats_openai_price() -> None:
    t = PriceTable.load({"azure.ai.openai/gpt-4o": {"input": "3", "output": "11"}})
    assert t.cost("azure.ai.openai", "gpt-4o", 1_000_000, 0).total == Decimal("3")
    assert t.cost("openai", "gpt-4o", 1_000_000, 0).total == Decimal("2.5")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "my-new-model"),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123"),  # fine-tuned: unpriced unless user-priced
        ("openai", "llama3.2"),
        ("openai", None),
        ("openai", ""),
        ("groq", "gpt-4o"),  # an unknown provider never borrows OpenAI's prices
        ("", "gpt-4o"),
    ],
)
def test_unknown_is_unpriced_never_zero(table: PriceTable, provider: str, model: str | None) -> None:
    c = table.cost(provider, model, 100, 100)
    assert c == Cost("unpriced", None, None, None, None)


def test_unknown_usage_is_unpriced(table: PriceTable) -> None:
    assert table.cost("openai", "gpt-4o", None, None) == Cost("unpriced", None, None, None, None)
    # a local model costs 0 whatever the usage (a legacy /api/embeddings call reports none)
    assert table.cost("ollama", "llama3.2", None, None).status == "local"
    # one side known: the other counts as 0
    assert table.cost("openai", "gpt-4o", 1_000_000, None).total == Decimal("2.5")


def test_ollama_is_local_zero(table: PriceTable) -> None:
    for model in ("llama3.2", "llama3.2:latest", "qwen3:0.6b", None):
        c = table.cost("ollama", model, 50, 20)
        assert c == Cost("local", Decimal("0"), Decimal("0"), Decimal("0"), "local")


def test_local_providers_are_configurable() -> None:
    t = PriceTable.load(local_providers=("ollama", "vLLM"))
    assert t.cost("vllm", "my-model", 10, 10).status == "local"
    assert PriceTable.load(local_providers=()).cost("ollama", "llama3.2", 10, 10).status == "unpriced"
    assert PriceTable.load(local_providers="lmstudio").cost("lmstudio", "x", 1, 1).status == "local"


# --- user prices -----------------------------------------------------------------------------------------


def test_dict_override_wins_and_reports_source() -> None:
    t = PriceTable.load({"gpt-4o-mini": {"input": "1", "output": "2"}, "openai/x": {"input": "0.5"}})
    c = t.cost("openai", "gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000, cache_read_tokens=500_000)
    assert (c.total, c.source) == (Decimal("3"), "user:openai/gpt-4o-mini")  # no cached price: input rate
    assert t.cost("openai", "x", 2_000_000, 0).source == "user:openai/x"
    assert t.cost("openai", "gpt-4o", 1_000_000, 0).source == BUNDLED + "openai/gpt-4o"  # rest untouched
    assert PriceTable.bundled().cost("openai", "gpt-4o-mini", 1_000_000, 0).total == Decimal("0.15")


def test_document_format_dict() -> None:
    t = PriceTable.load(
        {"version": "mine", "currency": "USD", "unit": "per_million_tokens", "models": {"a": {"input": 1}}}
    )
    assert t.cost("openai", "a", 1_000_000, 0).total == Decimal("1")
    assert t.version == "2026-11-01"  # the bundled table's version; sources tell user entries apart


def test_json_file_override(tmp_path: Path) -> None:
    f = tmp_path / "my-prices.json"
    f.write_text(
        json.dumps({"models": {"openai/my-model": {"input": "0.1", "output": 0.3, "aliases": ["mm"]}}})
    )
    t = PriceTable.load(f)
    c = t.cost("openai", "my-model", 1000, 1000)
    assert (c.total, c.source) == (Decimal("0.0004"), f"override:{f}:openai/my-model")
    assert t.cost("openai", "MM", 1000, 1000).source == f"override:{f}:openai/my-model"
    assert PriceTable.load(str(f)).cost("openai", "my-model", 1, 1).source == f"override:{f}:openai/my-model"


def test_toml_file_override(tmp_path: Path) -> None:
    pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    f = tmp_path / "my-prices.toml"
    f.write_text(
        'version = "2026-12-01"\n'
        "[models.gpt-4o]\n"
        'input = "2.0"\ncached_input = 1.0\noutput = 9.999\n'
        '[models."ollama/llama3.2"]\n'
        'input = "0.01"\noutput = "0.02"\n'
    )
    t = PriceTable.load(f)
    c = t.cost("openai", "gpt-4o-2024-08-06", 1_000_000, 1_000_000, cache_read_tokens=1_000_000)
    assert (c.input, c.output, c.source) == (Decimal("1"), Decimal("9.999"), f"override:{f}:openai/gpt-4o")
    o = t.cost("ollama", "llama3.2:latest", 1_000_000, 1_000_000)
    assert (o.status, o.total, o.source) == ("priced", Decimal("0.03"), f"override:{f}:ollama/llama3.2")
    assert t.cost("ollama", "qwen3", 10, 10).status == "local"


def test_user_price_for_local_provider() -> None:
    t = PriceTable.load({"ollama/*": {"input": "0.02", "output": "0.02"}, "ollama/big-model": {"input": "1"}})
    c = t.cost("ollama", "qwen3:0.6b", 1_000_000, 1_000_000)
    assert (c.status, c.total, c.source) == ("priced", Decimal("0.04"), "user:ollama/*")
    assert t.cost("ollama", None, 1_000_000, 0).source == "user:ollama/*"
    assert t.cost("ollama", "big-model", 1_000_000, 5).total == Decimal("1")  # exact beats wildcard
    assert t.cost("openai", "qwen3:0.6b", 10, 10).status == "unpriced"  # provider-scoped


def test_fine_tuned_priced_by_user() -> None:
    ft = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
    exact = PriceTable.load({ft: {"input": "0.3", "output": "1.2"}})
    assert exact.cost("openai", ft, 1_000_000, 0).source == f"user:openai/{ft}"
    wild = PriceTable.load({"ft:gpt-4o-mini*": {"input": "0.3", "output": "1.2"}, "*": {"input": "99"}})
    c = wild.cost("openai", ft, 1_000_000, 1_000_000)
    assert (c.total, c.source) == (Decimal("1.5"), "user:openai/ft:gpt-4o-mini*")  # longest prefix wins
    assert wild.cost("openai", "something-else", 1_000_000, 0).total == Decimal("99")
    assert wild.cost("openai", "gpt-4o", 1_000_000, 0).total == Decimal("2.5")  # exact bundled beats wildcard


# --- configuration errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices", "needle"),
    [
        ({"openai/x": {"input": "-0.1"}}, "must not be negative"),
        ({"openai/x": {"input": "abc"}}, "not a number"),
        ({"openai/x": {"input": "NaN"}}, "finite"),
        ({"openai/x": {"input": "1E+9"}}, "must be below 1000000000"),
        ({"openai/x": {"input": "1E-31"}}, "at most 30 decimal places"),
        ({"openai/x": {"input": True}}, "must be a number"),
        ({"openai/x": {"input": None}}, "must be a number"),
        ({"openai/x": {"inptu": "1"}}, "unknown field(s) ['inptu']"),
        ({"openai/x": {"output": "1"}}, "needs an 'input' price"),
        ({"openai/x": "1.0"}, "must be a table"),
        ({"openai/x": {"input": "1", "tiers": [{"above_input_tokens": -1}]}}, "non-negative integer"),
        (
            {"openai/x": {"input": "1", "tiers": [{"above_input_tokens": 5, "foo": 1}]}},
            "unknown field(s) ['foo']",
        ),
        ({"openai/x": {"input": "1", "aliases": "y"}}, "list of model names"),
        ({"gpt-x": {"input": "1"}, "openai/GPT-X": {"input": "2"}}, "name the same model"),
        ({"openai/a*b": {"input": "1"}}, "trailing '*'"),
        ({"models": {}, "extra": 1}, "unknown top-level field(s) ['extra']"),
        ({"models": {}, "unit": "per_token"}, "unit must be 'per_million_tokens'"),
        ({"models": {}, "currency": "EUR"}, "currency must be 'USD'"),
    ],
)
def test_bad_prices_raise_config_error(prices: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        PriceTable.load(prices)
    assert info.value.setting == "prices"
    assert needle in str(info.value)
    assert "invalid prices=" in str(info.value)


def test_bad_entry_is_named(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{"openai/good": {"input": "1"}, "openai/bad": {"input": "-3"}}')
    with pytest.raises(ConfigError) as info:
        PriceTable.load(f)
    msg = str(info.value)
    assert str(f) in msg and "'openai/bad'" in msg and "'-3'" in msg


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("p.json", '{"openai/x": {"input": "1",}}', "malformed JSON"),
        ("p.json", '{"openai/x": {"input": "1"}, "openai/x": {"input": "2"}}', "duplicate key"),
        ("p.json", '["not", "a", "table"]', "expected a table/object"),
        ("p.json", '{"openai/x": {"input": NaN}}', "finite"),
        ("p.toml", '[models."openai/x"]\ninput = \n', "malformed TOML"),
        ("p.toml", '[models."openai/x"]\ninput = -1\n', "must not be negative"),
        (
            "p.toml",
            '[models."openai/x"]\ninput = "1"\ncahced_input = "1"\n',
            "unknown field(s) ['cahced_input']",
        ),
        ("p.yaml", "openai/x: 1", "must end in .json or .toml"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, name: str, text: str, needle: str) -> None:
    if name.endswith(".toml"):
        pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        PriceTable.load(f)
    assert info.value.setting == "prices" and info.value.value == str(f)
    assert needle in str(info.value)


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="price file not found") as info:
        PriceTable.load(missing)
    assert info.value.setting == "prices" and info.value.value == str(missing)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        PriceTable.load(tmp_path / "dir.json")


def test_bad_model_aliases() -> None:
    with pytest.raises(ConfigError) as info:
        PriceTable.load(model_aliases={"dep": ""})
    assert info.value.setting == "model_aliases"


# --- exactness -------------------------------------------------------------------------------------------

#: Independent copy of the prices used below (USD per 1M tokens): input, cached input, output.
_EXPECT = {
    "gpt-4o-mini-2024-07-18": (Fraction("0.15"), Fraction("0.075"), Fraction("0.60")),
    "gpt-4o": (Fraction("2.50"), Fraction("1.25"), Fraction("10")),
    "gpt-5-nano": (Fraction("0.05"), Fraction("0.005"), Fraction("0.40")),
    "gpt-4.1-mini-2025-04-14": (Fraction("0.40"), Fraction("0.10"), Fraction("1.60")),
    "o4-mini": (Fraction("1.10"), Fraction("0.275"), Fraction("4.40")),
    "text-embedding-3-small": (Fraction("0.02"), Fraction("0.02"), Fraction(0)),
}


def _calls(n: int) -> list[tuple[str, int, int, int, int]]:
    rng = random.Random(20261101)
    out = []
    for _ in range(n):
        model = rng.choice(sorted(_EXPECT))
        inp = rng.randrange(0, 200_000)
        cached = rng.randrange(0, inp + 1) // 128 * 128
        output = 0 if model.startswith("text-embedding") else rng.randrange(0, 30_000)
        reasoning = rng.randrange(0, output + 1)
        out.append((model, inp, output, cached, reasoning))
    return out


def test_sum_of_10000_calls_is_exact(table: PriceTable) -> None:
    total = Decimal(0)
    expected = Fraction(0)
    for model, inp, output, cached, reasoning in _calls(10_000):
        c = table.cost("openai", model, inp, output, cache_read_tokens=cached, reasoning_tokens=reasoning)
        assert c.total is not None and c.input is not None and c.output is not None
        assert c.total == c.input + c.output
        total += c.total
        p_in, p_cached, p_out = _EXPECT[model]
        expected += ((inp - cached) * p_in + cached * p_cached + output * p_out) / 1_000_000
    assert Fraction(total) == expected
    assert total == Decimal(expected.numerator) / Decimal(expected.denominator)
    assert Decimal(10) < total < Decimal(1000)  # sanity: a realistic amount, not all zeros


def test_totals_round_trip_through_float(table: PriceTable) -> None:
    for model, inp, output, cached, reasoning in _calls(2_000):
        c = table.cost("openai", model, inp, output, cache_read_tokens=cached, reasoning_tokens=reasoning)
        assert c.total is not None
        assert Decimal(repr(float(c.total))) == c.total
    rng = random.Random(7)
    edge = [Decimal("999.999999999999"), Decimal("0.000000000001"), Decimal("123.456789012345")]
    for d in edge + [Decimal(rng.randrange(10**15)).scaleb(-12) for _ in range(20_000)]:
        assert Decimal(repr(float(d))) == d, d


def test_result_ignores_the_callers_decimal_context(table: PriceTable) -> None:
    # gpt-5.6-cyber's cache-write price (15.625/M) has 5 significant digits: a 3-digit context would round it
    usage = (1370, 155, 256, 1000, 0)
    expected = table.cost("openai", "gpt-5.6-cyber", *usage)
    expected_floats = table.cost_floats("openai", "gpt-5.6-cyber", *usage)
    assert expected.input == Decimal("0.01737")  # 114 * 12.5/M + 256 * 1.25/M + 1000 * 15.625/M
    for call, trap in itertools.product(("cost", "cost_floats"), (False, True)):
        fresh = PriceTable.load()
        with localcontext() as ctx:  # the first call resolves and compiles the entry under this context
            ctx.prec = 3
            ctx.rounding = "ROUND_FLOOR"
            ctx.traps[Inexact] = ctx.traps[Rounded] = trap
            getattr(fresh, call)("openai", "gpt-5.6-cyber", *usage)
            assert fresh.cost("openai", "gpt-5.6-cyber", *usage) == expected
            assert fresh.cost_floats("openai", "gpt-5.6-cyber", *usage) == expected_floats
        assert fresh.cost("openai", "gpt-5.6-cyber", *usage) == expected  # and the memoised entry is right
        assert fresh.cost_floats("openai", "gpt-5.6-cyber", *usage) == expected_floats


# --- one formula: cost_floats() == float(cost()) -----------------------------------------------------------

Usage = tuple[int | None, int | None, int | None, int | None, int | None]


def _usages() -> list[Usage]:
    """(input, output, cache read, cache write, reasoning) counts: zero, one, small, tier edges, 10**7."""
    out: list[Usage] = [
        (None, None, None, None, None),  # no usage: unpriced
        (None, 155, None, None, 100),
        (1370, None, 1280, None, None),
        (100, -5, 500, 0, 0),  # inconsistent: more cached than input, negative output
        (10, 10, 0, 0, 50),  # more reasoning than output
        (-3, 4, -1, -1, -1),
    ]
    for i in (0, 1, 17, 1370, 272_000, 272_001, 10**7):
        for cr in sorted({0, min(1, i), i // 3, i}):
            for cw in sorted({0, min(1, i - cr), (i - cr) // 2}):
                for o in (0, 1, 155, 10**7):
                    for rt in sorted({0, min(1, o), o // 2, o}):
                        out.append((i, o, cr, cw, rt))
    return out


def _assert_same(table: PriceTable, provider: str, model: str, usages: list[Usage]) -> None:
    for usage in usages:
        exact = table.cost(provider, model, *usage)
        status, source, total, c_in, c_out = table.cost_floats(provider, model, *usage)
        assert (status, source) == (exact.status, exact.source), (model, usage)
        # exactly equal, no tolerance: both are the correctly rounded double of the same whole number of
        # picodollars (int / 10**12 and float(Decimal) both round correctly in CPython)
        expected = tuple(None if d is None else float(d) for d in (exact.total, exact.input, exact.output))
        assert (total, c_in, c_out) == expected, (model, usage, exact)


def test_float_path_equals_decimal_path_for_every_bundled_entry(table: PriceTable) -> None:
    entries = json.loads(BUNDLED_FILE.read_text())["models"]
    # both float branches run: entries without tiers (formula inlined) and with tiers (Priced.pico called)
    kinds = [set(e) for e in entries.values()]
    assert any("tiers" in k for k in kinds) and any("tiers" not in k for k in kinds)
    assert any("cache_write" in k for k in kinds) and any("output" not in k for k in kinds)
    usages = _usages()
    assert len(usages) > 500
    for key in entries:
        provider, model = key.split("/", 1)
        assert table.cost(provider, model, 1, 1).source == BUNDLED + key  # the entry itself, not a fallback
        _assert_same(table, provider, model, usages)


def test_float_path_equals_decimal_path_for_user_prices() -> None:
    t = PriceTable.load(
        {
            "openai/thinker": {
                "input": "1.1",
                "cached_input": "0.11",
                "cache_write": "1.375",
                "output": "4.4",
                "reasoning": "8.8",
                "tiers": [
                    {"above_input_tokens": 1000, "reasoning": "17.6"},
                    {"above_input_tokens": 5000, "input": "2.2", "output": "8.8"},
                ],
            },
            # sub-picodollar per-token rates (5e-13 USD per input token): each part is rounded half-even
            "openai/sub-pico": {
                "input": "0.0000005",
                "cached_input": "0.00000025",
                "cache_write": "0.000000625",
                "output": "0.0000015",
                "reasoning": "0.0000035",
            },
            "openai/thirds": {"input": Decimal(1) / Decimal(3), "output": "1E-30"},
            "openai/free": {"input": "0", "output": "0"},
            "ollama/*": {"input": "0.02", "output": "0.02"},
        },
        local_providers=("ollama", "vllm"),
    )
    usages = _usages()
    for model in ("thinker", "sub-pico", "thirds", "free", "unknown"):
        _assert_same(t, "openai", model, usages)
    _assert_same(t, "ollama", "qwen3", usages)
    _assert_same(t, "vllm", "qwen3", usages)  # local
    # half-even: 1, 3, 5, 7 tokens at 5e-13 USD = 0.5, 1.5, 2.5, 3.5 picodollars
    assert [t.cost("openai", "sub-pico", n, 0).input for n in (1, 3, 5, 7)] == [
        Decimal(n).scaleb(-12) for n in (0, 2, 2, 4)
    ]
    assert t.cost_floats("openai", "sub-pico", 7, 0)[2:] == (4e-12, 4e-12, 0.0)
    # the tier above 1000 input tokens changes only the reasoning price
    assert t.cost("openai", "thinker", 1001, 10, reasoning_tokens=4).output == Decimal("0.0000968")
    assert t.cost("openai", "thinker", 1000, 10, reasoning_tokens=4).output == Decimal("0.0000616")


# --- hot path ----------------------------------------------------------------------------------------------


def test_memo_is_bounded() -> None:
    t = PriceTable.load()
    for n in range(10_000):
        t.cost("openai", f"model-{n}", 1, 1)
    assert len(t._memo) <= 4096
