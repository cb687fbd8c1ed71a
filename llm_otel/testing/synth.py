"""Deterministic synthetic content: ids, JSON-schema example values, tool calls, embedding vectors."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import secrets
import string
import struct
from typing import Any

_ALNUM = string.ascii_letters + string.digits
STRING_VALUE = "test"
"""Value used for every ``string`` property of a synthesized JSON object or tool-call argument."""


def rand_alnum(n: int) -> str:
    """Random letters and digits, the alphabet of OpenAI's ``chatcmpl-`` and ``call_`` ids."""
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def rand_hex(n: int) -> str:
    """Random lower-case hex of length ``n`` (``resp_``/``msg_`` ids, request ids)."""
    return secrets.token_hex((n + 1) // 2)[:n]


def example_from_schema(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A simple value that validates against ``schema`` (objects get their required properties).

    Good enough for the schemas pydantic and the openai/ollama helpers generate: ``$ref``/``$defs``,
    ``anyOf`` (first non-null branch), ``enum``/``const``, objects, arrays and scalar types.
    """
    if not isinstance(schema, dict) or depth > 12:
        return None
    if defs is None:
        defs = {}
    defs = {**defs, **(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example_from_schema(defs.get(ref.rsplit("/", 1)[-1], {}), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return example_from_schema(non_null[0], defs, depth + 1) if non_null else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        required = schema.get("required")
        names = [k for k in props if k in required] if isinstance(required, list) else list(props)
        return {name: example_from_schema(props[name], defs, depth + 1) for name in names}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [example_from_schema(schema.get("items") or {"type": "string"}, defs, depth + 1)] * count
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(max(1, schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "string" or kind is None:
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2024-01-01T00:00:00Z"
        if fmt == "date":
            return "2024-01-01"
        return STRING_VALUE
    return None


def json_reply_text(reply: str, schema: Any) -> str:
    """Reply for a JSON mode request: the configured reply if it already is JSON, else a synthesized one."""
    try:
        json.loads(reply)
        return reply
    except ValueError:
        pass
    if isinstance(schema, dict):
        return json.dumps(example_from_schema(schema))
    return json.dumps({"reply": reply})


def pick_tool(tools: Any, tool_choice: Any) -> tuple[str, dict[str, Any]] | None:
    """The function tool the fake model calls: the forced one, else the first; None if no call."""
    if tool_choice == "none" or not isinstance(tools, list):
        return None
    functions: list[tuple[str, dict[str, Any]]] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        fn: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
        if (tool.get("type") in (None, "function")) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            functions.append((fn["name"], params if isinstance(params, dict) else {}))
    if not functions:
        return None
    if isinstance(tool_choice, dict):
        wanted = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
        for name, params in functions:
            if name == wanted:
                return name, params
    return functions[0]


def tool_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Arguments object for a tool call, built from the tool's parameters schema."""
    value = example_from_schema(params)
    return value if isinstance(value, dict) else {}


def embedding_vector(key: str, dims: int) -> list[float]:
    """A unit-length vector seeded by ``key``; values are exact float32 so float and base64 agree."""
    rnd = random.Random(hashlib.sha256(key.encode("utf-8")).digest())
    raw = [rnd.gauss(0.0, 1.0) for _ in range(max(1, dims))]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{len(raw)}f", *(x / norm for x in raw))
    return list(struct.unpack(f"<{len(raw)}f", packed))


def float32_base64(vector: list[float]) -> str:
    """Base64 of little-endian float32 values: what the API returns for ``encoding_format="base64"``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
