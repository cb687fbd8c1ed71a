"""Small helpers shared by test modules."""

from __future__ import annotations

import importlib
from types import ModuleType

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
