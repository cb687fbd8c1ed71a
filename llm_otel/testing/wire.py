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
