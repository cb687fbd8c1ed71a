"""Request side of an Ollama call: span-start attributes from the JSON body the client built.

The body is what ``_request`` receives as ``json=``, so it is exactly what goes on the wire whatever helper
or positional style the user called. What the body does not carry is not recorded; ``options`` may be a
dict or an ``Options`` model. A value that does not convert (``temperature="hot"``) is left off alone: the
call still gets its span, and the server or the client decides whether the call fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ... import semconv as sc

#: ``options`` keys -> (attribute, conversion); ``stop`` is handled apart (list of strings).
_OPTIONS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("temperature", sc.REQUEST_TEMPERATURE, float),
    ("top_p", sc.REQUEST_TOP_P, float),
    ("top_k", sc.REQUEST_TOP_K, float),
    ("num_predict", sc.REQUEST_MAX_TOKENS, int),
    ("seed", sc.REQUEST_SEED, int),
    ("frequency_penalty", sc.REQUEST_FREQUENCY_PENALTY, float),
    ("presence_penalty", sc.REQUEST_PRESENCE_PENALTY, float),
)


def _get(obj: Any, key: str) -> Any:
    """dict (what ``model_dump`` builds) or an object (an ``Options`` model a future client keeps)."""
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def request_attributes(body: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    """Fill span-start attributes from the request body; returns the request model."""
    options = body.get("options")
    if options:
        for key, name, convert in _OPTIONS:
            value = _get(options, key)
            if value is not None:
                try:
                    attrs[name] = convert(value)
                except (TypeError, ValueError, OverflowError):
                    continue  # a value the server rejects (or ignores); the span just does not record it
        stop = _get(options, "stop")
        if stop:
            with contextlib.suppress(TypeError):  # not a list
                attrs[sc.REQUEST_STOP_SEQUENCES] = (
                    (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
                )
    think = body.get("think")
    if think is not None:
        # as sent: a level string ("low", "high") or the boolean switch
        attrs[sc.REQUEST_REASONING_LEVEL] = (
            think if isinstance(think, str) else ("true" if think else "false")
        )
    if body.get("format"):  # "json" or a JSON schema; "" means plain text
        attrs[sc.OUTPUT_TYPE] = "json"
    dimensions = body.get("dimensions")
    if dimensions is not None:
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            attrs[sc.EMBEDDINGS_DIMENSION_COUNT] = int(dimensions)
    model = body.get("model")
    return str(model) if model else None
