"""Request side of an OpenAI call: span-start attributes from what the user actually passed.

Only parameters present in the call's keyword arguments are recorded (never the server's defaults), and
openai's ``NOT_GIVEN``/``omit`` sentinels count as absent. The provider and server address come from the
client's base URL.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from .. import semconv as sc
from ._call import Telemetry

OLLAMA_DEFAULT_PORT = 11434
_SENTINEL_NAMES = frozenset({"NotGiven", "Omit"})


def given(value: Any) -> TypeGuard[Any]:
    """Present in the call and not one of openai's NOT_GIVEN / omit sentinels."""
    return value is not None and type(value).__name__ not in _SENTINEL_NAMES


def server_and_provider(
    instance: Any, telemetry: Telemetry, azure_types: tuple[type, ...]
) -> tuple[str, dict[str, Any]]:
    """Provider name and server.address/port attributes for the resource's client."""
    client = getattr(instance, "_client", None)
    attrs: dict[str, Any] = {}
    host = port = None
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    if url is not None:
        host = getattr(url, "host", None)
        port = getattr(url, "port", None)
        if host:
            attrs[sc.SERVER_ADDRESS] = host
            if port is None:
                scheme = getattr(url, "scheme", "https")
                port = 443 if scheme == "https" else 80
            if port != 443:
                attrs[sc.SERVER_PORT] = port
    if azure_types and isinstance(client, azure_types):
        return sc.PROVIDER_AZURE_OPENAI, attrs
    hosts = telemetry.provider_hosts
    if hosts and host:
        mapped = hosts.get((host, port)) or hosts.get(host)
        if mapped:
            return mapped, attrs
    if port == OLLAMA_DEFAULT_PORT:
        return sc.PROVIDER_OLLAMA, attrs
    return sc.PROVIDER_OPENAI, attrs


def _common(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    v = kwargs.get("temperature")
    if given(v):
        attrs[sc.REQUEST_TEMPERATURE] = float(v)
    v = kwargs.get("top_p")
    if given(v):
        attrs[sc.REQUEST_TOP_P] = float(v)
    v = kwargs.get("frequency_penalty")
    if given(v):
        attrs[sc.REQUEST_FREQUENCY_PENALTY] = float(v)
    v = kwargs.get("presence_penalty")
    if given(v):
        attrs[sc.REQUEST_PRESENCE_PENALTY] = float(v)
    v = kwargs.get("seed")
    if given(v):
        attrs[sc.REQUEST_SEED] = int(v)
    v = kwargs.get("stop")
    if given(v):
        attrs[sc.REQUEST_STOP_SEQUENCES] = [v] if isinstance(v, str) else [str(s) for s in v]
    v = kwargs.get("n")
    if given(v) and v != 1:
        attrs[sc.REQUEST_CHOICE_COUNT] = int(v)
    v = kwargs.get("service_tier")
    if given(v):
        attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = str(v)
    if kwargs.get("stream") is True:
        attrs[sc.REQUEST_STREAM] = True


def _output_type(response_format: Any) -> str | None:
    if not given(response_format):
        return None
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            return "json"
        return "text" if kind == "text" else None
    # a pydantic model class passed to parse()
    return "json"


def chat_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    _common(kwargs, attrs)
    v = kwargs.get("max_completion_tokens")
    if not given(v):
        v = kwargs.get("max_tokens")
    if given(v):
        attrs[sc.REQUEST_MAX_TOKENS] = int(v)
    v = kwargs.get("reasoning_effort")
    if given(v):
        attrs[sc.REQUEST_REASONING_LEVEL] = str(v)
    out = _output_type(kwargs.get("response_format"))
    if out:
        attrs[sc.OUTPUT_TYPE] = out
    attrs[sc.OPENAI_API_TYPE] = "chat_completions"
    model = kwargs.get("model")
    return str(model) if given(model) else None


def responses_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    _common(kwargs, attrs)
    v = kwargs.get("max_output_tokens")
    if given(v):
        attrs[sc.REQUEST_MAX_TOKENS] = int(v)
    reasoning = kwargs.get("reasoning")
    if isinstance(reasoning, dict) and given(reasoning.get("effort")):
        attrs[sc.REQUEST_REASONING_LEVEL] = str(reasoning["effort"])
    v = kwargs.get("previous_response_id")
    if given(v):
        attrs[sc.REQUEST_PREVIOUS_RESPONSE_ID] = str(v)
    conversation = kwargs.get("conversation")
    if isinstance(conversation, str):
        attrs[sc.CONVERSATION_ID] = conversation
    elif isinstance(conversation, dict) and isinstance(conversation.get("id"), str):
        attrs[sc.CONVERSATION_ID] = conversation["id"]
    text = kwargs.get("text")
    if isinstance(text, dict):
        out = _output_type(text.get("format"))
        if out:
            attrs[sc.OUTPUT_TYPE] = out
    elif given(kwargs.get("text_format")):
        attrs[sc.OUTPUT_TYPE] = "json"
    attrs[sc.OPENAI_API_TYPE] = "responses"
    model = kwargs.get("model")
    return str(model) if given(model) else None


def embeddings_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    v = kwargs.get("dimensions")
    if given(v):
        attrs[sc.EMBEDDINGS_DIMENSION_COUNT] = int(v)
    v = kwargs.get("encoding_format")
    if given(v):
        attrs[sc.REQUEST_ENCODING_FORMATS] = [str(v)]
    model = kwargs.get("model")
    return str(model) if given(model) else None


def completions_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    _common(kwargs, attrs)
    v = kwargs.get("max_tokens")
    if given(v):
        attrs[sc.REQUEST_MAX_TOKENS] = int(v)
    model = kwargs.get("model")
    return str(model) if given(model) else None


def wants_stream_usage(kwargs: dict[str, Any]) -> bool:
    """True when a stream did not ask for usage: llm-otel asks for it and hides the extra chunk."""
    if kwargs.get("stream") is not True:
        return False
    options = kwargs.get("stream_options")
    if isinstance(options, dict) and "include_usage" in options:
        return False
    return not given(options) or isinstance(options, dict)


def inject_stream_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A copy of the kwargs with ``stream_options.include_usage`` set (the user's dict is untouched)."""
    options = kwargs.get("stream_options")
    merged = dict(options) if isinstance(options, dict) else {}
    merged["include_usage"] = True
    new_kwargs = dict(kwargs)
    new_kwargs["stream_options"] = merged
    return new_kwargs
