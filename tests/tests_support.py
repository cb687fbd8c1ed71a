"""Small helpers shared by test modules."""

from __future__ import annotations

import importlib
from types import ModuleType

import openai


def client_http_module() -> ModuleType:
    """The HTTP library the installed openai client is built on (httpx2 since 3.0, httpx before)."""
    base = next(c for c in openai.DefaultHttpxClient.__mro__[1:] if c.__name__ == "Client")
    return importlib.import_module(base.__module__.split(".")[0])
