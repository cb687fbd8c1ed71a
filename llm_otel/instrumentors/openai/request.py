"""Request side of an OpenAI call: span-start attributes from what the user actually passed.

Only parameters present in the request body are recorded (never the server's defaults), and openai's
``NOT_GIVEN``/``omit`` sentinels count as absent. The body is the call's keywords merged with
``extra_body`` the way openai builds it (``{**keywords, **extra_body}``, ``omit`` values dropped: a key in
``extra_body`` wins over the keyword); without ``extra_body`` the keywords are read as they are, no copy.
``stream`` is the exception: the client reads the answer as a stream only for the ``stream`` keyword, so
that is what the span records. Also here: asking a stream for its usage chunk
when the user did not (the chunk is then hidden from them). The provider and server address come from the
client's base URL, in ``instrumentors/server.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from ... import semconv as sc

_SENTINEL_NAMES = frozenset({"NotGiven", "Omit"})


def given(value: Any) -> TypeGuard[Any]:
    """Present in the call and not one of openai's NOT_GIVEN / omit sentinels."""
    return value is not None and type(value).__name__ not in _SENTINEL_NAMES


def _stop(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _choices(value: Any) -> int | None:
    return None if value == 1 else int(value)


def _true(value: Any) -> bool | None:
    return True if value is True else None


def _output_type(response_format: Any) -> str | None:
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            return "json"
        return "text" if kind == "text" else None
    return "json"  # a pydantic model class passed to parse()


def _text_format(text: Any) -> str | None:
    return _output_type(text.get("format")) if isinstance(text, dict) and text.get("format") else None


def _effort(reasoning: Any) -> str | None:
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return str(effort) if given(effort) else None


def _conversation(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    conv_id = value.get("id") if isinstance(value, dict) else None
    return conv_id if isinstance(conv_id, str) else None


def _encoding(value: Any) -> tuple[str, ...]:
    return (str(value),)


def _json(_: Any) -> str:
    return "json"


#: keyword -> (attribute, converter). A converter returning None records nothing.
_Table = dict[str, tuple[str, Callable[[Any], Any]]]
_COMMON: _Table = {
    "temperature": (sc.REQUEST_TEMPERATURE, float),
    "top_p": (sc.REQUEST_TOP_P, float),
    "frequency_penalty": (sc.REQUEST_FREQUENCY_PENALTY, float),
    "presence_penalty": (sc.REQUEST_PRESENCE_PENALTY, float),
    "seed": (sc.REQUEST_SEED, int),
    "stop": (sc.REQUEST_STOP_SEQUENCES, _stop),
    "n": (sc.REQUEST_CHOICE_COUNT, _choices),
    "service_tier": (sc.OPENAI_REQUEST_SERVICE_TIER, str),
    "stream": (sc.REQUEST_STREAM, _true),
}
CHAT_PARAMS: _Table = {
    **_COMMON,
    "max_tokens": (sc.REQUEST_MAX_TOKENS, int),
    "reasoning_effort": (sc.REQUEST_REASONING_LEVEL, str),
    "response_format": (sc.OUTPUT_TYPE, _output_type),
    "max_completion_tokens": (sc.REQUEST_MAX_TOKENS, int),
}
RESPONSES_PARAMS: _Table = {
    **_COMMON,
    "max_output_tokens": (sc.REQUEST_MAX_TOKENS, int),
    "reasoning": (sc.REQUEST_REASONING_LEVEL, _effort),
    "previous_response_id": (sc.REQUEST_PREVIOUS_RESPONSE_ID, str),
    "conversation": (sc.CONVERSATION_ID, _conversation),
    "text": (sc.OUTPUT_TYPE, _text_format),
    "text_format": (sc.OUTPUT_TYPE, _json),
}
EMBEDDINGS_PARAMS: _Table = {
    "dimensions": (sc.EMBEDDINGS_DIMENSION_COUNT, int),
    "encoding_format": (sc.REQUEST_ENCODING_FORMATS, _encoding),
}
COMPLETIONS_PARAMS: _Table = {**_COMMON, "max_tokens": (sc.REQUEST_MAX_TOKENS, int)}


def sent_body(kwargs: dict[str, Any], extra: Any) -> dict[str, Any]:
    """The keywords as openai sends them with ``extra_body`` merged in (its keys win; ``omit`` drops one).

    ``extra_body`` entries that openai would send but that are not JSON keys (a non-mapping ``extra_body``)
    are ignored: openai itself fails on those before anything is sent.
    """
    if not isinstance(extra, Mapping):
        return kwargs
    merged = dict(kwargs)
    for key, value in extra.items():
        if key == "stream" or key == "extra_body":
            continue  # the client reads the answer by its ``stream`` keyword, whatever the body says
        if value is not None and value.__class__.__name__ in _SENTINEL_NAMES:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _record(kwargs: dict[str, Any], attrs: dict[str, Any], table: _Table) -> str | None:
    """Record the parameters the user sent (one pass over the body's keys); return the model."""
    extra = kwargs.get("extra_body")
    if extra is not None:
        kwargs = sent_body(kwargs, extra)
    for key, value in kwargs.items():
        spec = table.get(key)
        if spec is None or value is None or value.__class__.__name__ in _SENTINEL_NAMES:
            continue
        if key == "max_tokens" and given(kwargs.get("max_completion_tokens")):
            continue  # the API uses max_completion_tokens when both are sent
        try:
            converted = spec[1](value)
        except (TypeError, ValueError):
            continue  # a value the API will reject anyway; the span just does not record it
        if converted is not None:
            attrs[spec[0]] = converted
    model = kwargs.get("model")
    return str(model) if given(model) else None


def chat_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    attrs[sc.OPENAI_API_TYPE] = "chat_completions"
    return _record(kwargs, attrs, CHAT_PARAMS)


def responses_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    attrs[sc.OPENAI_API_TYPE] = "responses"
    return _record(kwargs, attrs, RESPONSES_PARAMS)


def fetch_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    """``responses.retrieve(response_id, stream=..., starting_after=...)``: no model is requested."""
    attrs[sc.OPENAI_API_TYPE] = "responses"
    response_id = kwargs.get("response_id")
    if isinstance(response_id, str) and response_id:
        attrs[sc.RESPONSE_ID] = response_id  # the response's own id replaces it at the end, when read
    if kwargs.get("stream") is True:
        attrs[sc.REQUEST_STREAM] = True
    return None


def embeddings_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    return _record(kwargs, attrs, EMBEDDINGS_PARAMS)


def completions_request(kwargs: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    return _record(kwargs, attrs, COMPLETIONS_PARAMS)


#: "the user sends no ``stream_options`` in ``extra_body``" (None there is a value: JSON null)
_ABSENT: Any = object()


def _extra_options(kwargs: dict[str, Any]) -> Any:
    """``extra_body["stream_options"]`` when the user sends it there (it then replaces the keyword's)."""
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping) and "stream_options" in extra:
        return extra["stream_options"]
    return _ABSENT


def wants_stream_usage(kwargs: dict[str, Any]) -> bool:
    """True when a stream did not ask for usage: llm-otel asks for it and hides the extra chunk."""
    if kwargs.get("stream") is not True:
        return False
    options = kwargs.get("stream_options")
    if kwargs.get("extra_body") is not None:
        extra = _extra_options(kwargs)
        if extra is not _ABSENT:
            options = extra
    if isinstance(options, dict) and "include_usage" in options:
        return False
    return not given(options) or isinstance(options, dict)


def inject_stream_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A copy of the kwargs with ``stream_options.include_usage`` set (the user's dicts are untouched), in
    ``extra_body`` when the user's ``stream_options`` are there (they would replace the keyword's)."""
    new_kwargs = dict(kwargs)
    extra_options = _extra_options(kwargs) if kwargs.get("extra_body") is not None else _ABSENT
    options = kwargs.get("stream_options") if extra_options is _ABSENT else extra_options
    merged = dict(options) if isinstance(options, dict) else {}
    merged["include_usage"] = True
    if extra_options is _ABSENT:
        new_kwargs["stream_options"] = merged
    else:
        new_kwargs["extra_body"] = {**kwargs["extra_body"], "stream_options": merged}
    return new_kwargs
