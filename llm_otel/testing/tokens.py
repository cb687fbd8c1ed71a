"""Deterministic token accounting of the fake server.

Tests need to know, before a call, exactly which token counts the server will report. The fake server
therefore uses a documented word count instead of a tokenizer:

* ``count_tokens(text)`` = number of whitespace-separated words (``len(text.split())``).
* Messages (OpenAI chat, Ollama chat, Responses API input items and ``instructions``): each message costs
  ``count_tokens(its text) + MESSAGE_OVERHEAD`` (3). A message's text is its ``content`` string, or the
  ``text`` of its content parts joined by a space; for Responses ``function_call_output`` items, ``output``.
  A plain-string Responses ``input`` counts as one message.
* Raw prompts (legacy completions ``prompt``, Ollama generate ``system`` + ``prompt``, embeddings inputs):
  ``count_tokens`` of each string, no overhead; a token array counts ``len(array)``.
* Output: ``count_tokens`` of the reply text actually sent (after truncation), times ``n`` choices; a tool
  call reply counts ``count_tokens(arguments JSON)``; Ollama thinking text is counted too.
* ``reasoning_tokens`` (configure) are added to the output tokens and reported in the details, as the real
  API counts reasoning inside ``completion_tokens``. ``cached_tokens`` and ``cache_write_tokens`` are
  clamped so that ``cached <= input`` and ``cached + cache_write <= input``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .wire import ReplyConfig

MESSAGE_OVERHEAD = 3
"""Tokens added per chat message (role and separators, roughly what real chat templates cost)."""

_PIECE_RE = re.compile(r"\s*\S+")


def count_tokens(text: str | None) -> int:
    """Number of whitespace-separated words in ``text`` (the fake server's token count)."""
    return len(text.split()) if text else 0


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return " ".join(texts)
    return ""


def messages_input_tokens(messages: Any) -> int:
    """Input tokens of a chat ``messages`` list: words of each message plus MESSAGE_OVERHEAD."""
    if not isinstance(messages, list):
        return 0
    return sum(
        count_tokens(content_text(m.get("content"))) + MESSAGE_OVERHEAD
        for m in messages
        if isinstance(m, dict)
    )


def responses_input_tokens(input_: Any, instructions: Any) -> int:
    """Input tokens of a Responses API request (``instructions`` counts as one more message)."""
    total = 0
    if isinstance(instructions, str) and instructions:
        total += count_tokens(instructions) + MESSAGE_OVERHEAD
    if isinstance(input_, str):
        return total + count_tokens(input_) + MESSAGE_OVERHEAD
    if isinstance(input_, list):
        for item in input_:
            if not isinstance(item, dict):
                continue
            text = content_text(item.get("content"))
            if not text and isinstance(item.get("output"), str):
                text = item["output"]
            total += count_tokens(text) + MESSAGE_OVERHEAD
    return total


def prompt_tokens(prompt: Any) -> int:
    """Tokens of a raw prompt: a string, a list of strings, a token array or a list of token arrays."""
    if isinstance(prompt, str):
        return count_tokens(prompt)
    if isinstance(prompt, list):
        if all(isinstance(t, int) for t in prompt):
            return len(prompt)
        return sum(prompt_tokens(p) for p in prompt)
    return 0


def split_words(text: str) -> list[str]:
    """Split text into word pieces that keep their leading whitespace (``"a b"`` -> ``["a", " b"]``)."""
    pieces = _PIECE_RE.findall(text)
    tail = text[sum(len(p) for p in pieces) :]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def split_pieces(text: str, n: int | None) -> list[str]:
    """Stream pieces: one per word, or exactly ``n`` near-equal character slices when ``n`` is set."""
    if n is None:
        return split_words(text)
    n = max(1, int(n))
    size = len(text)
    return [text[i * size // n : (i + 1) * size // n] for i in range(n)]


def truncate_words(text: str, limit: Any) -> tuple[str, bool]:
    """Keep at most ``limit`` words (``limit`` None or negative: no limit); also say whether it cut."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        return text, False
    pieces = split_words(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[:limit]).rstrip(), True


def sum_tokens(texts: Iterable[str]) -> int:
    """Total ``count_tokens`` over several texts."""
    return sum(count_tokens(t) for t in texts)


def _clamped(cfg: ReplyConfig, input_tokens: int) -> tuple[int, int]:
    cached = max(0, min(cfg.cached_tokens, input_tokens))
    write = max(0, min(cfg.cache_write_tokens, input_tokens - cached))
    return cached, write


def chat_usage(
    input_tokens: int, visible_output: int, cfg: ReplyConfig, *, details: bool = True
) -> dict[str, Any]:
    """``CompletionUsage``; reasoning tokens are part of ``completion_tokens`` like the real API."""
    output = visible_output + max(0, cfg.reasoning_tokens)
    usage: dict[str, Any] = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output,
        "total_tokens": input_tokens + output,
    }
    cached, write = _clamped(cfg, input_tokens)
    if not details and not (cached or write or cfg.reasoning_tokens):
        return usage  # legacy completions report no token details
    prompt_details: dict[str, Any] = {"cached_tokens": cached, "audio_tokens": 0}
    if write:
        prompt_details["cache_write_tokens"] = write
    usage["prompt_tokens_details"] = prompt_details
    usage["completion_tokens_details"] = {
        "reasoning_tokens": max(0, cfg.reasoning_tokens),
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    return usage


def responses_usage(input_tokens: int, visible_output: int, cfg: ReplyConfig) -> dict[str, Any]:
    """``ResponseUsage`` of the Responses API."""
    reasoning = max(0, cfg.reasoning_tokens)
    cached, write = _clamped(cfg, input_tokens)
    input_details: dict[str, Any] = {"cached_tokens": cached}
    if write:
        input_details["cache_write_tokens"] = write
    output = visible_output + reasoning
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": input_details,
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output,
    }
