"""End-to-end demo: real openai and ollama clients -> llm-otel -> OTLP, Prometheus and the cost API.

Nothing else needs to run: the demo starts, on 127.0.0.1 only,
  * the fake LLM server (``llm_otel.testing``) that speaks the OpenAI and Ollama HTTP APIs,
  * an OTLP/HTTP receiver standing in for Jaeger (point ``otlp_endpoint`` at Jaeger's :4318 instead),
  * the reference cost API (``llm-otel cost-api``) as a separate process,
then instruments, makes calls (sync, async, streaming) and prints what each backend received.

    python examples/demo.py
"""

from __future__ import annotations

import asyncio
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


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="llm-otel-demo-"))
    llm = FakeLLMServer().start()
    receiver = OTLPHttpReceiver().start()
    cost_api, cost_url = start_cost_api(work / "costs.sqlite")
    prometheus_port = free_port()
    try:
        handle = llm_otel.instrument(
            service_name="llm-otel-demo",
            otlp_endpoint=receiver.endpoint,
            prometheus_port=prometheus_port,
            cost_api_url=cost_url,
            cost_api_key=API_KEY,
            organization_id="demo-org",
            spool_path=work / "spool.sqlite",
        )
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
        handle.flush()

        spans = [s for s in receiver.wait_for(7) if s["scope"] == "llm_otel"]
        print(f"\n== OTLP receiver (Jaeger stand-in): {len(spans)} GenAI spans")
        print(f"{'span':40} {'provider':8} {'in':>5} {'out':>5} {'cost USD':>14}  pricing")
        for s in spans:
            a = s["attributes"]
            cost = a.get("gen_ai.usage.cost")
            print(
                f"{s['name']:40} {a['gen_ai.provider.name']:8} {a.get('gen_ai.usage.input_tokens', '-'):>5} "
                f"{a.get('gen_ai.usage.output_tokens', '-'):>5} "
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
            f"{cost_url}/v1/costs?group_by=model", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        for _ in range(50):  # records are delivered in the background
            totals = json.loads(urllib.request.urlopen(request).read())
            if sum(int(g["records"]) for g in totals.get("groups", [])) >= len(spans):
                break
            time.sleep(0.1)
        print(f"\n== Cost API {cost_url}/v1/costs?group_by=model")
        print(json.dumps(totals, indent=2))
        llm_otel.uninstrument()
    finally:
        cost_api.terminate()
        cost_api.wait(timeout=10)
        receiver.stop()
        llm.stop()


if __name__ == "__main__":
    main()
