"""The examples in docs/ are real: the price files in docs/prices.md load and price as the page says, and
the files docs/fleets.md names exist."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from llm_otel.pricing import PriceTable

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def code_blocks(page: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / page).read_text(), re.S)


@pytest.mark.parametrize("language", ["json", "toml"])
def test_price_file_examples_load_and_price_as_documented(language: str, tmp_path: Path) -> None:
    if language == "toml" and sys.version_info < (3, 11):
        pytest.importorskip("tomli")
    (example,) = code_blocks("prices.md", language)
    path = tmp_path / f"prices.{language}"
    path.write_text(example)
    table = PriceTable.load(path)
    # the page's worked example: 1,000 input tokens (400 cached) and 500 output tokens
    cost = table.cost("openai", "my-model", 1000, 500, cache_read_tokens=400)
    assert (cost.status, cost.total) == ("priced", Decimal("0.00042"))
    assert cost.source == f"override:{path}:openai/my-model"
    assert table.cost("openai", "my-model-latest", 1000, 500, cache_read_tokens=400).total == cost.total
    long_context = table.cost("openai", "my-model", 300_000, 500)  # the tier prices every token
    assert long_context.total == Decimal(300_000 * 30 + 500 * 120) / 100_000_000
    assert table.cost("ollama", "llama3.2", 1000, 1000).status == "priced"  # "ollama/*" replaces "local"
    assert PriceTable.load().cost("ollama", "llama3.2", 1000, 1000).status == "local"


def test_fleet_page_names_files_that_exist() -> None:
    text = (DOCS / "fleets.md").read_text()
    assert "```mermaid\nflowchart" in text
    named = set(re.findall(r"`((?:examples|llm_otel|tests)/[\w./-]+)`", text))
    named |= {f"examples/stack/{n}" for n in re.findall(r"`([\w-]+\.ya?ml)`", text) if "collector" in n}
    assert named
    for path in named:
        assert (ROOT / path).exists(), path
