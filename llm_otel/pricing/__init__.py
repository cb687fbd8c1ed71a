"""Prices of LLM calls: a bundled, dated price table, user overrides, and the exact USD cost of one call.

Modules, one job each:

* :mod:`.price_file`: parse and validate price files (the bundled ``llm_otel/data/prices.json``, user JSON,
  TOML or dicts) into entries; the file format is documented there.
* :mod:`.lookup`: model-name normalisation (routing prefixes, dated snapshots, Bedrock ids and ARNs, Azure
  deployments) and the lookup of the entry that prices a (provider, model).
* :mod:`.cost`: the cost arithmetic: one integer formula, read out as exact Decimals (:class:`Cost`) or as
  floats for span attributes (``cost_floats``, on every LLM call).
* :mod:`.table`: :class:`PriceTable`, which ties them together.

Why a table of our own instead of calling pydantic's ``genai_prices.calc_price`` at run time
(genai-prices 0.2.3, CPython 3.11, same call: gpt-4o-mini-2024-07-18, 1370 input / 1280 cached / 155 output
tokens; both give $0.0002025):

* Hot-path cost: ``calc_price`` takes ~45 µs and ~657,000 instructions per call (timeit; callgrind,
  difference between 200 and 1,200 calls). Cost is computed inside the user's LLM call, so it has to stay
  a dict hit plus a few integer products: a few thousand instructions.
* Footprint: genai-prices requires Python >= 3.11 (llm-otel supports 3.10) and pulls in ``pydantic`` and
  ``httpx2``; importing it takes ~100 ms (``-X importtime``). Its fuzzy matching can also price a name that
  is not OpenAI's model (it lists a third-party host's price for gpt-oss), where we want "unpriced".
* It is an excellent *source*: ``tools/build_prices.py`` generates our bundled ``data/prices.json`` from its
  bundled data, offline (OpenAI, Azure OpenAI, Anthropic, Google Gemini and Vertex AI, Mistral, DeepSeek,
  xAI, AWS Bedrock, under the conventions' ``gen_ai.provider.name`` values), checks a handful of prices
  against published list prices, and checks that every name genai-prices knows for these providers
  resolves through our lookup to the price genai-prices gives it (or, for what we leave out, to none).
"""

from .cost import Cost
from .price_file import Price, PriceTier
from .table import PriceTable

__all__ = ["Cost", "Price", "PriceTier", "PriceTable"]
