"""OpenAI HTTP API (``/v1/...``) of the fake server, with the fields, headers and errors OpenAI sends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .responses_routes import responses
from .synth import (
    embedding_vector,
    float32_base64,
    json_reply_text,
    pick_tool,
    rand_alnum,
    rand_hex,
    tool_arguments,
)
from .tokens import (
    chat_usage,
    count_tokens,
    messages_input_tokens,
    prompt_tokens,
    split_pieces,
    truncate_words,
)
from .wire import JSON_CT, JSON_UTF8_CT, Reply, ReplyConfig, json_reply, sse_reply

SYSTEM_FINGERPRINT = "fp_f4ce11e0a1"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "gpt-5-nano", "text-embedding-3-small", "davinci-002")
LEGACY_COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # the real /v1/completions default


def is_missing_model(model: Any) -> bool:
    """Models the fake server does not know: names starting with missing/nonexistent/non-existent."""
    name = str(model or "").lower()
    return name == "this-model-does-not-exist" or name.startswith(("missing", "nonexistent", "non-existent"))


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_reply(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> Reply:
    return json_reply(error_body(message, type_, code, param), status, pretty=True, content_type=JSON_UTF8_CT)


def rate_limit_reply(model: str) -> Reply:
    return error_reply(
        429,
        f"Rate limit reached for {model or 'the model'} in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
        "requests",
        "rate_limit_exceeded",
    )


def server_error_reply() -> Reply:
    return error_reply(
        500, "The server had an error while processing your request. Sorry about that!", "server_error", None
    )


def openai_headers() -> dict[str, str]:
    """Headers every real OpenAI response carries (request id, processing time, API version)."""
    return {
        "x-request-id": "req_" + rand_hex(32),
        "openai-processing-ms": "1",
        "openai-version": "2020-10-01",
        "openai-organization": "user-fake",
    }


# ---------------------------------------------------------------------------------- chat completions


def _chat_content(req: dict[str, Any], cfg: ReplyConfig) -> str:
    fmt = req.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return json_reply_text(cfg.reply, (fmt.get("json_schema") or {}).get("schema") or {})
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return json_reply_text(cfg.reply, None)
    return cfg.reply


def _last_role(messages: Any) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return messages[-1].get("role")
    return None


def chat_completions(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /v1/chat/completions (JSON or SSE)."""
    model = str(req.get("model", ""))
    messages = req.get("messages")
    n = max(1, int(req.get("n") or 1))
    input_tokens = messages_input_tokens(messages)
    tool = None if _last_role(messages) == "tool" else pick_tool(req.get("tools"), req.get("tool_choice"))
    content: str | None = None
    arguments = ""
    if tool is not None:
        arguments = json.dumps(tool_arguments(tool[1]))
        finish, visible = "tool_calls", count_tokens(arguments)
    else:
        limit = req.get("max_completion_tokens", req.get("max_tokens"))
        content, cut = truncate_words(_chat_content(req, cfg), limit)
        finish, visible = ("length" if cut else "stop"), count_tokens(content)
    usage = chat_usage(input_tokens, visible * n, cfg)
    cid, created = "chatcmpl-" + rand_alnum(29), int(time.time())
    call_ids = ["call_" + rand_alnum(24) for _ in range(n)]
    if req.get("stream"):
        options: dict[str, Any] = req["stream_options"] if isinstance(req.get("stream_options"), dict) else {}
        return _chat_stream(
            cid, created, model, n, content, tool, arguments, call_ids, finish, usage, options, cfg
        )
    choices = []
    for i in range(n):
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool is not None:
            message["tool_calls"] = [
                {"id": call_ids[i], "type": "function", "function": {"name": tool[0], "arguments": arguments}}
            ]
        message["refusal"] = None
        message["annotations"] = []
        choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
    body = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    return json_reply(body, pretty=True)


def _chat_stream(
    cid: str,
    created: int,
    model: str,
    n: int,
    content: str | None,
    tool: tuple[str, dict[str, Any]] | None,
    arguments: str,
    call_ids: list[str],
    finish: str,
    usage: dict[str, Any],
    stream_options: dict[str, Any],
    cfg: ReplyConfig,
) -> Reply:
    """SSE chunks shaped like the newest recording (``service_tier``, ``obfuscation``).

    ``usage: null`` is on every chunk only when usage was requested; without ``include_usage`` the key is
    absent, exactly as OpenAI streams it.
    """
    include_usage = bool(stream_options.get("include_usage"))
    obfuscate = stream_options.get("include_obfuscation", True) is not False

    def chunk(choices: list[dict[str, Any]], final_usage: dict[str, Any] | None = None) -> tuple[None, Any]:
        data: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            data["usage"] = final_usage
        if obfuscate:
            data["obfuscation"] = rand_alnum(10)
        return None, data

    def choice(i: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    # per choice: the list of deltas after the role delta
    per_choice: list[list[dict[str, Any]]] = []
    for i in range(n):
        if tool is not None:
            head = {
                "index": 0,
                "id": call_ids[i],
                "type": "function",
                "function": {"name": tool[0], "arguments": ""},
            }
            deltas: list[dict[str, Any]] = [{"tool_calls": [head]}]
            deltas += [
                {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}
                for p in split_pieces(arguments, cfg.stream_chunks)
            ]
        else:
            deltas = [{"content": p} for p in split_pieces(content or "", cfg.stream_chunks)]
        per_choice.append(deltas)
    role_delta: dict[str, Any] = (
        {"role": "assistant", "content": None}
        if tool is not None
        else {"role": "assistant", "content": "", "refusal": None}
    )
    events: list[tuple[str | None, Any]] = []
    steps = max(len(d) for d in per_choice) + 1
    for step in range(steps):  # interleave choices as OpenAI's n=2 streams do
        for i in range(n):
            if step == 0:
                events.append(chunk([choice(i, dict(role_delta))]))
            elif step - 1 < len(per_choice[i]):
                events.append(chunk([choice(i, per_choice[i][step - 1])]))
    events += [chunk([choice(i, {}, finish)]) for i in range(n)]
    if include_usage:
        events.append(chunk([], usage))
    return sse_reply(events)


# ------------------------------------------------------------------------------- legacy completions


def completions(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /v1/completions (``text_completion``, JSON or SSE)."""
    model = str(req.get("model", ""))
    prompt = req.get("prompt", "")
    prompts = prompt if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else [prompt]
    n = max(1, int(req.get("n") or 1))
    limit = req.get("max_tokens", LEGACY_COMPLETIONS_DEFAULT_MAX_TOKENS)
    text, cut = truncate_words(cfg.reply, limit)
    finish = "length" if cut else "stop"
    texts = []
    for p in prompts:
        echo = p if req.get("echo") and isinstance(p, str) else ""
        texts.extend([echo + text] * n)
    usage = chat_usage(prompt_tokens(prompt), count_tokens(text) * len(texts), cfg, details=False)
    cid, created = "cmpl-" + rand_alnum(29), int(time.time())
    if not req.get("stream"):
        choices = [
            {"text": t, "index": i, "logprobs": None, "finish_reason": finish} for i, t in enumerate(texts)
        ]
        body = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
        }
        body["usage"] = usage
        return json_reply(body, pretty=True)
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))

    def chunk(choices: list[dict[str, Any]], final_usage: dict[str, Any] | None = None) -> tuple[None, Any]:
        data: dict[str, Any] = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "choices": choices,
            "model": model,
        }
        if include_usage:
            data["usage"] = final_usage
        return None, data

    events = []
    for i, t in enumerate(texts):
        pieces = split_pieces(t, cfg.stream_chunks) or [""]
        for k, piece in enumerate(pieces):  # the last piece carries finish_reason, as OpenAI sends it
            last = k == len(pieces) - 1
            choice = {"text": piece, "index": i, "logprobs": None, "finish_reason": finish if last else None}
            events.append(chunk([choice]))
    if include_usage:
        events.append(chunk([], usage))
    reply = sse_reply(events)
    reply.headers["content-type"] = "text/event-stream"  # as OpenAI sends it for /v1/completions
    return reply


# ------------------------------------------------------------------------------------------ embeddings


def _default_dims(model: str) -> int:
    return 3072 if "large" in model else 1536


def embeddings(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /v1/embeddings: ``encoding_format`` float (lists) or base64 (little-endian float32)."""
    model = str(req.get("model", ""))
    raw = req.get("input", "")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        inputs: list[Any] = [raw]
    else:
        inputs = list(raw) if isinstance(raw, list) else [raw]
    dims = req.get("dimensions") or _default_dims(model)
    b64 = req.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(inputs):
        vec = embedding_vector(item if isinstance(item, str) else json.dumps(item), int(dims))
        data.append({"object": "embedding", "index": i, "embedding": float32_base64(vec) if b64 else vec})
    tokens = sum(prompt_tokens(item) for item in inputs)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json_reply(body, pretty=True)


# ------------------------------------------------------------------------------------------- models


def list_models(req: Any, cfg: ReplyConfig) -> Reply:
    """GET /v1/models."""
    data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in MODELS]
    return json_reply({"object": "list", "data": data}, pretty=True)


# -------------------------------------------------------------------------------------------- routing

Route = Callable[[Any, ReplyConfig], Reply]


def route(method: str, path: str, body: Any, cfg: ReplyConfig) -> Reply:
    """Dispatch a ``/v1`` request; unknown models get OpenAI's 404 (400 for the Responses API)."""
    table: dict[tuple[str, str], Route] = {
        ("POST", "/v1/chat/completions"): chat_completions,
        ("POST", "/v1/completions"): completions,
        ("POST", "/v1/embeddings"): embeddings,
        ("POST", "/v1/responses"): responses,
        ("GET", "/v1/models"): list_models,
    }
    handler = table.get((method, path))
    if handler is None:
        if method == "GET" and path.startswith("/v1/models/"):
            model_id = path.rsplit("/", 1)[-1]
            if is_missing_model(model_id):
                return _not_found(model_id)
            return json_reply(
                {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "system"}, pretty=True
            )
        return error_reply(404, f"Invalid URL ({method} {path})", "invalid_request_error", None)
    if method == "POST" and not isinstance(body, dict):
        return error_reply(
            400, "We could not parse the JSON body of your request.", "invalid_request_error", None
        )
    model = body.get("model") if isinstance(body, dict) else None
    if method == "POST" and is_missing_model(model):
        if path == "/v1/responses":  # the Responses API answers 400 for an unknown model
            reply = error_reply(
                400,
                f"The requested model '{model}' does not exist.",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
            reply.headers["content-type"] = JSON_CT
            return reply
        return _not_found(str(model))
    return handler(body, cfg)


def _not_found(model: str) -> Reply:
    return error_reply(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )
