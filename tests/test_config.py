"""Every wrong setting is a ``ConfigError`` naming the setting as the user gave it, at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from llm_otel import ConfigError
from llm_otel.config import Settings
from llm_otel.content import CaptureMode


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"otlp_endpoint": 4318}, "otlp_endpoint"),
        ({"cost_api_url": 8787}, "cost_api_url"),
        ({"prometheus_host": 127}, "prometheus_host"),
        ({"spool_path": 5}, "spool_path"),
        ({"capture_content": 1}, "capture_content"),
        ({"capture_content": "bogus"}, "capture_content"),
        ({"label_tags": 7}, "label_tags"),
        ({"label_tags": ["tenant", 3]}, "label_tags"),
        ({"instrumentors": 1}, "instrumentors"),
        ({"provider_hosts": 11434}, "provider_hosts"),
        ({"prometheus_port": True}, "prometheus_port"),
        ({"prometheus_port": 9465.7}, "prometheus_port"),
        ({"max_model_labels": 2.9}, "max_model_labels"),
        ({"max_model_labels": "many"}, "max_model_labels"),
        ({"content_max_chars": -1}, "content_max_chars"),
        ({"cost_api_key": ""}, "cost_api_key"),
        ({"service_name": 3}, "service_name"),
        ({"prometheus_prot": 9464}, "prometheus_prot"),  # misspelled keyword
    ],
)
def test_wrong_keyword_values(options: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.resolve(**options)
    assert raised.value.setting == setting
    assert setting in str(raised.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "yes please"),
        ("LLM_OTEL_CONTENT_MAX_CHARS", "lots"),
        ("LLM_OTEL_MAX_MODEL_LABELS", "2.5"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "70000"),
        ("LLM_OTEL_STREAM_USAGE", "maybe"),
        ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/llm-otel-metrics"),
    ],
)
def test_wrong_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as raised:
        Settings.resolve()
    assert raised.value.setting == var


def test_keyword_wins_and_sources_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("LLM_OTEL_CONTENT_MAX_CHARS", "100")
    settings = Settings.resolve(content_max_chars=5, capture_content="yes")
    assert settings.content_max_chars == 5 and settings.sources["content_max_chars"] == "content_max_chars"
    assert settings.capture_content is CaptureMode.SPAN_ONLY
    assert settings.otlp_endpoint == "http://collector:4318/v1/traces"
    assert settings.otlp_from_env
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom")
    assert Settings.resolve().otlp_endpoint == "http://collector:4318/custom"  # signal-specific: as given


def test_integral_numbers_and_aliases_are_accepted() -> None:
    settings = Settings.resolve(prometheus_port=9465.0, max_model_labels="20", capture_content="off")
    assert (settings.prometheus_port, settings.max_model_labels) == (9465, 20)
    assert settings.capture_content is CaptureMode.NO_CONTENT


def test_every_setting_has_a_readme_row() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in Settings.names() if f"`{name}`" not in readme]
    assert not missing, missing


def test_standalone_instrumentor_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_otel.instrumentors.tracer import telemetry_from_kwargs

    monkeypatch.setenv("LLM_OTEL_CONTENT_MAX_CHARS", "77")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_and_event")
    monkeypatch.setenv("LLM_OTEL_PROVIDER_HOSTS", "gateway.internal=vllm")
    telemetry = telemetry_from_kwargs({})
    assert telemetry.max_chars == 77
    assert telemetry.capture is CaptureMode.SPAN_AND_EVENT
    assert telemetry.provider_hosts == {"gateway.internal": "vllm"}
    monkeypatch.setenv("LLM_OTEL_STREAM_USAGE", "nope")
    with pytest.raises(ConfigError, match="LLM_OTEL_STREAM_USAGE"):
        telemetry_from_kwargs({})
