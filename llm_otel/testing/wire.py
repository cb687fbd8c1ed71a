"""What a route hands to the HTTP layer: a status, headers and a body or a list of stream pieces.

Routes build whole replies up front (everything is deterministic), so the HTTP layer can apply faults
(truncate, drop, corrupt) to any reply without knowing which API produced it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

JSON_CT = "application/json"
JSON_UTF8_CT = "application/json; charset=utf-8"
SSE_CT = "text/event-stream; charset=utf-8"
NDJSON_CT = "application/x-ndjson"


@dataclass(frozen=True)
class ReplyConfig:
    """The shaping knobs of ``FakeLLMServer.configure`` as seen by one request."""

    reply: str = "This is a test."
    stream_chunks: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass
class Reply:
    """An HTTP reply; ``chunks`` set means a streamed body written piece by piece (chunked encoding)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None
    stream_format: str = ""  # "sse" or "ndjson" when chunks is set


def compact(obj: Any) -> str:
    """JSON the way OpenAI SSE lines and Ollama bodies are written: no spaces, raw UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_bytes(obj: Any, *, pretty: bool = False) -> bytes:
    """``obj`` as UTF-8 JSON. A string holding a lone surrogate (``"\\ud800"``) cannot be UTF-8 encoded:
    then the whole document is written with ``\\uXXXX`` escapes instead, which is still valid JSON and
    decodes back to the same string (what a hostile server sends)."""
    indent = 2 if pretty else None
    separators = None if pretty else (",", ":")
    try:
        return json.dumps(obj, indent=indent, separators=separators, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, indent=indent, separators=separators).encode("ascii")


def json_reply(obj: Any, status: int = 200, *, pretty: bool = False, content_type: str = JSON_CT) -> Reply:
    """A JSON body; OpenAI's non-stream bodies are pretty-printed with two spaces, Ollama's are compact."""
    text = json.dumps(obj, indent=2, ensure_ascii=False) if pretty else compact(obj)
    return Reply(status=status, headers={"content-type": content_type}, body=text.encode("utf-8"))


def sse_reply(events: Sequence[tuple[str | None, Any]], *, done: bool = True) -> Reply:
    """An SSE stream: each event is ``(event name or None, data)``, blank-line separated; then ``[DONE]``."""
    chunks: list[bytes] = []
    for name, data in events:
        prefix = f"event: {name}\n" if name else ""
        chunks.append(f"{prefix}data: {compact(data)}\n\n".encode())
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return Reply(headers={"content-type": SSE_CT}, chunks=chunks, stream_format="sse")


def ndjson_reply(objects: list[Any]) -> Reply:
    """An Ollama stream: one compact JSON object per line."""
    chunks = [(compact(o) + "\n").encode("utf-8") for o in objects]
    return Reply(headers={"content-type": NDJSON_CT}, chunks=chunks, stream_format="ndjson")


def corrupt_chunk(chunk: bytes, stream_format: str) -> bytes:
    """The same stream piece with its JSON cut in half, so the client's JSON decoding fails."""
    if stream_format == "sse":
        lines = chunk.decode("utf-8").rstrip("\n").split("\n")
        out = []
        for line in lines:
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                line = "data: " + payload[: max(1, len(payload) // 2)]
            out.append(line)
        return ("\n".join(out) + "\n\n").encode("utf-8")
    raw = chunk.rstrip(b"\n")
    return raw[: max(1, len(raw) // 2)] + b"\n"


def is_json_piece(chunk: bytes) -> bool:
    """Whether a stream piece carries JSON (``data: [DONE]`` does not)."""
    return b"[DONE]" not in chunk


def _sse_piece(item: Any, name_events: bool) -> bytes:
    if isinstance(item, bytes):
        return item
    name: Any = None
    if isinstance(item, tuple) and len(item) == 2:
        name, item = item
    elif name_events and isinstance(item, dict) and isinstance(item.get("type"), str):
        name = item["type"]
    data = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else json_bytes(item)
    prefix = f"event: {name}\n".encode() if name else b""
    return prefix + b"data: " + data + b"\n\n"


def _ndjson_piece(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    data = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else json_bytes(item)
    return data + b"\n"


def canned_reply(path: str, body: Any, chunks: Sequence[Any] | None, status: int, done: bool | None) -> Reply:
    """The reply of ``FakeLLMServer.respond_with`` for a request to ``path`` (formats: its docstring)."""
    is_openai = path.startswith("/v1/")
    if chunks is None:
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8", "surrogatepass")
        else:
            data = json_bytes(body, pretty=is_openai)
        content_type = JSON_CT if is_openai else JSON_UTF8_CT
        return Reply(status=status, headers={"content-type": content_type}, body=data)
    if not is_openai:
        lines = [_ndjson_piece(item) for item in chunks]
        return Reply(status=status, headers={"content-type": NDJSON_CT}, chunks=lines, stream_format="ndjson")
    responses_api = path.startswith("/v1/responses")
    pieces = [_sse_piece(item, responses_api) for item in chunks]
    if done if done is not None else not responses_api:
        pieces.append(b"data: [DONE]\n\n")
    return Reply(status=status, headers={"content-type": SSE_CT}, chunks=pieces, stream_format="sse")
