"""One source for each fact the package states twice: supported client versions and the version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from llm_otel.instrumentors.ollama.instrumentor import _instruments as OLLAMA
from llm_otel.instrumentors.openai.instrumentor import _instruments as OPENAI

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _minimum(requirement: str) -> str:
    (spec,) = Requirement(requirement).specifier
    assert spec.operator == ">="
    return spec.version


@pytest.mark.parametrize(("name", "instruments"), [("openai", OPENAI), ("ollama", OLLAMA)])
def test_extras_and_readme_state_the_instrumentors_minimum(name: str, instruments: tuple[str, ...]) -> None:
    (declared,) = instruments
    minimum = _minimum(declared)
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in (name, "test"):
        (pinned,) = [r for r in extras[extra] if Requirement(r).name == name]
        assert _minimum(pinned) == minimum, (extra, pinned, declared)
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"`{name}` ≥ {re.escape(minimum)}\b", readme), f"README's supported {name} version"


def test_ci_tests_the_oldest_supported_clients() -> None:
    """.ci/run installs the pins tools/min_versions.py generates from pyproject.toml, whose client extras
    state the instrumentors' minimum (the test above); tests/test_min_versions.py checks the generator."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 tools/min_versions.py > .ci-min-all.txt" in ci
    assert "-c .ci-min-all.txt" in ci
    assert 'python3 tools/min_versions.py --extras "" > .ci-min-core.txt' in ci
    assert "-c .ci-min-core.txt" in ci


def test_version_has_one_source() -> None:
    from importlib.metadata import version

    import llm_otel

    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert version("llm-otel") == llm_otel.__version__
