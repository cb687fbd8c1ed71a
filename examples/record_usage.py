"""Usage known after the fact (a batch job's report) -> ``llm_otel.record_usage()`` -> the cost API.

A nightly job called Claude and Gemini through their standard APIs and wrote one line of usage per call
(the report below). ``record_usage()`` turns each line into a GenAI span with the call's own start and end
times, priced with the bundled prices, metered, and forwarded to the cost API as a usage record. Each line
gets a stable id (job run + line), so reporting the same usage twice, say when the job is re-run after a
crash, is counted once. The reference cost API (``llm_otel.cost_server``) runs in-process on 127.0.0.1;
nothing leaves the machine:

    python examples/record_usage.py

Provider batch APIs (OpenAI Batch, Anthropic Message Batches, Gemini batch mode) bill half the standard
price, which the bundled table does not model: report such usage with your own prices
(``instrument(prices={"anthropic/claude-haiku-4-5": {...}})``).
"""

from __future__ import annotations

import json
import tempfile
import threading
import urllib.request
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import llm_otel
from llm_otel.cost_server import make_server
from llm_otel.pricing import PriceTable

API_KEY = "example-cost-api-key"
RUN = "nightly-summaries/2026-10-31"
#: The job's report: one line per call, tokens as the provider reported them (input includes the cache).
REPORT = [
    {"line": 1, "provider": "anthropic", "model": "claude-haiku-4-5-20251001", "input": 5200, "cached": 4096,
     "output": 310, "started": "2026-10-31T23:00:02.120Z", "seconds": 2.4},
    {"line": 2, "provider": "anthropic", "model": "claude-haiku-4-5-20251001", "input": 4810, "cached": 4096,
     "output": 288, "started": "2026-10-31T23:00:04.910Z", "seconds": 2.1},
    {"line": 3, "provider": "anthropic", "model": "claude-sonnet-4-5-20250929", "input": 12450, "cached": 0,
     "output": 1024, "started": "2026-10-31T23:00:07.300Z", "seconds": 11.8},
    {"line": 4, "provider": "gcp.gemini", "model": "gemini-2.5-pro", "input": 230000, "cached": 0,
     "output": 2048, "started": "2026-10-31T23:00:20.000Z", "seconds": 41.0},  # above 200k: long-context rate
]  # fmt: skip


def report_usage() -> None:
    """One record_usage() per report line: explicit times, a stable id, attribution tags."""
    for line in REPORT:
        started = datetime.fromisoformat(str(line["started"]).replace("Z", "+00:00"))
        llm_otel.record_usage(
            provider=str(line["provider"]),
            model=str(line["model"]),
            input_tokens=int(line["input"]),
            output_tokens=int(line["output"]),
            cache_read_tokens=int(line["cached"]),
            start_time=started,
            end_time=started + timedelta(seconds=float(line["seconds"])),
            tags={"job": "nightly-summaries", "team": "support"},
            id=f"{RUN}:line-{line['line']}",
        )


def costs(url: str, query: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    request = urllib.request.Request(f"{url}/v1/costs?{query}", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="llm-otel-record-usage-"))
    server = make_server(str(work / "costs.sqlite"), "127.0.0.1", 0, API_KEY)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        handle = llm_otel.instrument(
            service_name="nightly-summaries",
            prometheus_port=0,
            instrumentors=(),
            cost_api_url=server.url,
            cost_api_key=API_KEY,
            spool_path=work / "spool.sqlite",
        )
        report_usage()
        report_usage()  # the job is re-run: the same ids, so the cost API counts each call once
        assert handle.flush(10_000), "the cost API did not confirm every record"

        window = "start=2026-10-31&end=2026-11-01&group_by=model"  # the calls' own times, not today's
        totals = costs(server.url, window)
        print(f"== cost API {server.url}/v1/costs?{window}")
        for group in totals["groups"]:
            print(
                f"{group['key']:28} {group['records']} calls  {group['input_tokens']:>7} in  "
                f"{group['output_tokens']:>5} out  ${group['cost_usd']}"
            )
        total = totals["total"]
        print(f"{'total':28} {total['records']} calls{'':28}${total['cost_usd']}")

        # the same sum, computed here from the report with the bundled prices: exact, to the picodollar
        table = PriceTable.bundled()
        expected = Decimal(0)
        for line in REPORT:
            c = table.cost(str(line["provider"]), str(line["model"]), int(line["input"]), int(line["output"]),
                           int(line["cached"]))  # fmt: skip
            assert c.total is not None, line
            expected += c.total
        assert total["records"] == len(REPORT), total  # reported twice, stored once
        assert Decimal(total["cost_usd"]) == expected, (total["cost_usd"], expected)
        print(f"expected from the report: ${format(expected.normalize(), 'f')} (equal)")
        llm_otel.uninstrument()
    finally:
        server.shutdown()
        server.server_close()
        server.store.close()


if __name__ == "__main__":
    main()
