"""Real HTTP exchanges recorded by other projects' public test suites, read where they live.

They are not ours to commit: they stay in ``shared/realworld/`` beside the checkout (CI lays it there) and
are read at test time only. ``LLM_OTEL_REALWORLD_DIR`` points elsewhere. In a plain clone the tests that
replay them skip with a one-line reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REALWORLD_DIR = Path(
    os.environ.get("LLM_OTEL_REALWORLD_DIR") or Path(__file__).resolve().parents[2] / "shared" / "realworld"
)
SKIP_REASON = f"recorded exchanges not found at {REALWORLD_DIR} (shared/realworld beside the checkout)"


def exchange_params(prefix: str) -> list[Any]:
    """One pytest param per recorded exchange named ``{prefix}*.json``; a single skipped param if none."""
    paths = sorted(REALWORLD_DIR.glob(f"{prefix}*.json"))
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="absent")]
    return [pytest.param(p, id=p.stem) for p in paths]


def load_exchange(name: str) -> dict[str, Any]:
    """The recorded exchange ``name`` (file name), or skip the calling test when it is absent."""
    path = REALWORLD_DIR / name
    if not path.is_file():
        pytest.skip(SKIP_REASON)
    data: dict[str, Any] = json.loads(path.read_text())
    return data
