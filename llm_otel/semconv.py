"""Attribute names used on GenAI spans.

Names that `opentelemetry-semantic-conventions` defines are taken from it, each with its value as the
fallback: the oldest release llm-otel supports (0.51b0, pyproject.toml) lacks several of them, and an
application pinned to an older OpenTelemetry must still import llm-otel (``tests/test_min_versions.py``
checks every fallback equals the installed package's value). Names the GenAI conventions have added since
(or that are llm-otel's own) are defined here once, so every module (instrumentors, metrics, cost records)
reads the same constant.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _g
from opentelemetry.semconv._incubating.attributes import server_attributes as _s
from opentelemetry.semconv.attributes import error_attributes as _e

# --- from opentelemetry-semantic-conventions ---------------------------------------------------------
OPERATION: Final[str] = getattr(_g, "GEN_AI_OPERATION_NAME", "gen_ai.operation.name")
PROVIDER: Final[str] = getattr(_g, "GEN_AI_PROVIDER_NAME", "gen_ai.provider.name")
REQUEST_MODEL: Final[str] = getattr(_g, "GEN_AI_REQUEST_MODEL", "gen_ai.request.model")
REQUEST_MAX_TOKENS: Final[str] = getattr(_g, "GEN_AI_REQUEST_MAX_TOKENS", "gen_ai.request.max_tokens")
REQUEST_TEMPERATURE: Final[str] = getattr(_g, "GEN_AI_REQUEST_TEMPERATURE", "gen_ai.request.temperature")
REQUEST_TOP_P: Final[str] = getattr(_g, "GEN_AI_REQUEST_TOP_P", "gen_ai.request.top_p")
REQUEST_TOP_K: Final[str] = getattr(_g, "GEN_AI_REQUEST_TOP_K", "gen_ai.request.top_k")
REQUEST_FREQUENCY_PENALTY: Final[str] = getattr(
    _g, "GEN_AI_REQUEST_FREQUENCY_PENALTY", "gen_ai.request.frequency_penalty"
)
REQUEST_PRESENCE_PENALTY: Final[str] = getattr(
    _g, "GEN_AI_REQUEST_PRESENCE_PENALTY", "gen_ai.request.presence_penalty"
)
REQUEST_STOP_SEQUENCES: Final[str] = getattr(
    _g, "GEN_AI_REQUEST_STOP_SEQUENCES", "gen_ai.request.stop_sequences"
)
REQUEST_SEED: Final[str] = getattr(_g, "GEN_AI_REQUEST_SEED", "gen_ai.request.seed")
REQUEST_CHOICE_COUNT: Final[str] = getattr(_g, "GEN_AI_REQUEST_CHOICE_COUNT", "gen_ai.request.choice.count")
REQUEST_ENCODING_FORMATS: Final[str] = getattr(
    _g, "GEN_AI_REQUEST_ENCODING_FORMATS", "gen_ai.request.encoding_formats"
)
REQUEST_STREAM: Final[str] = getattr(_g, "GEN_AI_REQUEST_STREAM", "gen_ai.request.stream")
OUTPUT_TYPE: Final[str] = getattr(_g, "GEN_AI_OUTPUT_TYPE", "gen_ai.output.type")
RESPONSE_ID: Final[str] = getattr(_g, "GEN_AI_RESPONSE_ID", "gen_ai.response.id")
RESPONSE_MODEL: Final[str] = getattr(_g, "GEN_AI_RESPONSE_MODEL", "gen_ai.response.model")
RESPONSE_FINISH_REASONS: Final[str] = getattr(
    _g, "GEN_AI_RESPONSE_FINISH_REASONS", "gen_ai.response.finish_reasons"
)
RESPONSE_TIME_TO_FIRST_CHUNK: Final[str] = getattr(
    _g, "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK", "gen_ai.response.time_to_first_chunk"
)
USAGE_INPUT_TOKENS: Final[str] = getattr(_g, "GEN_AI_USAGE_INPUT_TOKENS", "gen_ai.usage.input_tokens")
USAGE_OUTPUT_TOKENS: Final[str] = getattr(_g, "GEN_AI_USAGE_OUTPUT_TOKENS", "gen_ai.usage.output_tokens")
USAGE_CACHE_READ_INPUT_TOKENS: Final[str] = getattr(
    _g, "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS", "gen_ai.usage.cache_read.input_tokens"
)
USAGE_REASONING_OUTPUT_TOKENS: Final[str] = getattr(
    _g, "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS", "gen_ai.usage.reasoning.output_tokens"
)
EMBEDDINGS_DIMENSION_COUNT: Final[str] = getattr(
    _g, "GEN_AI_EMBEDDINGS_DIMENSION_COUNT", "gen_ai.embeddings.dimension.count"
)
CONVERSATION_ID: Final[str] = getattr(_g, "GEN_AI_CONVERSATION_ID", "gen_ai.conversation.id")
INPUT_MESSAGES: Final[str] = getattr(_g, "GEN_AI_INPUT_MESSAGES", "gen_ai.input.messages")
OUTPUT_MESSAGES: Final[str] = getattr(_g, "GEN_AI_OUTPUT_MESSAGES", "gen_ai.output.messages")
SYSTEM_INSTRUCTIONS: Final[str] = getattr(_g, "GEN_AI_SYSTEM_INSTRUCTIONS", "gen_ai.system_instructions")
SERVER_ADDRESS: Final[str] = getattr(_s, "SERVER_ADDRESS", "server.address")
SERVER_PORT: Final[str] = getattr(_s, "SERVER_PORT", "server.port")
ERROR_TYPE: Final[str] = getattr(_e, "ERROR_TYPE", "error.type")

# --- newer GenAI conventions, not yet in the Python package ------------------------------------------
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
REQUEST_REASONING_LEVEL: Final = "gen_ai.request.reasoning.level"
REQUEST_PREVIOUS_RESPONSE_ID: Final = "gen_ai.request.previous_response.id"
OPENAI_API_TYPE: Final = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
# Per-modality subsets of the input / output / cache-read counts (only what the response reports).
USAGE_TEXT_INPUT_TOKENS: Final = "gen_ai.usage.text.input_tokens"
USAGE_IMAGE_INPUT_TOKENS: Final = "gen_ai.usage.image.input_tokens"
USAGE_AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"
USAGE_TEXT_OUTPUT_TOKENS: Final = "gen_ai.usage.text.output_tokens"
USAGE_IMAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.image.output_tokens"
USAGE_AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"
USAGE_TEXT_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.text.cache_read.input_tokens"
USAGE_IMAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.image.cache_read.input_tokens"
USAGE_AUDIO_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.audio.cache_read.input_tokens"

# --- cost (no merged convention yet; the name OpenLIT writes and Langfuse reads) ----------------------
USAGE_COST: Final = "gen_ai.usage.cost"

# --- llm-otel's own ----------------------------------------------------------------------------------
COST_INPUT: Final = "llm_otel.cost.input"
COST_OUTPUT: Final = "llm_otel.cost.output"
PRICING_STATUS: Final = "llm_otel.pricing.status"
PRICING_SOURCE: Final = "llm_otel.pricing.source"
#: Why an ``unpriced`` call has no cost: :data:`UNPRICED_UNKNOWN_MODEL` or :data:`UNPRICED_NO_USAGE`.
PRICING_REASON: Final = "llm_otel.pricing.reason"
STREAM_ABANDONED: Final = "llm_otel.stream.abandoned"
#: Chunks a stream delivered (every chunk the client yielded, a usage chunk llm-otel hides included).
STREAM_CHUNKS: Final = "llm_otel.stream.chunks"
#: Mean seconds between chunks after the first: (last - first) / (chunks - 1); only with 2 chunks or more.
#: The metrics derive the conventions' ``gen_ai.client.operation.time_per_output_chunk`` from it.
STREAM_TIME_PER_OUTPUT_CHUNK: Final = "llm_otel.stream.time_per_output_chunk"
#: True when captured message content was cut to ``content_max_total_chars`` (trailing messages dropped).
CONTENT_TRUNCATED: Final = "llm_otel.content.truncated"
#: A caller-given id for the call's cost record (``record_usage(id=...)``): re-submitting is deduplicated.
RECORD_ID: Final = "llm_otel.record.id"
#: User cost-attribution tags (``llm_otel.attributes(tenant=...)``) are written as ``llm_otel.tag.<key>``.
TAG_PREFIX: Final = "llm_otel.tag."
#: Resource attribute that carries the organization id of cost records.
RESOURCE_ORGANIZATION_ID: Final = "llm_otel.organization_id"
# Ollama server timings, in seconds.
OLLAMA_TOTAL_DURATION: Final = "ollama.response.total_duration"
OLLAMA_LOAD_DURATION: Final = "ollama.response.load_duration"
OLLAMA_PROMPT_EVAL_DURATION: Final = "ollama.response.prompt_eval_duration"
OLLAMA_EVAL_DURATION: Final = "ollama.response.eval_duration"
OLLAMA_OUTPUT_TOKENS_PER_SECOND: Final = "ollama.response.output_tokens_per_second"

# --- values ------------------------------------------------------------------------------------------
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
#: Retrieving a response made earlier (OpenAI ``responses.retrieve``, stream resume): not a new generation.
OP_FETCH_RESPONSE: Final = "fetch_response"
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"
PROVIDER_OLLAMA: Final = "ollama"
PRICING_PRICED: Final = "priced"
PRICING_LOCAL: Final = "local"
PRICING_UNPRICED: Final = "unpriced"
#: ``error.type`` of a stream that ended without its final chunk (cut off by the server; nothing raised).
ERROR_STREAM_INCOMPLETE: Final = "llm_otel.stream.incomplete"
#: No price entry matches the provider and model.
UNPRICED_UNKNOWN_MODEL: Final = "unknown_model"
#: The model has a price, but the server reported no token counts (e.g. a stream without a usage chunk).
UNPRICED_NO_USAGE: Final = "no_usage"
#: Instrumentation scope name of every GenAI span llm-otel creates; processors use it to pick our spans.
SCOPE_NAME: Final = "llm_otel"
