"""End-to-end demo: real openai and ollama clients -> llm-otel -> OTLP, Prometheus and the cost API.

Nothing else needs to run: the demo starts, on 127.0.0.1 only,
  * the fake LLM server (``llm_otel.testing``) that speaks the OpenAI and Ollama HTTP APIs,
  * an OTLP/HTTP receiver standing in for Jaeger,
  * the reference cost API (``llm-otel cost-api``) as a separate process,
then instruments, makes calls (sync, async, streaming) and prints what each backend received.

    python examples/demo.py

Against real backends (e.g. the stack in examples/stack/), the standard variables replace the stand-ins:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (no local OTLP receiver), ``LLM_OTEL_COST_API_URL`` and
``LLM_OTEL_COST_API_KEY`` (no local cost API), ``OTEL_EXPORTER_PROMETHEUS_PORT`` / ``_HOST`` (a fixed
``/metrics`` address for Prometheus to scrape), ``OTEL_SERVICE_NAME``. ``--duration 600`` keeps calling
(including failing and unpriced calls) for ten minutes, so dashboards have something to show:

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_EXPORTER_PROMETHEUS_PORT=9464 \
      python examples/demo.py --duration 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import ollama
import openai

import llm_otel
from llm_otel.testing import FakeLLMServer
from llm_otel.testing.otlp_receiver import OTLPHttpReceiver

API_KEY = "demo-cost-api-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cost_api(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    tool = Path(sys.executable).with_name("llm-otel")
    command = [str(tool)] if tool.exists() else [sys.executable, "-m", "llm_otel.cli"]
    proc = subprocess.Popen(
        [*command, "cost-api", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "LLM_OTEL_COST_API_KEY": API_KEY},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=0.5).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the cost API did not start")


async def async_calls(base_url: str, ollama_host: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-demo")
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream a short poem"}], stream=True
    )
    async for _ in stream:
        pass
    await ollama.AsyncClient(host=ollama_host).generate(model="llama3.2", prompt="Why is the sky blue?")


#: GenAI calls one round makes (5 sync + 2 async).
CALLS_PER_ROUND = 7


def one_round(llm: FakeLLMServer) -> None:
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="sk-demo")
    with llm_otel.attributes(tenant="acme", feature="search"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
        )
        for _ in client.chat.completions.create(
            model="gpt-4.1-nano", messages=[{"role": "user", "content": "Count to five"}], stream=True
        ):
            pass
        client.responses.create(model="gpt-5-mini", input="Summarise OpenTelemetry in one line")
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
        ollama.Client(host=llm.ollama_host).chat(
            model="llama3.2", messages=[{"role": "user", "content": "Hello from Ollama"}]
        )
    asyncio.run(async_calls(llm.openai_base_url, llm.ollama_host))


def extra_traffic(llm: FakeLLMServer, n: int) -> None:
    """With --duration: a failing call now and then, and a model without a price (both on the dashboard)."""
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="sk-demo", max_retries=0)
    with llm_otel.attributes(tenant="globex", feature="chat"):
        if n % 3 == 0:
            llm.set_fault("server_error", times=1)
            with contextlib.suppress(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
        client.chat.completions.create(model="my-finetune-7b", messages=[{"role": "user", "content": "Hi"}])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="keep calling for this many seconds (default: one round)"
    )
    args = parser.parse_args(argv)
    env = os.environ
    external_otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    external_costs = env.get("LLM_OTEL_COST_API_URL")
    work = Path(tempfile.mkdtemp(prefix="llm-otel-demo-"))
    llm = FakeLLMServer().start()
    receiver = None if external_otlp else OTLPHttpReceiver().start()
    cost_api = None
    if external_costs:
        cost_url, cost_key = external_costs.rstrip("/"), env.get("LLM_OTEL_COST_API_KEY", "")
    else:
        cost_api, cost_url = start_cost_api(work / "costs.sqlite")
        cost_key = API_KEY
    # A keyword wins over its environment variable: pass only what the environment does not set.
    settings: dict[str, object] = {"organization_id": "demo-org"}
    if not env.get("OTEL_SERVICE_NAME"):
        settings["service_name"] = "llm-otel-demo"
    if receiver is not None:
        settings["otlp_endpoint"] = receiver.endpoint
    if cost_api is not None:
        settings.update(cost_api_url=cost_url, cost_api_key=API_KEY)
    if not env.get("LLM_OTEL_PROMETHEUS_LABEL_TAGS"):
        settings["label_tags"] = ("tenant",)  # the dashboard's "cost by attribution tag" panel
    if not env.get("LLM_OTEL_SPOOL_PATH"):
        settings["spool_path"] = work / "spool.sqlite"
    if env.get("OTEL_EXPORTER_PROMETHEUS_PORT"):
        prometheus_port = int(env["OTEL_EXPORTER_PROMETHEUS_PORT"])
    else:
        prometheus_port = settings["prometheus_port"] = free_port()
    try:
        handle = llm_otel.instrument(**settings)  # type: ignore[arg-type]
        one_round(llm)
        calls = CALLS_PER_ROUND
        deadline = time.monotonic() + args.duration
        rounds = 1
        while time.monotonic() < deadline:
            extra_traffic(llm, rounds)
            one_round(llm)
            rounds += 1
            calls = rounds * CALLS_PER_ROUND
            print(f"round {rounds}: {calls} calls so far", flush=True)
            time.sleep(1.0)
        handle.flush()

        if receiver is None:
            print(f"\n== spans went to {external_otlp} (Jaeger: http://localhost:16686)")
        else:
            spans = [s for s in receiver.wait_for(calls) if s["scope"] == "llm_otel"]
            print(f"\n== OTLP receiver (Jaeger stand-in): {len(spans)} GenAI spans")
            print(f"{'span':40} {'provider':8} {'in':>5} {'out':>5} {'cost USD':>14}  pricing")
            for s in spans[:CALLS_PER_ROUND]:
                a = s["attributes"]
                cost = a.get("gen_ai.usage.cost")
                tokens_in, tokens_out = (
                    a.get("gen_ai.usage.input_tokens", "-"),
                    a.get("gen_ai.usage.output_tokens", "-"),
                )
                print(
                    f"{s['name']:40} {a['gen_ai.provider.name']:8} {tokens_in:>5} {tokens_out:>5} "
                    f"{'-' if cost is None else format(cost, '.10f'):>14}  {a.get('llm_otel.pricing.status')}"
                )

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/metrics").read().decode()
        print(f"\n== Prometheus endpoint http://127.0.0.1:{prometheus_port}/metrics (selected lines)")
        for line in metrics.splitlines():
            if line.startswith(
                ("llm_otel_requests_total", "llm_otel_cost_usd_total", "llm_otel_tokens_total")
            ):
                print(line)

        request = urllib.request.Request(
            f"{cost_url}/v1/costs?group_by=model", headers={"Authorization": f"Bearer {cost_key}"}
        )
        for _ in range(100):  # records are delivered in the background
            totals = json.loads(urllib.request.urlopen(request).read())
            if int(totals["total"]["records"]) >= calls:
                break
            time.sleep(0.1)
        print(f"\n== Cost API {cost_url}/v1/costs?group_by=model")
        print(json.dumps(totals, indent=2))
        llm_otel.uninstrument()
    finally:
        if cost_api is not None:
            cost_api.terminate()
            cost_api.wait(timeout=10)
        if receiver is not None:
            receiver.stop()
        llm.stop()


if __name__ == "__main__":
    main()
