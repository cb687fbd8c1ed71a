"""Opt-in message content: request messages turned into the GenAI conventions' JSON shape.

Pure functions, no span or call object: they build the message lists that ``GenAICall.record_input``
(call.py) puts on the span or the event. Never consumes the user's inputs: only lists and tuples are read;
a generator or other one-shot iterable is skipped (the request must go out exactly as the user built it).
Each text part is cut at the configured size. Only message text, tool calls and media references are
recorded: never headers or keys.
"""

from __future__ import annotations

from typing import Any

from ..content import truncate


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _parts(content: Any, limit: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": truncate(content, limit)}]
    parts: list[dict[str, Any]] = []
    if not isinstance(content, (list, tuple)):
        return parts
    for piece in content:
        kind = _get(piece, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": truncate(str(_get(piece, "text") or ""), limit)})
        elif kind in ("image_url", "input_image"):
            url = _get(piece, "image_url")
            url = _get(url, "url") if not isinstance(url, str) else url
            if isinstance(url, str) and not url.startswith("data:"):
                parts.append({"type": "uri", "modality": "image", "uri": truncate(url, limit)})
            else:
                parts.append({"type": "blob", "modality": "image", "content": "[omitted]"})
        else:
            parts.append({"type": "generic", "generic_type": str(kind)})
    return parts


def chat_messages(messages: Any, limit: int) -> list[dict[str, Any]] | None:
    """Chat Completions / Ollama chat messages; None when they cannot be read without consuming them."""
    if not isinstance(messages, (list, tuple)):
        return None
    out: list[dict[str, Any]] = []
    for message in messages:
        role = str(_get(message, "role") or "user")
        parts = _parts(_get(message, "content"), limit)
        for call in _get(message, "tool_calls") or ():
            fn = _get(call, "function")
            args = _get(fn, "arguments")
            parts.append(
                {
                    "type": "tool_call",
                    "id": _get(call, "id"),
                    "name": _get(fn, "name"),
                    "arguments": args if isinstance(args, dict) else truncate(str(args or ""), limit),
                }
            )
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": _get(message, "tool_call_id"),
                    "response": truncate(str(_get(message, "content") or ""), limit),
                }
            ]
        out.append({"role": role, "parts": parts})
    return out


def responses_input(kwargs: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]] | None, Any]:
    value = kwargs.get("input")
    messages: list[dict[str, Any]] | None
    if isinstance(value, str):
        messages = [{"role": "user", "parts": [{"type": "text", "content": truncate(value, limit)}]}]
    else:
        messages = chat_messages(value, limit)
    instructions = kwargs.get("instructions")
    system = (
        [{"type": "text", "content": truncate(instructions, limit)}]
        if isinstance(instructions, str)
        else None
    )
    return messages, system


def prompt_messages(prompt: Any, limit: int) -> list[dict[str, Any]] | None:
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [{"type": "text", "content": truncate(prompt, limit)}]}]
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [{"type": "text", "content": truncate(p, limit)}]} for p in prompt]
    return None
