"""The user's application comes first: privacy by default, contained internal failures, clean uninstrument."""

from __future__ import annotations

import importlib
import json
from typing import Any

import openai
import pytest

from llm_otel import guard
from llm_otel import semconv as sc
from llm_otel.content import CaptureMode, parse_mode
from llm_otel.instrumentors.openai import instrumentor as openai_instr
from llm_otel.instrumentors.openai import response as openai_response

MESSAGES = [
    {"role": "system", "content": "You are a pirate."},
    {"role": "user", "content": "Say this is a secret test"},
]
API_KEY = "sk-live-DO-NOT-LEAK-1234"


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.openai_base_url,
        api_key=API_KEY,
        max_retries=0,
        default_headers={"X-Custom-Auth": "custom-secret-header"},
    )


def _all_text(span: Any) -> str:
    parts = [json.dumps(dict(span.attributes), default=str)]
    parts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
    return " ".join(parts)


def test_content_off_by_default(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    text = _all_text(spans.one())
    assert "pirate" not in text and "secret test" not in text
    assert result.choices[0].message.content not in text
    assert sc.INPUT_MESSAGES not in spans.one().attributes


@pytest.mark.parametrize("mode", [CaptureMode.SPAN_ONLY, CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT])
def test_content_when_asked(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, mode: CaptureMode
) -> None:
    openai_instrumented.capture = mode
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = spans.one()
    reply = result.choices[0].message.content
    on_span = sc.INPUT_MESSAGES in span.attributes
    events = [e for e in span.events if e.name == sc.EVENT_INFERENCE_DETAILS]
    assert on_span is mode.on_span
    assert bool(events) is mode.on_event
    source = dict(span.attributes) if mode.on_span else dict(events[0].attributes)
    inputs = json.loads(source[sc.INPUT_MESSAGES])
    assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": "You are a pirate."}]}
    assert inputs[1]["parts"][0]["content"] == "Say this is a secret test"
    outputs = json.loads(source[sc.OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0] == {"type": "text", "content": reply}


def test_content_capture_of_stream(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_ONLY
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    outputs = json.loads(spans.one().attributes[sc.OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0]["content"] == text


def test_capture_env_values() -> None:
    assert parse_mode("SPAN_ONLY") is CaptureMode.SPAN_ONLY
    assert parse_mode("span_and_event") is CaptureMode.SPAN_AND_EVENT
    assert parse_mode("true") is CaptureMode.SPAN_ONLY
    assert parse_mode("false") is CaptureMode.NO_CONTENT
    with pytest.raises(ValueError):
        parse_mode("bogus")


def test_generator_messages_are_not_consumed(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_ONLY
    messages = ({"role": "user", "content": f"message number {i}"} for i in range(2))
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    sent = server.requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["message number 0", "message number 1"]
    assert sc.INPUT_MESSAGES not in spans.one().attributes  # skipped rather than consumed


def test_no_keys_or_auth_headers_in_telemetry(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_AND_EVENT
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    text = _all_text(spans.one())
    assert API_KEY not in text and "custom-secret-header" not in text and "Bearer" not in text


def _counter(site: str) -> float:
    return guard.INSTRUMENTATION_ERRORS.labels(site)._value.get()


def test_extractor_failure_returns_real_result(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _counter("openai.finish")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(openai_response, "_usage_into", broken)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(result, openai.types.chat.ChatCompletion) and result.usage.prompt_tokens > 0
    assert len(spans.genai()) == 1  # the span still ends
    assert _counter("openai.finish") == before + 1


def test_start_failure_returns_real_result(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _counter("openai.start")
    monkeypatch.setattr(openai_instr, "server_and_provider", lambda *a: 1 / 0)
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.choices[0].message.content
    assert _counter("openai.start") == before + 1


def test_chunk_failure_does_not_break_iteration(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _counter("stream.chunk")
    monkeypatch.setattr(openai_response.ChatChunks, "add", lambda self, chunk: 1 / 0)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert chunks
    assert len(spans.genai()) == 1
    assert _counter("stream.chunk") > before


def test_original_exception_untouched(openai_instrumented: Any, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="missing-model", messages=MESSAGES)
    assert type(raised.value) is openai.NotFoundError
    assert raised.value.body["code"] == "model_not_found"


def _patched_targets() -> dict[str, Any]:
    """Every method the instrumentor patches, as its class holds it (the modules imported here first)."""
    out = {}
    targets = [(ep.module, ep.method) for ep in openai_instr.ENDPOINTS]
    targets += [(module, method) for module, method, _ in openai_instr.HELPER_CLOSES]
    for module, method in targets:
        try:
            owner: Any = importlib.import_module(module)
        except ImportError:  # not in this openai version
            continue
        *path, name = method.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is not None and name in owner.__dict__:
            out[f"{module}:{method}"] = owner.__dict__[name]
    return out


def test_uninstrument_restores_everything(telemetry: Any, spans: Any, client: openai.OpenAI) -> None:
    originals = _patched_targets()
    instrumentor = openai_instr.OpenAIInstrumentor()
    instrumentor.instrument(llm_otel_telemetry=telemetry)
    patched = _patched_targets()
    assert all(patched[k] is not originals[k] for k in originals)
    instrumentor.uninstrument()
    assert _patched_targets() == originals
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.embeddings.create(model="text-embedding-3-small", input="x")
    assert spans.genai() == []


def test_instrument_twice_gives_one_span(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    again = openai_instr.OpenAIInstrumentor()  # the singleton's __init__ runs again: state must survive
    again.instrument(llm_otel_telemetry=openai_instrumented)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans.genai()) == 1
    again.uninstrument()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans.genai()) == 1


# -- captured content has a total size (issue 9, item 13) --------------------------------------------------

PART = 16_384  # the default content_max_chars: each part is already cut there


def test_captured_content_is_capped_per_attribute(
    openai_instrumented: Any, spans: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_AND_EVENT
    cap = openai_instrumented.max_total_chars
    assert cap == 131_072
    many = [{"role": "user", "content": f"{i:03d} " + "x" * PART} for i in range(60)]  # ~1 MB of JSON
    client.chat.completions.create(model="gpt-4o-mini", messages=many)
    span = spans.one()
    attrs = span.attributes or {}
    text = attrs[sc.INPUT_MESSAGES]
    assert cap - PART < len(text) <= cap
    kept = json.loads(text)  # still valid JSON: whole leading messages, the trailing ones dropped
    assert [m["parts"][0]["content"][:3] for m in kept] == [f"{i:03d}" for i in range(len(kept))]
    assert 1 <= len(kept) < 60 and attrs[sc.CONTENT_TRUNCATED] is True
    assert sc.OUTPUT_MESSAGES in attrs  # the short reply is whole
    (event,) = [e for e in span.events if e.name == sc.EVENT_INFERENCE_DETAILS]
    event_attrs = dict(event.attributes or {})
    assert event_attrs[sc.INPUT_MESSAGES] == text and event_attrs[sc.CONTENT_TRUNCATED] is True


def test_small_content_is_not_marked(openai_instrumented: Any, spans: Any, client: openai.OpenAI) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_ONLY
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes or {}
    assert len(json.loads(attrs[sc.INPUT_MESSAGES])) == 2 and sc.CONTENT_TRUNCATED not in attrs


def test_output_and_parts_are_capped_too(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    openai_instrumented.capture = CaptureMode.SPAN_ONLY
    openai_instrumented.max_total_chars = 2_000
    server.configure(reply=" ".join(["word"] * 400))  # ~2 kB per choice
    parts = [{"type": "text", "text": f"part {i} " + "y" * 300} for i in range(20)]
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": parts}], n=3)
    attrs = spans.one().attributes or {}
    inputs = json.loads(attrs[sc.INPUT_MESSAGES])  # one message too big: its leading parts are kept
    assert len(attrs[sc.INPUT_MESSAGES]) <= 2_000 and len(inputs) == 1
    assert 1 <= len(inputs[0]["parts"]) < 20 and inputs[0]["parts"][0]["content"].startswith("part 0 ")
    outputs = attrs[sc.OUTPUT_MESSAGES]  # three ~2 kB choices: none fits whole
    assert len(outputs) <= 2_000 and json.loads(outputs) == []
    assert attrs[sc.CONTENT_TRUNCATED] is True


def test_content_max_total_chars_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_otel.config import Settings
    from llm_otel.errors import ConfigError
    from llm_otel.instrumentors.tracer import build_telemetry
    from llm_otel.pricing import PriceTable

    assert Settings.resolve().content_max_total_chars == 131_072
    monkeypatch.setenv("LLM_OTEL_CONTENT_MAX_TOTAL_CHARS", "5000")
    settings = Settings.resolve()
    assert settings.content_max_total_chars == 5000
    assert build_telemetry(settings, None, PriceTable.bundled()).max_total_chars == 5000
    assert Settings.resolve(content_max_total_chars=70).content_max_total_chars == 70  # keyword wins
    monkeypatch.setenv("LLM_OTEL_CONTENT_MAX_TOTAL_CHARS", "lots")
    with pytest.raises(ConfigError) as info:
        Settings.resolve()
    assert info.value.setting == "LLM_OTEL_CONTENT_MAX_TOTAL_CHARS"
    with pytest.raises(ConfigError):
        Settings.resolve(content_max_total_chars=-1)
