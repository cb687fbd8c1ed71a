"""``opentelemetry-instrument python app.py`` gets what ``instrument()`` gives: spans over OTLP, the
``/metrics`` endpoint and cost records, configured by the same environment variables.

A child process runs under ``opentelemetry-instrument`` with ``opentelemetry-distro`` (which sets the global
TracerProvider and its OTLP exporter from the standard variables), calling the real openai client against
the fake server; the OTLP receiver, the app's own ``/metrics`` and the reference cost API show what arrived.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from cost_support import KEY, Server, free_port

from llm_otel.testing.otlp_receiver import OTLPHttpReceiver

TOOL = Path(sys.executable).with_name("opentelemetry-instrument")

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("opentelemetry.distro") is None,
        reason="opentelemetry-distro is not installed (it is in the test extra)",
    ),
    pytest.mark.skipif(
        not any(ep.name == "llm_otel" for ep in entry_points(group="opentelemetry_pre_instrument")),
        reason="installed llm-otel metadata predates its zero-code entry points: pip install -e .",
    ),
]

#: is the official OpenAI instrumentation installed as well (``.ci/run`` installs it in the test venv); its
#: entry point is named ``openai``, as was that of its predecessor ``opentelemetry-instrumentation-openai-v2``
try:
    HAS_PEER = importlib.util.find_spec("opentelemetry.instrumentation.genai.openai") is not None
except ModuleNotFoundError:  # no opentelemetry.instrumentation.genai package at all
    HAS_PEER = False

APP = """
    import json, os, re, urllib.request
    import openai
    client = openai.OpenAI(base_url=os.environ["FAKE_URL"], api_key="sk-secret", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    import llm_otel
    handle = llm_otel.instrument()  # the application's own call returns the zero-code pipeline's handle
    url = f"http://127.0.0.1:{os.environ['OTEL_EXPORTER_PROMETHEUS_PORT']}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    requests = sum(float(v) for v in re.findall(r'^llm_otel_requests_total\\{.*\\} (\\S+)$', text, re.M))
    flushed = handle.flush(10000)
    print(json.dumps({"requests": requests, "flushed": flushed, "instrumentors": len(handle.instrumentors)}))
"""


def _run(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    full["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    full.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "zero-code",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(free_port()),
            "LLM_OTEL_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
            "LLM_OTEL_LIVE": "false",
        }
    )
    full.update(env)
    done = subprocess.run(
        [str(TOOL), sys.executable, str(script)], env=full, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _genai(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if "gen_ai.operation.name" in s["attributes"]]


def test_zero_code_gets_spans_metrics_and_cost_records(server: Any, tmp_path: Path) -> None:
    receiver = OTLPHttpReceiver().start()
    costs = Server(tmp_path / "costs.sqlite")
    try:
        out = _run(
            tmp_path,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "LLM_OTEL_COST_API_URL": costs.url,
                "LLM_OTEL_COST_API_KEY": KEY,
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
            },
        )
        spans = receiver.wait_for(1)
        records = costs.count()
    finally:
        receiver.stop()
        costs.stop()
    assert out == {"requests": 1.0, "flushed": True, "instrumentors": 2}
    genai = _genai(spans)
    assert len(genai) == 1
    span = genai[0]
    assert span["scope"] == "llm_otel" and span["name"] == "chat gpt-4o-mini"
    assert span["resource"]["service.name"] == "zero-code"
    assert span["attributes"]["gen_ai.usage.cost"] > 0
    assert "sk-secret" not in json.dumps(spans)
    assert records == 1


def test_llm_otel_instrumentors_setting_is_honoured(server: Any, tmp_path: Path) -> None:
    receiver = OTLPHttpReceiver().start()
    try:
        out = _run(
            tmp_path,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "LLM_OTEL_INSTRUMENTORS": "ollama",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
            },
        )
    finally:
        receiver.stop()
    assert out["requests"] == 0


@pytest.mark.skipif(not HAS_PEER, reason="opentelemetry-instrumentation-genai-openai is not installed")
@pytest.mark.parametrize(
    ("disabled", "ours", "theirs"),
    [
        ("", 1, 1),  # both installed and enabled: two GenAI spans per call
        ("openai", 1, 0),  # the official one's entry point name
        ("llm_otel_openai,llm_otel_ollama", 0, 1),
    ],
)
def test_disabled_instrumentations_leave_one_genai_span(
    server: Any, tmp_path: Path, disabled: str, ours: int, theirs: int
) -> None:
    receiver = OTLPHttpReceiver().start()
    try:
        _run(
            tmp_path,
            {
                "FAKE_URL": server.openai_base_url,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled,
            },
        )
        spans = receiver.wait_for(ours + theirs)
    finally:
        receiver.stop()
    scopes = [s["scope"] for s in _genai(spans)]
    assert scopes.count("llm_otel") == ours
    assert len(scopes) - ours == theirs
