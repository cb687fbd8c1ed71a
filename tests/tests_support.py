"""Small helpers shared by test modules."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any

import openai


def client_http_module() -> ModuleType:
    """The HTTP library the installed openai client is built on (httpx2 since 3.0, httpx before)."""
    base = next(c for c in openai.DefaultHttpxClient.__mro__[1:] if c.__name__ == "Client")
    return importlib.import_module(base.__module__.split(".")[0])


HAS_RESPONSES = hasattr(openai.OpenAI, "responses")
"""The Responses API arrived in openai 1.66; older clients are tested without it."""


def chat_parse_resource(client: object) -> object:
    """``chat.completions`` with stable ``parse``/``stream`` (openai >= 1.92), else the beta one."""
    completions = client.chat.completions  # type: ignore[attr-defined]
    return completions if hasattr(completions, "parse") else client.beta.chat.completions  # type: ignore[attr-defined]


def run_child(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (no inherited OTEL_*/LLM_OTEL_* settings, plus ``env``); the
    last line it prints is JSON, returned parsed."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    full_env.update(env)
    command = [sys.executable, "-c", textwrap.dedent(code)]
    done = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
