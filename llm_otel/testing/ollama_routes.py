"""Ollama native HTTP API (``/api/...``) of the fake server, with the fields Ollama sends.

Durations are deterministic (nanoseconds): ``load_duration`` = 5 ms, ``prompt_eval_duration`` = 1 ms per
input token, ``eval_duration`` = 10 ms per output token, ``total_duration`` = their sum + 1 ms.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

from .synth import embedding_vector, json_reply_text, pick_tool, rand_alnum, tool_arguments
from .tokens import count_tokens, messages_input_tokens, prompt_tokens, split_pieces, truncate_words
from .wire import JSON_UTF8_CT, Reply, ReplyConfig, json_reply, ndjson_reply

LOAD_NS = 5_000_000
PROMPT_EVAL_NS_PER_TOKEN = 1_000_000
EVAL_NS_PER_TOKEN = 10_000_000
OVERHEAD_NS = 1_000_000
THINKING_TEXT = "Let me think about that."
"""The ``thinking`` text sent when a request asks for ``think`` (its words count as output tokens)."""
EMBED_DIMS = 768
VERSION = "0.12.3"
MODELS = ("llama3:latest", "llama3.1:latest", "gemma3:1b", "qwen3:latest", "nomic-embed-text:latest")


def is_missing_model(model: Any) -> bool:
    """Models the fake Ollama does not have: names starting with ``missing`` or ``nonexistent``."""
    return str(model or "").lower().startswith(("missing", "nonexistent", "non-existent"))


def error_reply(status: int, message: str) -> Reply:
    """Ollama's error shape: ``{"error": "..."}``."""
    return json_reply({"error": message}, status, content_type=JSON_UTF8_CT)


def not_found_reply(model: str) -> Reply:
    return error_reply(404, f"model '{model}' not found")  # Ollama's own 404 body


def timestamps(count: int) -> list[str]:
    """``created_at`` values like Ollama's (Go RFC 3339 with trimmed fractional seconds), 30 ms apart."""
    start = datetime.now(timezone.utc)
    out = []
    for i in range(count):
        text = (
            (start + timedelta(milliseconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
        )
        out.append(text + "Z")
    return out


def timings(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """The final chunk's counters and durations, in Ollama's field order."""
    prompt_ns = input_tokens * PROMPT_EVAL_NS_PER_TOKEN
    eval_ns = output_tokens * EVAL_NS_PER_TOKEN
    return {
        "total_duration": LOAD_NS + prompt_ns + eval_ns + OVERHEAD_NS,
        "load_duration": LOAD_NS,
        "prompt_eval_count": input_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": output_tokens,
        "eval_duration": eval_ns,
    }


def _wants_thinking(req: dict[str, Any]) -> bool:
    think = req.get("think")
    return think is True or (isinstance(think, str) and think.lower() not in ("", "false", "none"))


def _reply_text(req: dict[str, Any], cfg: ReplyConfig) -> str:
    fmt = req.get("format")
    if fmt == "json":
        return json_reply_text(cfg.reply, None)
    if isinstance(fmt, dict):
        return json_reply_text(cfg.reply, fmt)
    return cfg.reply


def chat(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /api/chat: NDJSON unless ``stream`` is false; honours num_predict, think, tools, format."""
    model = str(req.get("model", ""))
    messages = req.get("messages") or []
    stream = req.get("stream") is not False
    if not messages:  # an empty request only loads the model
        final: dict[str, Any] = {
            "model": model,
            "created_at": timestamps(1)[0],
            "message": {"role": "assistant", "content": ""},
        }
        final.update({"done_reason": "load", "done": True})
        return ndjson_reply([final]) if stream else json_reply(final, content_type=JSON_UTF8_CT)
    last_role = messages[-1].get("role") if isinstance(messages[-1], dict) else None
    tool = None if last_role == "tool" else pick_tool(req.get("tools"), None)
    thinking = THINKING_TEXT if _wants_thinking(req) else ""
    content, cut = ("", False) if tool else truncate_words(_reply_text(req, cfg), _num_predict(req))
    calls: list[dict[str, Any]] = []
    output_tokens = count_tokens(content) + count_tokens(thinking)
    if tool is not None:
        args = tool_arguments(tool[1])
        calls = [
            {
                "id": "call_" + rand_alnum(8).lower(),
                "function": {"index": 0, "name": tool[0], "arguments": args},
            }
        ]
        output_tokens += count_tokens(json.dumps(args))
    counters = timings(messages_input_tokens(messages), output_tokens)
    done = {"done": True, "done_reason": "length" if cut else "stop", **counters}
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        return json_reply(
            {"model": model, "created_at": timestamps(1)[0], "message": message, **done},
            content_type=JSON_UTF8_CT,
        )
    deltas: list[dict[str, Any]] = []
    deltas += [
        {"role": "assistant", "content": "", "thinking": p}
        for p in split_pieces(thinking, cfg.stream_chunks)
        if thinking
    ]
    deltas += [
        {"role": "assistant", "content": p} for p in split_pieces(content, cfg.stream_chunks) if content
    ]
    if calls:
        deltas.append({"role": "assistant", "content": "", "tool_calls": calls})
    stamps = timestamps(len(deltas) + 1)
    lines: list[dict[str, Any]] = [
        {"model": model, "created_at": stamps[i], "message": d, "done": False} for i, d in enumerate(deltas)
    ]
    lines.append(
        {"model": model, "created_at": stamps[-1], "message": {"role": "assistant", "content": ""}, **done}
    )
    return ndjson_reply(lines)


def _num_predict(req: dict[str, Any]) -> Any:
    options = req.get("options")
    return options.get("num_predict") if isinstance(options, dict) else None


def _context(text: str) -> list[int]:
    """A deterministic stand-in for generate's ``context`` (token ids of prompt + reply)."""
    return [zlib.crc32(w.encode("utf-8")) % 128000 for w in text.split()]


def generate(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /api/generate: like chat, with ``response`` text and a final ``context`` array."""
    model = str(req.get("model", ""))
    prompt = req.get("prompt") or ""
    stream = req.get("stream") is not False
    if not prompt:
        final = {
            "model": model,
            "created_at": timestamps(1)[0],
            "response": "",
            "done": True,
            "done_reason": "load",
        }
        return ndjson_reply([final]) if stream else json_reply(final, content_type=JSON_UTF8_CT)
    thinking = THINKING_TEXT if _wants_thinking(req) else ""
    text, cut = truncate_words(_reply_text(req, cfg), _num_predict(req))
    input_tokens = prompt_tokens(req.get("system") or "") + prompt_tokens(prompt)
    counters = timings(input_tokens, count_tokens(text) + count_tokens(thinking))
    done = {
        "done": True,
        "done_reason": "length" if cut else "stop",
        "context": _context(f"{prompt} {text}"),
        **counters,
    }
    if not stream:
        body: dict[str, Any] = {"model": model, "created_at": timestamps(1)[0], "response": text}
        if thinking:
            body["thinking"] = thinking
        return json_reply({**body, **done}, content_type=JSON_UTF8_CT)
    pieces: list[dict[str, Any]] = []
    pieces += [{"response": "", "thinking": p} for p in split_pieces(thinking, cfg.stream_chunks) if thinking]
    pieces += [{"response": p} for p in split_pieces(text, cfg.stream_chunks) if text]
    stamps = timestamps(len(pieces) + 1)
    lines: list[dict[str, Any]] = [
        {"model": model, "created_at": stamps[i], **p, "done": False} for i, p in enumerate(pieces)
    ]
    lines.append({"model": model, "created_at": stamps[-1], "response": "", **done})
    return ndjson_reply(lines)


def embed(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /api/embed: ``input`` string or list; one vector per input."""
    raw = req.get("input", "")
    inputs = [raw] if isinstance(raw, str) else [str(x) for x in raw] if isinstance(raw, list) else [str(raw)]
    dims = int(req.get("dimensions") or EMBED_DIMS)
    tokens = sum(count_tokens(x) for x in inputs)
    counters = timings(tokens, 0)
    body = {
        "model": str(req.get("model", "")),
        "embeddings": [embedding_vector(x, dims) for x in inputs],
        "total_duration": counters["total_duration"],
        "load_duration": LOAD_NS,
        "prompt_eval_count": tokens,
    }
    return json_reply(body, content_type=JSON_UTF8_CT)


def embeddings(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /api/embeddings (legacy): only ``{"embedding": [...]}``, exactly as Ollama answers."""
    vec = embedding_vector(str(req.get("prompt", "")), EMBED_DIMS)
    return json_reply({"embedding": vec}, content_type=JSON_UTF8_CT)


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    }


def tags(req: Any, cfg: ReplyConfig) -> Reply:
    """GET /api/tags: the models the fake server pretends to have."""
    models = [
        {
            "name": m,
            "model": m,
            "modified_at": "2024-05-24T20:00:00.000000Z",
            "size": 4661224676,
            "digest": hashlib.sha256(m.encode()).hexdigest(),
            "details": _details(),
        }
        for m in MODELS
    ]
    return json_reply({"models": models}, content_type=JSON_UTF8_CT)


def show(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /api/show: a minimal model description."""
    model = str(req.get("model") or req.get("name") or "")
    body = {
        "license": "",
        "modelfile": f"# Modelfile generated by llm-otel's fake server\nFROM {model}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _details(),
        "model_info": {"general.architecture": "llama"},
        "capabilities": ["completion", "tools", "thinking"],
        "modified_at": "2024-05-24T20:00:00.000000Z",
    }
    return json_reply(body, content_type=JSON_UTF8_CT)


def route(method: str, path: str, body: Any, cfg: ReplyConfig) -> Reply:
    """Dispatch an ``/api`` request; unknown models get Ollama's 404."""
    if method == "GET" and path == "/api/tags":
        return tags(body, cfg)
    if method == "GET" and path == "/api/version":
        return json_reply({"version": VERSION}, content_type=JSON_UTF8_CT)
    if method == "GET" and path == "/api/ps":
        return json_reply({"models": []}, content_type=JSON_UTF8_CT)
    if method == "GET" and path in ("/", ""):
        return Reply(headers={"content-type": "text/plain; charset=utf-8"}, body=b"Ollama is running")
    posts = {"/api/chat": chat, "/api/generate": generate, "/api/embed": embed, "/api/embeddings": embeddings}
    posts["/api/show"] = show
    handler = posts.get(path)
    if method != "POST" or handler is None:
        return Reply(404, {"content-type": "text/plain"}, b"404 page not found")
    if not isinstance(body, dict):
        return error_reply(400, "invalid request body")
    model = body.get("model") or body.get("name")
    if is_missing_model(model):
        return not_found_reply(str(model))
    return handler(body, cfg)
