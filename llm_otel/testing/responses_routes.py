"""OpenAI Responses API (``POST /v1/responses``): the objects and stream events OpenAI sends."""

from __future__ import annotations

import json
import time
from typing import Any

from .synth import json_reply_text, pick_tool, rand_alnum, rand_hex, tool_arguments
from .tokens import count_tokens, responses_input_tokens, responses_usage, split_pieces, truncate_words
from .wire import Reply, ReplyConfig, json_reply, sse_reply


def _text_format(req: dict[str, Any]) -> dict[str, Any]:
    fmt = (req.get("text") or {}).get("format")
    return fmt if isinstance(fmt, dict) else {"type": "text"}


def _reply_text(req: dict[str, Any], cfg: ReplyConfig) -> str:
    fmt = _text_format(req)
    if fmt.get("type") == "json_schema":
        return json_reply_text(cfg.reply, fmt.get("schema") or {})
    if fmt.get("type") == "json_object":
        return json_reply_text(cfg.reply, None)
    return cfg.reply


def _echo_tool(tool: Any) -> Any:
    """Tools as the API echoes them: function tools gain ``strict: true`` unless the request set it."""
    if isinstance(tool, dict) and tool.get("type") == "function" and "strict" not in tool:
        return {**tool, "strict": True}
    return tool


def _wants_tool(req: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    items = req.get("input")
    last = items[-1] if isinstance(items, list) and items else None
    if isinstance(last, dict) and last.get("type") == "function_call_output":
        return None
    return pick_tool(req.get("tools"), req.get("tool_choice"))


def _response_object(
    req: dict[str, Any],
    rid: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    billing: bool,
    incomplete: bool = False,
) -> dict[str, Any]:
    """The ``response`` object with the recorded field order."""
    reasoning: dict[str, Any] = req["reasoning"] if isinstance(req.get("reasoning"), dict) else {}
    obj: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": bool(req.get("background", False)),
    }
    if billing:
        obj["billing"] = {"payer": "developer"}
    obj.update(
        {
            "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
            "error": None,
            "frequency_penalty": 0.0,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "max_tool_calls": req.get("max_tool_calls"),
            "model": str(req.get("model", "")),
            "output": output,
            "parallel_tool_calls": req.get("parallel_tool_calls", True),
            "presence_penalty": 0.0,
            "previous_response_id": req.get("previous_response_id"),
            "prompt_cache_key": req.get("prompt_cache_key"),
            "prompt_cache_retention": "in_memory",
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": req.get("safety_identifier"),
            "service_tier": "default",
            "store": req.get("store", True),
            "temperature": float(req.get("temperature", 1.0)),
            "text": {"format": _text_format(req), "verbosity": "medium"},
            "tool_choice": req.get("tool_choice", "auto"),
            "tools": [_echo_tool(t) for t in req.get("tools") or []],
            "top_logprobs": 0,
            "top_p": float(req.get("top_p", 1.0)),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": req.get("metadata") or {},
        }
    )
    return obj


def responses(req: dict[str, Any], cfg: ReplyConfig) -> Reply:
    """POST /v1/responses: a ``response`` object, or the recorded event sequence when streaming."""
    rid, created = "resp_" + rand_hex(50), int(time.time())
    input_tokens = responses_input_tokens(req.get("input"), req.get("instructions"))
    output: list[dict[str, Any]] = []
    if cfg.reasoning_tokens > 0:
        output.append({"id": "rs_" + rand_hex(50), "type": "reasoning", "summary": []})
    tool = _wants_tool(req)
    cut = False
    if tool is not None:
        arguments = json.dumps(tool_arguments(tool[1]))
        visible = count_tokens(arguments)
        output.append(
            {
                "id": "fc_" + rand_hex(50),
                "type": "function_call",
                "status": "completed",
                "arguments": arguments,
                "call_id": "call_" + rand_alnum(24),
                "name": tool[0],
            }
        )
    else:
        text, cut = truncate_words(_reply_text(req, cfg), req.get("max_output_tokens"))
        visible = count_tokens(text)
        output.append(
            {
                "id": "msg_" + rand_hex(50),
                "type": "message",
                "status": "incomplete" if cut else "completed",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
                "role": "assistant",
            }
        )
    usage = responses_usage(input_tokens, visible, cfg)
    status = "incomplete" if cut else "completed"
    if not req.get("stream"):
        body = _response_object(req, rid, created, status, output, usage, billing=True, incomplete=cut)
        return json_reply(body, pretty=True)
    return _stream(req, rid, created, status, output, usage, cut, cfg)


def _stream(
    req: dict[str, Any],
    rid: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any],
    cut: bool,
    cfg: ReplyConfig,
) -> Reply:
    events: list[tuple[str | None, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, **fields, "sequence_number": len(events)}))

    pending = _response_object(req, rid, created, "in_progress", [], None, billing=False)
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(output):
        if item["type"] == "reasoning":
            emit("response.output_item.added", item=item, output_index=index)
            emit("response.output_item.done", item=item, output_index=index)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                item={**item, "status": "in_progress", "arguments": ""},
                output_index=index,
            )
            for piece in split_pieces(item["arguments"], cfg.stream_chunks):
                emit(
                    "response.function_call_arguments.delta",
                    delta=piece,
                    item_id=item["id"],
                    obfuscation=rand_alnum(max(1, 16 - len(piece))),
                    output_index=index,
                )
            emit(
                "response.function_call_arguments.done",
                arguments=item["arguments"],
                item_id=item["id"],
                output_index=index,
            )
            emit("response.output_item.done", item=item, output_index=index)
        else:
            _emit_message(emit, item, index, cfg)
    final = _response_object(req, rid, created, status, output, usage, billing=False, incomplete=cut)
    emit("response.incomplete" if cut else "response.completed", response=final)
    return sse_reply(events, done=False)


def _emit_message(emit: Any, item: dict[str, Any], index: int, cfg: ReplyConfig) -> None:
    text = item["content"][0]["text"]
    ids = {"item_id": item["id"]}
    emit(
        "response.output_item.added",
        item={**item, "status": "in_progress", "content": []},
        output_index=index,
    )
    empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    emit("response.content_part.added", content_index=0, **ids, output_index=index, part=empty_part)
    for piece in split_pieces(text, cfg.stream_chunks):
        emit(
            "response.output_text.delta",
            content_index=0,
            delta=piece,
            **ids,
            logprobs=[],
            obfuscation=rand_alnum(max(1, 16 - len(piece))),
            output_index=index,
        )
    emit("response.output_text.done", content_index=0, **ids, logprobs=[], output_index=index, text=text)
    emit("response.content_part.done", content_index=0, **ids, output_index=index, part=item["content"][0])
    emit("response.output_item.done", item=item, output_index=index)
