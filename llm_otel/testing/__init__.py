"""A local fake LLM HTTP server speaking the OpenAI and Ollama wire protocols, for tests and demos.

    from llm_otel.testing import FakeLLMServer
    with FakeLLMServer() as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="test")
        ollama_client = ollama.Client(host=srv.ollama_host)

Token counts are deterministic: ``count_tokens(text)`` is the number of whitespace-separated words; a chat
message costs its words + ``MESSAGE_OVERHEAD`` (3); raw prompts and embedding inputs cost their words;
output tokens are the words of the reply sent (times ``n``) plus the configured ``reasoning_tokens``.
The full formula is in :mod:`llm_otel.testing.tokens`; fault kinds, and ``respond_with()`` (answer with a
given JSON body or list of stream chunks, for responses no real server sends), are in
:mod:`llm_otel.testing.server`.
"""

from __future__ import annotations

from .ollama_routes import THINKING_TEXT
from .server import DEFAULT_REPLY, FAULT_KINDS, FakeLLMServer, RecordedRequest
from .tokens import (
    MESSAGE_OVERHEAD,
    count_tokens,
    messages_input_tokens,
    prompt_tokens,
    responses_input_tokens,
)
from .wire import ReplyConfig

__all__ = [
    "DEFAULT_REPLY",
    "FAULT_KINDS",
    "MESSAGE_OVERHEAD",
    "THINKING_TEXT",
    "FakeLLMServer",
    "RecordedRequest",
    "ReplyConfig",
    "count_tokens",
    "messages_input_tokens",
    "prompt_tokens",
    "responses_input_tokens",
]
