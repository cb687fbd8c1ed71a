"""Declared minimum versions are tested ones: the pin generator covers every dependency, and llm-otel's
fallbacks for semantic-convention names equal the installed package's values."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import min_versions  # noqa: E402

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _names(requirements: list[str]) -> list[str]:
    return [_NAME.match(r).group(1).lower() for r in requirements]  # type: ignore[union-attr]


def test_pins_cover_every_dependency_and_client_extra() -> None:
    project = min_versions._load(ROOT / "pyproject.toml")["project"]
    declared = list(project["dependencies"])
    for extra in ("openai", "ollama"):
        declared += project["optional-dependencies"][extra]
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "min_versions.py")], capture_output=True, text=True, check=True
    )
    pins = done.stdout.split()
    assert _names(pins) == _names(declared)
    for requirement, pinned in zip(declared, pins, strict=True):
        floor = requirement.split(">=", 1)[1].split(",")[0].split(";")[0].strip()
        assert pinned.endswith(f"=={floor}"), (requirement, pinned)
    assert "opentelemetry-semantic-conventions==0.51b0" in pins


def test_core_only_pins() -> None:
    pins = [min_versions.pin(r) for r in min_versions.requirements(extras=())]
    assert not any(p.startswith(("openai", "ollama")) for p in pins)
    assert len(pins) == len(min_versions._load(ROOT / "pyproject.toml")["project"]["dependencies"])


@pytest.mark.parametrize(
    ("requirement", "pinned"),
    [
        ("wrapt>=1.14", "wrapt==1.14"),
        ("openai>=1.55,<4", "openai==1.55"),
        ("foo[bar] >= 2.0 ; python_version >= '3.11'", "foo[bar]==2.0; python_version >= '3.11'"),
    ],
)
def test_pin(requirement: str, pinned: str) -> None:
    assert min_versions.pin(requirement) == pinned


@pytest.mark.parametrize("requirement", ["wrapt", "wrapt==1.14", "wrapt<2"])
def test_a_dependency_without_a_lower_bound_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="lower bound"):
        min_versions.pin(requirement)


def test_semconv_fallbacks_equal_the_installed_package_values() -> None:
    """``NAME = getattr(module, "CONSTANT", "fallback")``: the fallback is what an older package lacks, and
    must be exactly the value a newer one has."""
    from llm_otel import semconv

    tree = ast.parse((ROOT / "llm_otel" / "semconv.py").read_text())
    aliases = {
        alias.asname: importlib.import_module(f"{node.module}.{alias.name}")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("opentelemetry.semconv")
        for alias in node.names
        if alias.asname
    }
    checked = present = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if not (isinstance(call.func, ast.Name) and call.func.id == "getattr"):
            continue
        module_alias, constant, fallback = call.args
        assert isinstance(module_alias, ast.Name) and isinstance(constant, ast.Constant)
        assert isinstance(fallback, ast.Constant) and isinstance(fallback.value, str)
        module = aliases[module_alias.id]
        target = node.target.id  # type: ignore[attr-defined]
        checked += 1
        if hasattr(module, constant.value):
            present += 1
            assert getattr(module, constant.value) == fallback.value, constant.value
        assert getattr(semconv, target) == fallback.value
    assert checked >= 30
    assert present > 0
