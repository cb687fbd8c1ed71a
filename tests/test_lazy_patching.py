"""Client modules are patched when the application imports them, never imported by llm-otel itself.

Each test runs in a fresh interpreter, so which modules are imported, and when, is under the test's control.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from tests_support import HAS_RESPONSES, run_child

from llm_otel.guard import INSTRUMENTATION_ERRORS
from llm_otel.instrumentors.lazy import LazyPatcher, waiting_for

#: modules only the application's own use may import (openai's lazily-loaded ones, and ollama)
LAZY_MODULES = (
    "ollama",
    "ollama._client",
    "openai.lib.streaming.chat._completions",
    "openai.lib.streaming.responses._responses",
    "openai.resources.responses",
    "openai.resources.embeddings",
    "openai.resources.completions",
)

SPANS = """
    def wrapped():  # is each client's patched method a wrapt wrapper now (openai's own have __wrapped__ too)
        from openai.resources.chat.completions import Completions
        client = sys.modules["ollama._client"].Client
        methods = (vars(Completions)["create"], vars(client)["_request"])
        return [isinstance(f, wrapt.FunctionWrapper) for f in methods]

    def genai_spans():
        handle.flush()
        return [s.name for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "llm_otel"]
"""

SETUP = (
    f"""
    import json, os, sys
    import llm_otel, wrapt
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    LAZY = {LAZY_MODULES!r}
"""
    + SPANS
)


def test_instrument_imports_no_client_module() -> None:
    out = run_child(
        SETUP
        + """
    import openai
    before = sorted(m for m in LAZY if m in sys.modules)
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    after = sorted(m for m in LAZY if m in sys.modules)
    print(json.dumps({"before": before, "after": after, "instrumentors": len(handle.instrumentors)}))
    """,
        {},
    )
    assert out["after"] == out["before"]
    assert "ollama" not in out["after"]
    assert out["instrumentors"] == 2  # both still count as instrumented: they patch on import


def test_instrument_does_not_import_what_its_defaults_leave_off() -> None:
    """No cost API URL: no spool (sqlite3) and no sender; no MeterProvider: not the SDK's metrics package."""
    out = run_child(
        SETUP
        + """
    import openai
    llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    unwanted = ["sqlite3", "llm_otel.exporters.cost.spool", "llm_otel.exporters.cost.exporter",
                "opentelemetry.sdk.metrics"]
    print(json.dumps({"imported": [m for m in unwanted if m in sys.modules]}))
    """,
        {},
    )
    assert out["imported"] == []


def test_client_imported_after_instrument_is_traced(server: Any) -> None:
    responses = (
        """
    client.responses.create(model="gpt-4o-mini", input="hi")
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        for _ in stream:
            pass
    """
        if HAS_RESPONSES
        else ""
    )
    out = run_child(
        SETUP
        + """
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    import openai, ollama
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    """
        + responses
        + """
    ollama.Client(host=os.environ["OLLAMA_HOST"]).chat(model="llama3.2", messages=[])
    print(json.dumps(genai_spans()))
    """,
        {"FAKE_URL": server.openai_base_url, "OLLAMA_HOST": server.ollama_host},
    )
    expected = ["chat gpt-4o-mini", "embeddings text-embedding-3-small"]
    if HAS_RESPONSES:
        expected += ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert out == [*expected, "chat llama3.2"]


def test_client_imported_before_instrument_is_traced(server: Any) -> None:
    out = run_child(
        SETUP
        + """
    import openai, ollama
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    ollama.Client(host=os.environ["OLLAMA_HOST"]).generate(model="llama3.2", prompt="hi")
    print(json.dumps(genai_spans()))
    """,
        {"FAKE_URL": server.openai_base_url, "OLLAMA_HOST": server.ollama_host},
    )
    assert out == ["chat gpt-4o-mini", "text_completion llama3.2"]


def test_uninstrument_cancels_patches_not_yet_applied(server: Any) -> None:
    out = run_child(
        SETUP
        + """
    from llm_otel.instrumentors.lazy import waiting_for
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    waiting = waiting_for("openai") + waiting_for("ollama._client")
    llm_otel.uninstrument()
    cancelled = waiting_for("openai") + waiting_for("ollama._client")
    import openai, ollama
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    ollama.Client(host=os.environ["OLLAMA_HOST"]).chat(model="llama3.2", messages=[])
    print(json.dumps({
        "waiting": waiting,
        "cancelled": cancelled,
        "spans": [s.name for s in exporter.get_finished_spans()],
        "wrapped": wrapped(),
    }))
    """,
        {"FAKE_URL": server.openai_base_url, "OLLAMA_HOST": server.ollama_host},
    )
    assert out["waiting"] == 2 and out["cancelled"] == 0
    assert out["spans"] == []
    assert out["wrapped"] == [False, False]


def test_uninstrument_restores_modules_patched_on_import_and_reinstrument_patches_again(server: Any) -> None:
    out = run_child(
        SETUP
        + """
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    import openai, ollama
    patched = wrapped()
    llm_otel.uninstrument()
    restored = wrapped()
    handle = llm_otel.instrument(prometheus_port=0, tracer_provider=provider)
    again = wrapped()
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print(json.dumps({"patched": patched, "restored": restored, "again": again, "spans": genai_spans()}))
    """,
        {"FAKE_URL": server.openai_base_url},
    )
    assert out == {
        "patched": [True, True],
        "restored": [False, False],
        "again": [True, True],
        "spans": ["chat gpt-4o-mini"],
    }


def test_a_failing_patch_never_breaks_the_applications_import(tmp_path: Path) -> None:
    name = "llm_otel_lazy_probe"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    sys.path.insert(0, str(tmp_path))
    calls: list[str] = []

    def broken(module: Any) -> None:
        calls.append(module.__name__)
        raise RuntimeError("patching failed")

    before = INSTRUMENTATION_ERRORS.labels("probe.patch")._value.get()
    patcher = LazyPatcher("probe")
    try:
        patcher.when_imported(name, broken)
        assert waiting_for(name) == 1
        module = __import__(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
        patcher.stop()
    assert module.VALUE == 42
    assert calls == [name]
    assert waiting_for(name) == 0
    assert INSTRUMENTATION_ERRORS.labels("probe.patch")._value.get() == before + 1


def test_a_stopped_patcher_does_not_patch_a_module_imported_later(tmp_path: Path) -> None:
    name = "llm_otel_lazy_probe_stopped"
    (tmp_path / f"{name}.py").write_text("class Thing:\n    def run(self):\n        return 1\n")
    sys.path.insert(0, str(tmp_path))
    patcher = LazyPatcher("probe")
    seen: list[Any] = []
    try:
        patcher.when_imported(name, lambda m: seen.append(patcher.wrap(m, "Thing.run", lambda w, i, a, k: 2)))
        patcher.stop()
        module = __import__(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    assert seen == []
    assert module.Thing().run() == 1


@pytest.mark.parametrize("imported_first", [True, False])
def test_wrap_and_stop_round_trip(tmp_path: Path, imported_first: bool) -> None:
    name = f"llm_otel_lazy_probe_{int(imported_first)}"
    (tmp_path / f"{name}.py").write_text("class Thing:\n    def run(self):\n        return 1\n")
    sys.path.insert(0, str(tmp_path))
    patcher = LazyPatcher("probe")
    try:
        if imported_first:
            __import__(name)
        patcher.when_imported(name, lambda m: patcher.wrap(m, "Thing.run", lambda w, i, a, k: w() + 1))
        module = __import__(name)
        assert module.Thing().run() == 2
        patcher.stop()
        assert module.Thing().run() == 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
