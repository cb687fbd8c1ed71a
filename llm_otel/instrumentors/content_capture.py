"""Opt-in message content: request messages and tools turned into the GenAI conventions' JSON shape.

Pure functions, no span or call object: they build the message lists and tool definitions that
``GenAICall.record_input`` (call.py) puts on the span or the event, and the parts both providers' response
readers share (a tool call, a finish reason). Never consumes the user's inputs: only lists and tuples are
read; a generator or other one-shot iterable is skipped (the request must go out exactly as the user built
it). Each text part is cut at the configured size. Only message text, tool calls, tool definitions and
media references are recorded: never headers or keys.

Shapes (semantic-conventions-genai JSON schemas ``gen-ai-{input,output}-messages.json`` and
``gen-ai-tool-definitions.json``): a tool call is ``{"type": "tool_call", "id"?, "name", "arguments"}``
with the arguments as the parsed JSON value (the text is kept only when it is not valid JSON, or longer
than the part limit and so cut); a tool result is ``{"type": "tool_call_response", "id"?, "response"}``;
a tool definition is ``{"type": "function", "name"}`` or, for a provider's built-in tool,
``{"type": <its type>, "name"}`` (description and parameters left out, as the conventions recommend).
Output messages carry the conventions' finish reason (``tool_call`` for OpenAI's ``tool_calls`` /
``function_call``); the span attribute ``gen_ai.response.finish_reasons`` keeps the provider's own values.
"""

from __future__ import annotations

import json
from typing import Any

from ..content import truncate

#: provider finish reason -> the conventions' value inside output messages; others are kept as sent
FINISH_REASONS = {
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_call": "tool_call",
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "error": "error",
}


def finish_reason(raw: Any) -> str:
    """The conventions' finish reason for an output message; a missing one is ``error``."""
    if not raw:
        return "error"
    text = raw if isinstance(raw, str) else str(raw)
    return FINISH_REASONS.get(text, text)


def arguments(value: Any, limit: int) -> Any:
    """Tool-call arguments as the conventions record them: the parsed JSON value of OpenAI's argument text,
    the text itself (cut at ``limit``) when it is not valid JSON or too long to keep whole, and an object
    given as one (Ollama, a request the user built) as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) <= limit:
            try:
                return json.loads(value)
            except (ValueError, RecursionError):  # not JSON, or nested beyond what the parser takes
                pass
        return truncate(value, limit)
    if isinstance(value, dict):
        return value
    return truncate(str(value), limit)


def tool_call_part(call_id: Any, name: Any, args: Any, limit: int) -> dict[str, Any]:
    """A ``tool_call`` part; ``id`` only when the provider gave one (Ollama and legacy function calls
    have none)."""
    part: dict[str, Any] = {"type": "tool_call"}
    if call_id:
        part["id"] = call_id if isinstance(call_id, str) else str(call_id)
    part["name"] = name if name is None or isinstance(name, str) else str(name)
    part["arguments"] = arguments(args, limit)
    return part


def _response_text(content: Any, limit: int) -> str:
    """A tool result's content: a string, or OpenAI's list of text parts joined."""
    if isinstance(content, (list, tuple)):
        content = "".join(str(_get(piece, "text") or "") for piece in content)
    return truncate(content if isinstance(content, str) else str(content or ""), limit)


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
    """Chat Completions / Ollama chat messages; None when they cannot be read without consuming them.

    Assistant tool calls (and the legacy ``function_call``) become ``tool_call`` parts; ``tool`` messages
    (and the legacy ``function`` role) become one ``tool_call_response`` part under role ``tool``.
    """
    if not isinstance(messages, (list, tuple)):
        return None
    out: list[dict[str, Any]] = []
    for message in messages:
        role = str(_get(message, "role") or "user")
        if role in ("tool", "function"):
            part: dict[str, Any] = {"type": "tool_call_response"}
            call_id = _get(message, "tool_call_id")
            if call_id:
                part["id"] = str(call_id)
            part["response"] = _response_text(_get(message, "content"), limit)
            out.append({"role": "tool", "parts": [part]})
            continue
        parts = _parts(_get(message, "content"), limit)
        for call in _get(message, "tool_calls") or ():
            fn = _get(call, "function")
            parts.append(tool_call_part(_get(call, "id"), _get(fn, "name"), _get(fn, "arguments"), limit))
        legacy = _get(message, "function_call")
        if legacy is not None:
            parts.append(tool_call_part(None, _get(legacy, "name"), _get(legacy, "arguments"), limit))
        out.append({"role": role, "parts": parts})
    return out


def _responses_items(items: Any, limit: int) -> list[dict[str, Any]] | None:
    """Responses API ``input`` items: messages, and the function calls and outputs of earlier turns."""
    if not isinstance(items, (list, tuple)):
        return None
    out: list[dict[str, Any]] = []
    for item in items:
        kind = _get(item, "type")
        if kind == "function_call":
            part = tool_call_part(_get(item, "call_id"), _get(item, "name"), _get(item, "arguments"), limit)
            out.append({"role": "assistant", "parts": [part]})
        elif kind == "function_call_output":
            response: dict[str, Any] = {"type": "tool_call_response"}
            if _get(item, "call_id"):
                response["id"] = str(_get(item, "call_id"))
            response["response"] = _response_text(_get(item, "output"), limit)
            out.append({"role": "tool", "parts": [response]})
        elif kind in (None, "message"):
            out.extend(chat_messages((item,), limit) or ())
        # other items (reasoning, item references, built-in tool calls) carry no message content
    return out


def tool_definitions(tools: Any, functions: Any, limit: int) -> list[dict[str, Any]] | None:
    """``gen_ai.tool.definitions`` from a request's ``tools`` (Chat Completions, Responses and Ollama
    shapes) and legacy ``functions``; None when there are none or they cannot be read without consuming."""
    out: list[dict[str, Any]] = []
    if isinstance(tools, (list, tuple)):
        for tool in tools:
            kind = _get(tool, "type")
            fn = _get(tool, "function") if kind in (None, "function") else None
            if fn is not None:  # Chat Completions / Ollama: {"type": "function", "function": {...}}
                out.append(_function_definition(fn, limit))
            elif kind in (None, "function"):  # Responses: the function's fields at the top level
                out.append(_function_definition(tool, limit))
            else:  # a custom or built-in tool (custom, web_search, file_search, mcp, ...)
                spec = _get(tool, str(kind))
                name = _get(spec, "name") if spec is not None else None
                name = name or _get(tool, "name") or _get(tool, "server_label") or kind
                out.append({"type": str(kind), "name": str(name)})
    if isinstance(functions, (list, tuple)):
        out.extend(_function_definition(fn, limit) for fn in functions)
    return out or None


def _function_definition(fn: Any, limit: int) -> dict[str, Any]:
    """Type and name only: the conventions do not recommend recording a tool's description and parameters
    (JSON schema) by default, for their size."""
    return {"type": "function", "name": truncate(str(_get(fn, "name") or ""), limit)}


def responses_input(kwargs: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]] | None, Any]:
    value = kwargs.get("input")
    messages: list[dict[str, Any]] | None
    if isinstance(value, str):
        messages = [{"role": "user", "parts": [{"type": "text", "content": truncate(value, limit)}]}]
    else:
        messages = _responses_items(value, limit)
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
