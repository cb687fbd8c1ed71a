"""Per-modality token counts (``gen_ai.usage.{text,image,audio}.*``) as the response reports them, and audio
tokens billed at the audio rate, exactly: on the span and in the cost record the real cost API receives."""

from __future__ import annotations

import copy
import json
import threading
import urllib.request
from decimal import Decimal
from typing import Any

import openai
import pytest
from tests_support import HAS_RESPONSES, run_child

from llm_otel import guard
from llm_otel import semconv as sc
from llm_otel.pricing import PriceTable

MESSAGES = [{"role": "user", "content": "Say this is a test"}]

#: gpt-audio-mini (bundled, from genai-prices 0.2.3): text 0.6 / 2.4, audio 10 / 20 USD per million tokens.
#: 10 text + 40 audio input tokens, 20 text + 100 audio output tokens:
#: input  = 10 x 0.6 + 40 x 10  = 406  per million -> 0.000406
#: output = 20 x 2.4 + 100 x 20 = 2048 per million -> 0.002048
AUDIO_COST = Decimal("0.002454")
AUDIO_USAGE = {
    "prompt_tokens": 50,
    "completion_tokens": 120,
    "total_tokens": 170,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 40, "text_tokens": 10, "image_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 100,
        "text_tokens": 20,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def chat_body(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-audio1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "audio": None},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def test_bundled_audio_prices_bill_audio_at_the_audio_rate() -> None:
    table = PriceTable.bundled()
    cost = table.cost("openai", "gpt-audio-mini", 50, 120, audio_input_tokens=40, audio_output_tokens=100)
    assert cost.status == "priced"
    assert cost.total == AUDIO_COST
    assert cost.input == Decimal("0.000406") and cost.output == Decimal("0.002048")
    floats = table.cost_floats("openai", "gpt-audio-mini", 50, 120, None, None, None, 40, 100)
    assert floats[2] == float(AUDIO_COST)
    # the same counts without the audio split would be billed at the text rate: 50 x 0.6 + 120 x 2.4
    assert table.cost("openai", "gpt-audio-mini", 50, 120).total == Decimal("0.000318")
    # gpt-audio (32 / 64 audio) and Bedrock's Nova Sonic have audio prices too
    assert table.cost("openai", "gpt-audio", 0, 10, audio_output_tokens=10).total == Decimal("0.00064")
    sonic = table.cost("aws.bedrock", "amazon.nova-sonic-v1:0", 1000, 0, audio_input_tokens=1000)
    assert sonic.total == Decimal("0.0034")


def test_audio_that_cannot_be_priced_exactly_is_unpriced() -> None:
    table = PriceTable.bundled()
    # a model without an audio price: never billed at its text rate
    assert table.cost("openai", "gpt-4o-mini", 50, 10, audio_input_tokens=40).status == "unpriced"
    assert table.cost_floats("openai", "gpt-4o-mini", 50, 10, None, None, None, 40, None)[0] == "unpriced"
    # cached tokens alongside audio: the count does not say which modality was cached
    assert table.cost("openai", "gpt-audio-mini", 50, 10, 8, audio_input_tokens=40).status == "unpriced"
    # an audio count above the total it is part of
    assert table.cost("openai", "gpt-audio-mini", 50, 10, audio_output_tokens=11).status == "unpriced"
    # audio output only, on an entry with an audio output price: priced
    assert table.cost("openai", "gpt-audio-mini", 0, 10, audio_output_tokens=10).total == Decimal("0.0002")


def test_user_audio_prices_with_sub_picodollar_rates_round_once() -> None:
    table = PriceTable.load({"openai/my-voice": {"input": "1", "output": "2", "input_audio": "0.0000005"}})
    cost = table.cost("openai", "my-voice", 3, 0, audio_input_tokens=3)
    # 3 audio tokens x 0.0000005 USD per million = 1.5e-12 USD: rounded half-even once, to 2e-12
    assert cost.status == "priced" and cost.total == Decimal("2E-12")
    floats = table.cost_floats("openai", "my-voice", 3, 0, None, None, None, 3, None)
    assert floats[2] == float(cost.total)  # type: ignore[arg-type]


def test_chat_audio_usage_on_the_span_with_exact_cost(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.respond_with(body=chat_body("gpt-audio-mini", AUDIO_USAGE))
    result = client.chat.completions.create(model="gpt-audio-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    usage = result.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert attrs[sc.USAGE_AUDIO_INPUT_TOKENS] == usage.prompt_tokens_details.audio_tokens == 40
    assert attrs[sc.USAGE_TEXT_INPUT_TOKENS] == 10
    assert attrs[sc.USAGE_AUDIO_OUTPUT_TOKENS] == 100
    assert attrs[sc.USAGE_TEXT_OUTPUT_TOKENS] == 20
    assert sc.USAGE_IMAGE_INPUT_TOKENS not in attrs  # reported 0: not used
    assert attrs[sc.USAGE_INPUT_TOKENS] == 50 and attrs[sc.USAGE_OUTPUT_TOKENS] == 120
    assert attrs[sc.PRICING_STATUS] == "priced"
    assert attrs[sc.USAGE_COST] == float(AUDIO_COST)
    assert attrs[sc.COST_INPUT] == 0.000406 and attrs[sc.COST_OUTPUT] == 0.002048


def test_stream_audio_usage(openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI) -> None:
    base = {
        "id": "chatcmpl-a",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-audio-mini",
    }
    server.respond_with(
        chunks=[
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": AUDIO_USAGE},
        ]
    )
    list(client.chat.completions.create(model="gpt-audio-mini", messages=MESSAGES, stream=True))
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_AUDIO_OUTPUT_TOKENS] == 100
    assert attrs[sc.USAGE_COST] == float(AUDIO_COST)


def test_text_calls_carry_no_modality_counts(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    """The fake server, like OpenAI, reports ``audio_tokens: 0`` on every text call: nothing is added."""
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert not [
        k for k in attrs if k.startswith(("gen_ai.usage.audio", "gen_ai.usage.text", "gen_ai.usage.image"))
    ]
    assert attrs[sc.PRICING_STATUS] == "priced"


def test_audio_on_a_model_without_audio_price_is_unpriced(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.respond_with(body=chat_body("gpt-4o-mini", AUDIO_USAGE))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_AUDIO_INPUT_TOKENS] == 40
    assert attrs[sc.PRICING_STATUS] == "unpriced" and sc.USAGE_COST not in attrs


def test_hostile_modality_count_is_left_off_alone(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    guard._logged_sites.clear()
    usage = copy.deepcopy(AUDIO_USAGE)
    usage["prompt_tokens_details"]["audio_tokens"] = "forty"
    server.respond_with(body=chat_body("gpt-audio-mini", usage))
    client.chat.completions.create(model="gpt-audio-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert sc.USAGE_AUDIO_INPUT_TOKENS not in attrs
    assert attrs[sc.USAGE_TEXT_INPUT_TOKENS] == 10 and attrs[sc.USAGE_AUDIO_OUTPUT_TOKENS] == 100
    assert attrs[sc.USAGE_INPUT_TOKENS] == 50


@pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")
def test_responses_image_tokens_when_reported(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    from llm_otel.testing.responses_routes import responses as make_response
    from llm_otel.testing.wire import ReplyConfig

    body = json.loads(make_response({"model": "gpt-4o-mini", "input": "hi"}, ReplyConfig()).body)
    body["usage"]["input_tokens_details"]["image_tokens"] = 7
    server.respond_with(body=body)
    client.responses.create(model="gpt-4o-mini", input="hi")
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_IMAGE_INPUT_TOKENS] == 7
    assert attrs[sc.PRICING_STATUS] == "priced"  # image input is billed as input tokens


CHILD = """
    import json, os
    import llm_otel, openai
    handle = llm_otel.instrument(prometheus_port=0, cost_api_url=os.environ["COST_URL"],
                                 cost_api_key="secret", spool_path=os.environ["SPOOL"])
    client = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-audio-mini", messages=[{"role": "user", "content": "hi"}])
    assert handle.flush(10_000)
    print(json.dumps({}))
"""


def test_cost_record_carries_the_exact_audio_cost(tmp_path: Any, server: Any) -> None:
    from llm_otel.cost_server import make_server

    server.respond_with(body=chat_body("gpt-audio-mini", AUDIO_USAGE))
    costs = make_server(str(tmp_path / "costs.sqlite"), "127.0.0.1", 0, "secret", 8 << 20, True)
    thread = threading.Thread(target=costs.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        env = {
            "COST_URL": costs.url,
            "SPOOL": str(tmp_path / "spool.sqlite"),
            "LLM_URL": server.openai_base_url,
        }
        run_child(CHILD, env)
        assert costs.store.count() == 1
        req = urllib.request.Request(
            costs.url + "/v1/costs?group_by=model", headers={"Authorization": "Bearer secret"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            totals = json.load(resp)
        text = json.dumps(totals)
        assert "gpt-audio-mini" in text
        assert Decimal(_find_cost(totals)) == AUDIO_COST
    finally:
        costs.shutdown()
        costs.server_close()
        costs.store.close()


def _find_cost(totals: Any) -> str:
    """The cost_usd of the one group in a ``GET /v1/costs`` answer."""
    if isinstance(totals, dict):
        for key, value in totals.items():
            if key == "cost_usd" and isinstance(value, str):
                return value
            found = _find_cost(value)
            if found:
                return found
    if isinstance(totals, list):
        for item in totals:
            found = _find_cost(item)
            if found:
                return found
    return ""


def test_track_and_record_usage_take_audio_counts(
    telemetry: Any, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_otel import manual, pipeline, record_usage, track

    monkeypatch.setattr(manual, "_fallback", telemetry)
    monkeypatch.setattr(pipeline, "_active", None)
    with track("chat", provider="openai", model="gpt-audio-mini") as call:
        call.set_usage(input_tokens=50, output_tokens=120, audio_input_tokens=40, audio_output_tokens=100)
    record_usage(
        provider="aws.bedrock",
        model="amazon.nova-sonic-v1:0",
        input_tokens=1000,
        output_tokens=0,
        audio_input_tokens=1000,
    )
    first, second = spans.genai()
    assert first.attributes[sc.USAGE_AUDIO_INPUT_TOKENS] == 40
    assert first.attributes[sc.USAGE_COST] == float(AUDIO_COST)
    assert second.attributes[sc.USAGE_COST] == 0.0034
    assert sc.USAGE_AUDIO_OUTPUT_TOKENS not in second.attributes
