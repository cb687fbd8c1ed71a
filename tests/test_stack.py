"""The local stack (examples/stack/), the Grafana dashboard and the Collector fleet configs, validated as far
as this machine allows: no Docker daemon, no Jaeger, Grafana or Collector binaries here.

* docker-compose.yml: ``docker-compose config -q`` (Debian's docker-compose; skipped without it, except in
  CI), pinned images, healthchecks, named volumes, bind mounts of files that exist, the cost API image.
* Prometheus: ``promtool check config`` on the stack's config in the container's file layout (the alert
  rules themselves are tested with ``promtool test rules`` in tests/test_prometheus_backend.py).
* Grafana provisioning: YAML parses, datasources point at compose services, the dashboard provider at the
  folder the dashboard JSON is mounted into.
* Dashboard: every query names only series the real exporter emits (default and opt-in names), uses
  ``$service`` and ``$model``, is valid PromQL, and on a real Prometheus scraping both name sets every panel
  has data and every panel is emptied by a service or model that matches nothing.
* Collector configs: pipelines use only defined components and use every defined one.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from exported_metrics import (
    MODELS,
    TAG,
    WithProcessMetrics,
    exported_names,
    feed,
    instrumented_provider,
    referenced,
)
from prometheus_client import CollectorRegistry
from prometheus_fixture import PrometheusServer, in_ci, promtool

from llm_otel.exporters.prometheus import start_metrics_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STACK = EXAMPLES / "stack"
COMPOSE = STACK / "docker-compose.yml"
DASHBOARD = EXAMPLES / "grafana-dashboard.json"
VARIABLE = re.compile(r"\$(\w+)")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)  # type: ignore[no-any-return]


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def mounts(service: str) -> list[tuple[str, str]]:
    """``(source, target)`` of a service's volumes; a bind mount's source resolved on the host."""
    out = []
    for spec in services()[service].get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith((".", "/")):
            source = str((STACK / source).resolve())
        out.append((source, target))
    return out


def host_path(service: str, container_path: str) -> Path | None:
    """Where a path inside a service's container comes from on the host (bind mounts only)."""
    for source, target in sorted(mounts(service), key=lambda m: -len(m[1])):
        if source.startswith("/") and (container_path == target or container_path.startswith(target + "/")):
            return Path(source + container_path[len(target) :])
    return None


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def panel_exprs() -> list[tuple[str, list[str]]]:
    return [(p["title"], [t["expr"] for t in p["targets"]]) for p in dashboard()["panels"]]


# --- docker-compose.yml -------------------------------------------------------------------------------------


def test_compose_config_is_valid() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        message = "docker-compose not installed (apt-get install -y --no-install-recommends docker-compose)"
        if in_ci():
            pytest.fail(message + " -- required in CI")
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_compose_images_are_pinned_and_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
    assert {"jaeger", "prometheus", "grafana", "cost-api"} <= set(services())


def test_compose_volumes_are_named_or_existing_files() -> None:
    declared = set(compose()["volumes"])
    used = set()
    for name in services():
        for source, _target in mounts(name):
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: bind mount source {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert used == declared, declared - used
    # the data of Prometheus, Grafana and the cost API survives `docker-compose down`
    assert {target for source, target in mounts("prometheus") if source in declared} == {"/prometheus"}
    assert {target for source, target in mounts("grafana") if source in declared} == {"/var/lib/grafana"}
    assert {target for source, target in mounts("cost-api") if source in declared} == {"/data"}


def test_compose_publishes_the_documented_ports_on_loopback_only() -> None:
    published = {
        name: {p.rsplit(":", 1)[1] for p in service.get("ports", [])} for name, service in services().items()
    }
    assert published["jaeger"] == {"4317", "4318", "16686"}
    assert published["prometheus"] == {"9090"}
    assert published["grafana"] == {"3000"}
    assert published["cost-api"] == {"8787"}
    for name, service in services().items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "host.docker.internal:host-gateway" in services()["prometheus"]["extra_hosts"]


def test_cost_api_image_installs_this_checkout() -> None:
    service = services()["cost-api"]
    context = (STACK / service["build"]["context"]).resolve()
    assert context == ROOT
    dockerfile = (context / service["build"]["dockerfile"]).read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and line[0] != "#"]
    base = next(i for i in instructions if i.startswith("FROM ")).split()[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), f"base image {base} is not pinned"
    assert any(re.search(r"\bpip install \.(\s|$)", i) for i in instructions)
    copied = [src for i in instructions if i.startswith("COPY ") for src in i.split()[1:-1]]
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    assert ignore[0] == "*"  # nothing but what is allowed below reaches the build context
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    pyproject = (ROOT / "pyproject.toml").read_text()
    needed = {"pyproject.toml", "llm_otel"} | set(re.findall(r'readme = "([^"]+)"', pyproject))
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source in allowed, f"{source} is excluded by .dockerignore"
    assert needed <= set(copied), needed - set(copied)
    cmd = json.loads(next(i for i in instructions if i.startswith("CMD "))[4:])
    assert cmd[:2] == ["llm-otel", "cost-api"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    assert "LLM_OTEL_COST_API_KEY" in service["environment"]


# --- Prometheus and Grafana of the stack --------------------------------------------------------------------


def test_stack_prometheus_config_checks_with_its_mounted_rule_files(tmp_path: Path) -> None:
    etc = tmp_path / "etc-prometheus"  # the container's /etc/prometheus, from the compose mounts
    etc.mkdir()
    for source, target in mounts("prometheus"):
        if target.startswith("/etc/prometheus/"):
            shutil.copy(source, etc / target.removeprefix("/etc/prometheus/"))
    command = services()["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    assert "--web.enable-remote-write-receiver" in command  # the fleet gateway remote-writes here
    checked = promtool("check", "config", str(etc / "prometheus.yml"))
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "SUCCESS: 4 rules found" in checked.stdout + checked.stderr  # examples/alert_rules.yml, loaded
    assert (etc / "alert_rules.yml").read_text() == (EXAMPLES / "alert_rules.yml").read_text()
    config = load_yaml(etc / "prometheus.yml")
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets["llm-app"] == ["host.docker.internal:9464"]  # the application on the host
    assert targets["cost-api"] == ["cost-api:8787"]


def test_grafana_provisioning_points_at_the_stack_and_the_dashboard() -> None:
    grafana = services()["grafana"]
    datasource_dir = host_path("grafana", "/etc/grafana/provisioning/datasources")
    dashboard_dir = host_path("grafana", "/etc/grafana/provisioning/dashboards")
    assert datasource_dir and dashboard_dir and datasource_dir.is_dir() and dashboard_dir.is_dir()

    datasources = [d for f in sorted(datasource_dir.glob("*.y*ml")) for d in load_yaml(f)["datasources"]]
    by_type = {d["type"]: d for d in datasources}
    assert set(by_type) == {"prometheus", "jaeger"}
    for source in datasources:
        url = urllib.parse.urlsplit(source["url"])
        assert url.hostname in services(), f"{source['name']}: {url.hostname} is not a compose service"
        ports = {p.rsplit(":", 1)[1] for p in services()[url.hostname]["ports"]}
        assert str(url.port) in ports
    variable = next(v for v in dashboard()["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] == by_type["prometheus"]["uid"]  # the dashboard opens on it

    providers = [p for f in sorted(dashboard_dir.glob("*.y*ml")) for p in load_yaml(f)["providers"]]
    assert [p["type"] for p in providers] == ["file"]
    folder = providers[0]["options"]["path"]
    mounted = [t for s, t in mounts("grafana") if t.startswith(folder + "/")]
    assert mounted, f"nothing is mounted into the provider's folder {folder}"
    assert [host_path("grafana", t) for t in mounted] == [DASHBOARD]  # the one dashboard file
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in mounted
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


# --- the dashboard ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("title,exprs", panel_exprs(), ids=[t for t, _ in panel_exprs()])
def test_panel_queries_name_only_exported_series_under_both_name_sets(title: str, exprs: list[str]) -> None:
    default, latest = exported_names(latest=False), exported_names(latest=True)
    names = set().union(*(referenced(e) for e in exprs))
    assert names, f"{title}: queries no llm-otel metric"
    assert names <= default | latest, names - (default | latest)
    assert names & default, f"{title}: nothing under the default metric names"
    assert names & latest, f"{title}: nothing under OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental"


def test_every_panel_filters_by_service_and_model() -> None:
    for title, exprs in panel_exprs():
        for expr in exprs:
            assert "$service" in expr and "$model" in expr, f"{title}: {expr}"
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    for name in ("service", "model"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
        assert referenced(variables[name]["query"]) <= exported_names(False) & exported_names(True)


def grafana_substitute(expr: str, service: str = ".*", model: str = ".*") -> str:
    """The query Grafana sends for one service / model regex (errors on an unknown variable)."""
    values = {
        "service": service,
        "model": model,
        "tag": TAG,
        "__rate_interval": "1m",
        "__range": "5m",
    }
    return VARIABLE.sub(lambda m: values[m.group(1)], expr)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"panel_{i}_{j}", "expr": grafana_substitute(expr)}
        for i, (_, exprs) in enumerate(panel_exprs())
        for j, expr in enumerate(exprs)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stderr + checked.stdout


class TwoNameSets:
    """One process per metric-name set (its own registry and /metrics), both scraped by one Prometheus."""

    SERVICES = {False: "svc-default", True: "svc-latest"}
    ONLY_LATEST = "only-in-latest"  # a model only the svc-latest process calls

    def __init__(self, workdir: Path) -> None:
        self.providers = {}
        self.endpoints = []
        for latest, service in self.SERVICES.items():
            registry = CollectorRegistry()
            provider, _ = instrumented_provider(registry, latest, service)
            self.providers[latest] = provider
            self.endpoints.append(start_metrics_server("127.0.0.1", 0, registry=WithProcessMetrics(registry)))
        self.prometheus = PrometheusServer([f"127.0.0.1:{e.port}" for e in self.endpoints], workdir)

    def feed(self) -> int:
        total = 0
        for latest, provider in self.providers.items():
            total += feed(provider, extra_models=(self.ONLY_LATEST,) if latest else ())
        return total

    def stop(self) -> None:
        self.prometheus.stop()
        for endpoint in self.endpoints:
            endpoint.stop()
        for provider in self.providers.values():
            provider.shutdown()

    def values(self, expr: str) -> list[float]:
        return [float(r["value"][1]) for r in self.prometheus.query(expr)]  # type: ignore[index]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNameSets]:
    stack = TwoNameSets(tmp_path_factory.mktemp("prometheus"))
    try:
        per_round = stack.feed()
        stack.prometheus.start()
        first = {"sum(llm_otel_requests_total)": per_round, "count(up == 1)": 2}
        assert stack.prometheus.wait_for(first) == first, stack.prometheus.log()
        stack.feed()  # after a first scrape: every rate and quantile below has an increase to work on
        second = {"sum(llm_otel_requests_total)": 2 * per_round}
        assert stack.prometheus.wait_for(second) == second, stack.prometheus.log()
        time.sleep(1.5)
        yield stack
    finally:
        stack.stop()


def test_every_panel_shows_the_same_models_under_both_metric_name_sets(both: TwoNameSets) -> None:
    """Both processes ended the same spans: a panel working under both name sets has data for the same
    models in each (and for some model at all)."""
    for title, exprs in panel_exprs():
        shown = {}
        for latest, service in TwoNameSets.SERVICES.items():
            shown[latest] = {
                model
                for model in MODELS
                if any(
                    math.isfinite(value)
                    for expr in exprs
                    for value in both.values(grafana_substitute(expr, service, model))
                )
            }
        assert shown[False], f"{title}: no data under the default metric names"
        assert shown[True] == shown[False], (
            f"{title}: models with data, latest {shown[True]} != {shown[False]}"
        )


@pytest.mark.parametrize(
    "service,model",
    [
        ("no-such-service", ".*"),
        (".*", "no-such-model"),
        ("svc-default", TwoNameSets.ONLY_LATEST),  # the model exists, but in the other service's process
        ("svc-latest", "llama3|no-such-model"),  # regex like Grafana's multi-value; llama3 matches
    ],
)
def test_every_panel_is_filtered_by_service_and_model(both: TwoNameSets, service: str, model: str) -> None:
    expect_data = "llama3" in model  # a local (cost 0) chat call, not streamed: no first chunk, priced
    for title, exprs in panel_exprs():
        results = [both.values(grafana_substitute(expr, service, model)) for expr in exprs]
        names = set().union(*(referenced(e) for e in exprs))
        if not expect_data:
            assert results == [[]] * len(exprs), f"{title}: not filtered by service={service} model={model}"
        elif not any("first_chunk" in n or "unpriced" in n for n in names):
            assert any(results), f"{title}: no data for service={service} model={model}"


# --- Collector fleet configs --------------------------------------------------------------------------------

COLLECTOR_CONFIGS = ("otel-collector.yaml", "otel-collector-gateway.yaml")
KIND = {"receivers": "receivers", "processors": "processors", "exporters": "exporters"}


def uncomment_optional(text: str, block: str) -> str:
    """The config with the lines between ``# >>> block`` and ``# <<< block`` uncommented."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(f"# >>> {block}"):
            inside = True
            continue
        if line.startswith(f"# <<< {block}"):
            inside = False
            continue
        out.append(line[1:] if inside and line.startswith("#") else line)
    assert not inside, f"unterminated optional block {block}"
    return "\n".join(out) + "\n"


def check_pipelines(config: dict[str, Any]) -> None:
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for kind in KIND:
        defined = set(config.get(kind) or {})
        used = {c for p in pipelines.values() for c in p.get(kind, [])}
        assert used <= defined, f"{kind} used but not defined: {used - defined}"
        assert defined <= used, f"{kind} defined but unused: {defined - used}"
    extensions = set(config.get("extensions") or {})
    assert set(config["service"].get("extensions", [])) == extensions
    for name, pipeline in pipelines.items():
        assert name.split("/")[0] in {"traces", "metrics", "logs"}, name
        assert pipeline["receivers"] and pipeline["exporters"], name
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert pipeline["processors"][-1] == "batch", f"{name}: batch must come last"


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_pipelines_use_exactly_the_defined_components(name: str) -> None:
    check_pipelines(load_yaml(STACK / name))


def test_gateway_optional_kafka_block_is_consistent_once_uncommented() -> None:
    text = (STACK / "otel-collector-gateway.yaml").read_text()
    config = yaml.safe_load(uncomment_optional(text, "kafka"))
    check_pipelines(config)
    assert config["service"]["pipelines"]["traces/kafka"]["exporters"] == ["kafka"]
    assert "kafka" not in load_yaml(STACK / "otel-collector-gateway.yaml")["exporters"]  # off by default


def test_agent_routes_by_trace_id_and_gateway_keeps_errors_slow_calls_and_a_share() -> None:
    agent = load_yaml(STACK / "otel-collector.yaml")
    balancer = agent["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "traceID"
    assert agent["service"]["pipelines"]["traces"]["exporters"] == ["loadbalancing"]
    assert agent["service"]["pipelines"]["traces"]["processors"] == ["memory_limiter", "batch"]
    gateway = load_yaml(STACK / "otel-collector-gateway.yaml")
    assert str(balancer["resolver"]["dns"]["port"]) == "4317"
    assert gateway["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    policies = {p["type"]: p for p in gateway["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    traces = gateway["service"]["pipelines"]["traces"]
    assert traces["exporters"] == ["otlp/jaeger"] and "tail_sampling" in traces["processors"]
    assert gateway["service"]["pipelines"]["metrics"]["exporters"] == ["prometheusremotewrite"]
    assert gateway["exporters"]["prometheusremotewrite"]["endpoint"].endswith("/api/v1/write}")


# --- trying it without an API key: the OTLP receiver command and the demo -----------------------------------


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])
    env.update(extra)
    return env


def test_otlp_receiver_command_prints_each_span() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_otel.testing.otlp_receiver", "--port", "0"],
        env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        endpoint = re.search(r"HTTP (http://127\.0\.0\.1:\d+)", banner)
        assert endpoint, banner
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{endpoint[1]}/v1/traces")))
        span = provider.get_tracer("llm_otel").start_span("chat gpt-4o-mini")
        span.set_attributes({"gen_ai.usage.input_tokens": 12, "gen_ai.usage.cost": 0.5})
        span.end()
        line = proc.stdout.readline()
        assert line.startswith("[receiver-test] chat gpt-4o-mini trace="), line
        assert "in=12 cost_usd=0.5" in line
    finally:
        provider.shutdown()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_demo_sends_to_the_backends_named_in_the_environment(tmp_path: Path) -> None:
    import threading

    from prometheus_fixture import free_port

    from llm_otel.cost_server import make_server
    from llm_otel.testing.otlp_receiver import OTLPHttpReceiver

    receiver = OTLPHttpReceiver().start()
    costs = make_server(str(tmp_path / "costs.sqlite"), port=0, api_key="stack-key")
    threading.Thread(target=costs.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    env = _child_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()),
        OTEL_SERVICE_NAME="demo-in-stack",
        LLM_OTEL_COST_API_URL=costs.url,
        LLM_OTEL_COST_API_KEY="stack-key",
        LLM_OTEL_SPOOL_PATH=str(tmp_path / "spool.sqlite"),
    )
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "demo.py")], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"spans went to {receiver.endpoint}" in done.stdout
        spans = [s for s in receiver.wait_for(7) if s["scope"] == "llm_otel"]
        assert len(spans) >= 7
        assert {s["resource"]["service.name"] for s in spans} == {"demo-in-stack"}
        assert costs.store.count() == len(spans)
    finally:
        receiver.stop()
        costs.shutdown()
        costs.server_close()
        costs.store.close()
