"""Request attributes record exactly what the user sent: no defaults, no sentinels, no crashes."""

from __future__ import annotations

from typing import Any

import openai

from llm_otel import semconv as sc
from llm_otel.instrumentors.openai.request import chat_request, responses_request


def _chat(**kwargs: Any) -> tuple[str | None, dict[str, Any]]:
    attrs: dict[str, Any] = {}
    return chat_request(kwargs, attrs), attrs


def test_only_sent_parameters() -> None:
    model, attrs = _chat(model="gpt-4o", messages=[])
    assert model == "gpt-4o"
    assert attrs == {sc.OPENAI_API_TYPE: "chat_completions"}


def test_sentinels_and_none_are_absent() -> None:
    not_given = getattr(openai, "NOT_GIVEN", None)
    _, attrs = _chat(model="m", temperature=not_given, top_p=None, seed=not_given)
    assert (
        sc.REQUEST_TEMPERATURE not in attrs and sc.REQUEST_TOP_P not in attrs and sc.REQUEST_SEED not in attrs
    )


def test_conversions() -> None:
    _, attrs = _chat(
        model="m",
        temperature=1,
        stop="END",
        n=1,
        stream=True,
        seed=7,
        response_format={"type": "json_object"},
        reasoning_effort="low",
        max_tokens=10,
        max_completion_tokens=20,
    )
    assert attrs[sc.REQUEST_TEMPERATURE] == 1.0 and isinstance(attrs[sc.REQUEST_TEMPERATURE], float)
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert sc.REQUEST_CHOICE_COUNT not in attrs  # n=1 is the default behaviour, not recorded
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.OUTPUT_TYPE] == "json"
    assert attrs[sc.REQUEST_REASONING_LEVEL] == "low"
    assert attrs[sc.REQUEST_MAX_TOKENS] == 20  # max_completion_tokens wins, as in the API


def test_unconvertible_value_is_skipped() -> None:
    _, attrs = _chat(model="m", temperature="hot", n=3)
    assert sc.REQUEST_TEMPERATURE not in attrs
    assert attrs[sc.REQUEST_CHOICE_COUNT] == 3


def test_responses_parameters() -> None:
    attrs: dict[str, Any] = {}
    model = responses_request(
        {
            "model": "gpt-5",
            "reasoning": {"effort": "high"},
            "max_output_tokens": 99,
            "previous_response_id": "resp_1",
            "conversation": {"id": "conv_9"},
            "text": {"format": {"type": "text"}},
        },
        attrs,
    )
    assert model == "gpt-5"
    assert attrs[sc.REQUEST_REASONING_LEVEL] == "high"
    assert attrs[sc.REQUEST_MAX_TOKENS] == 99
    assert attrs[sc.REQUEST_PREVIOUS_RESPONSE_ID] == "resp_1"
    assert attrs[sc.CONVERSATION_ID] == "conv_9"
    assert attrs[sc.OUTPUT_TYPE] == "text"
