"""instrument() / uninstrument() / exit across processes: a taken metrics port, instrumenting again, and
exiting while the OTLP collector accepts connections but never answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from tests_support import run_child

LOG = """
    import json, logging
    messages = []
    _handler = logging.Handler()
    _handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("llm_otel").addHandler(_handler)
    import llm_otel
    from llm_otel.metrics_registry import REGISTRY

    def samples(family, name):
        return [s for m in REGISTRY.collect() if m.name == family for s in m.samples if s.name == name]

    def requests():
        return sum(s.value for s in samples("llm_otel_requests", "llm_otel_requests_total"))

    def cost_by_service():
        out = {}
        for s in samples("llm_otel_cost_usd", "llm_otel_cost_usd_total"):
            out[s.labels["service"]] = out.get(s.labels["service"], 0) + s.value
        return out

    def call():
        llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)
"""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a taken metrics port -------------------------------------------------------------------------------

HOLDER = """
import sys, llm_otel
handle = llm_otel.instrument(instrumentors=())
print(handle.prometheus_port, flush=True)
sys.stdin.readline()
"""

SECOND = (
    LOG
    + """
    handle = llm_otel.instrument(instrumentors=())  # the same port: another instance of the same app
    call()
    print(json.dumps({"port": handle.prometheus_port, "requests": requests(),
                      "warnings": [m for m in messages if "/metrics" in m]}))
"""
)


def test_a_taken_metrics_port_is_one_warning_and_the_app_runs_on() -> None:
    port = str(free_port())
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env=child_env({"OTEL_EXPORTER_PROMETHEUS_PORT": port}),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == port
        out = run_child(SECOND, {"OTEL_EXPORTER_PROMETHEUS_PORT": port})  # used to raise ConfigError
    finally:
        first.communicate("\n", timeout=30)
    assert out["port"] is None
    assert out["requests"] == 1  # metrics are still recorded
    assert len(out["warnings"]) == 1
    warning = out["warnings"][0]
    for hint in (
        "prometheus_port",
        "OTEL_EXPORTER_PROMETHEUS_PORT",
        "make_wsgi_app",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        assert hint in warning


# --- instrumenting again --------------------------------------------------------------------------------

AGAIN = (
    LOG
    + """
    first = llm_otel.instrument(service_name="u1", prometheus_port=0, instrumentors=())
    call()
    llm_otel.uninstrument()
    second = llm_otel.instrument(service_name="u2", prometheus_port=0, instrumentors=())
    call()
    kept = [llm_otel.instrument(service_name="u3", prometheus_port=0, instrumentors=()),
            llm_otel.instrument(service_name="u4"), llm_otel.instrument(),
            llm_otel.instrument(service_name="u2", prometheus_port=0)]
    print(json.dumps({"requests": requests(), "cost": cost_by_service(),
                      "kept": all(h is second for h in kept), "owns": second.owns_provider,
                      "warnings": [m for m in messages if "instrument() called again" in m]}))
"""
)


def test_instrument_after_uninstrument_counts_once_with_the_new_service_name() -> None:
    out = run_child(AGAIN, {})
    assert out["requests"] == 2  # used to be 3: two metrics processors counted the second call twice
    assert out["cost"] == {"u1": pytest.approx(0.15), "u2": pytest.approx(0.15)}  # u2 used to be ignored
    assert out["owns"] is True
    assert out["kept"] is True
    assert len(out["warnings"]) == 1 and "service_name" in out["warnings"][0]


APP_PROVIDER = (
    LOG
    + """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "app"})))
    llm_otel.instrument(service_name="mine", prometheus_port=0, instrumentors=())
    call()
    llm_otel.uninstrument()
    llm_otel.instrument(service_name="mine", prometheus_port=0, instrumentors=())
    call()
    print(json.dumps({"requests": requests(), "cost": cost_by_service(),
                      "notes": [m for m in messages if "service_name" in m]}))
"""
)


def test_service_name_with_the_apps_own_provider_is_explained_once() -> None:
    out = run_child(APP_PROVIDER, {})
    assert out["requests"] == 2
    assert out["cost"] == {"app": pytest.approx(0.30)}
    assert len(out["notes"]) == 1
    assert "'mine'" in out["notes"][0] and "'app'" in out["notes"][0]


# --- exit with the OTLP collector not answering ---------------------------------------------------------


class SilentCollector:
    """Accepts TCP connections and never answers: an OTLP export waits for its full timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentCollector]:
    collector = SilentCollector()
    yield collector
    collector.close()


EXIT = """
import atexit, json, time
marks = {}
atexit.register(lambda: print(json.dumps({"exit_seconds": time.monotonic() - marks["end"]}), flush=True))
import llm_otel
llm_otel.instrument(prometheus_port=0, instrumentors=())  # OTLP from OTEL_EXPORTER_OTLP_ENDPOINT
for i in range(20):
    llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5)
time.sleep(0.3)  # the batch processor (50 ms delay) is inside a request that gets no answer
marks["end"] = time.monotonic()
"""


@pytest.mark.parametrize("setting", ["1", "0.2"])
def test_exit_with_the_collector_not_answering_takes_at_most_shutdown_timeout(
    silent: SilentCollector, setting: str
) -> None:
    env = child_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "LLM_OTEL_SHUTDOWN_TIMEOUT": setting,
    })  # fmt: skip
    # The watchdog: the exit used to take 10-20 s (two OTLP request timeouts).
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert silent.accepted, "the export never reached the collector"
    elapsed = json.loads(done.stdout.strip().splitlines()[-1])["exit_seconds"]
    print(f"\nexit with OTLP not answering, shutdown_timeout={setting}: {elapsed:.2f} s")
    assert elapsed <= float(setting) + 0.75
