"""Print pip pins of the declared minimum version of every llm-otel dependency, read from pyproject.toml.

A declared lower bound (``opentelemetry-sdk>=1.30``) is a promise that the oldest release works; CI keeps
it by installing exactly these pins in a venv of their own and running the suite there (``.ci/run``,
"declared minimum versions"). Generated, never written by hand, so a raised floor is tested the moment it
is raised; ``tests/test_min_versions.py`` checks every dependency has a lower bound and gets a pin.

Usage (from the repo root)::

    python tools/min_versions.py [--extras openai,ollama] > /tmp/min-pins.txt
    pip install -e . -r /tmp/min-pins.txt

Pins the runtime ``dependencies`` and the requirements of the listed extras (default: ``openai`` and
``ollama``, the client libraries). ``1.30`` pins ``==1.30``, which pip matches to 1.30.0. Environment
markers are kept.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXTRAS = ("openai", "ollama")

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)


def _load(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with path.open("rb") as f:
        return tomllib.load(f)


def requirements(
    pyproject: Path = ROOT / "pyproject.toml", extras: tuple[str, ...] = DEFAULT_EXTRAS
) -> list[str]:
    """The requirement strings the pins cover: runtime dependencies, then those of ``extras``."""
    project = _load(pyproject)["project"]
    found = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r}")
        found += optional[extra]
    return found


def pin(requirement: str) -> str:
    """``name>=X[,<Y]; marker`` -> ``name==X; marker``; a requirement without ``>=`` is an error."""
    m = _REQUIREMENT.match(requirement)
    if m is None:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    lower = [part.strip()[2:].strip() for part in m["spec"].split(",") if part.strip().startswith(">=")]
    if len(lower) != 1:
        raise ValueError(f"{requirement!r} declares no single lower bound (>=): its minimum cannot be tested")
    marker = f"; {m['marker'].strip()}" if m["marker"] else ""
    return f"{m['name']}{m['extras'] or ''}=={lower[0]}{marker}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pip pins of every dependency's declared minimum version")
    ap.add_argument("--extras", default=",".join(DEFAULT_EXTRAS), help="extras to pin too (comma-separated)")
    ap.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = ap.parse_args(argv)
    extras = tuple(e for e in args.extras.split(",") if e)
    for requirement in requirements(args.pyproject, extras):
        print(pin(requirement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
