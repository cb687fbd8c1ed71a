"""The reference cost API (llm_otel.cost_server) and the ``llm-otel cost-api`` / ``costs`` commands."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_otel import cli
from llm_otel.cost_server import CostAPIServer, make_server

KEY = "test-key-123"
ROOT = Path(__file__).resolve().parents[1]


def record(i: int, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": f"{i:032x}-{i:016x}",
        "timestamp": "2026-03-01T12:00:00.000000Z",
        "organization_id": "org-1",
        "service_name": "svc",
        "provider": "openai",
        "model_id": "gpt-4o-mini",
        "operation": "chat",
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": "0.000000123456",
        "latency_ms": 12.5,
        "status": "ok",
        "error_type": None,
        "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}",
        "attributes": {"tenant": "acme"},
    }
    rec.update(over)
    return rec


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CostAPIServer]:
    srv = make_server(str(tmp_path / "api.sqlite"), port=0, api_key=KEY, max_body_bytes=256 * 1024)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    srv.store.close()


def call(
    srv: CostAPIServer, method: str, path: str, body: bytes | None = None, key: str | None = KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    req = urllib.request.Request(srv.url + path, data=body, method=method, headers=headers or {})
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def post(srv: CostAPIServer, records: list[Any], gz: bool = False, **kw: Any) -> tuple[int, Any]:
    body = json.dumps({"records": records}).encode()
    headers = {}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return call(srv, "POST", "/v1/usage", body, headers=headers, **kw)


def test_auth_is_required(server: CostAPIServer) -> None:
    assert post(server, [record(1)], key=None)[0] == 401
    assert post(server, [record(1)], key="wrong")[0] == 401
    assert call(server, "GET", "/v1/costs", key="wrong")[0] == 401
    assert call(server, "GET", "/healthz", key=None)[0] == 200
    assert post(server, [record(1)])[0] == 200
    assert server.store.count() == 1


def test_duplicates_are_ignored_and_reported(server: CostAPIServer) -> None:
    assert post(server, [record(1), record(2)]) == (200, {"accepted": 2, "duplicates": 0})
    assert post(server, [record(1), record(2), record(3), record(3)], gz=True) == (
        200,
        {"accepted": 1, "duplicates": 3},
    )
    assert server.store.count() == 3


def test_invalid_records_get_per_record_errors_and_the_rest_is_accepted(server: CostAPIServer) -> None:
    batch: list[Any] = [record(1), record(2, cost_usd=0.5), record(3), record(4, timestamp="yesterday"), "x"]
    status, answer = post(server, batch)
    assert status == 400
    assert answer["accepted"] == 2 and answer["duplicates"] == 0
    errors = {e["index"]: e for e in answer["errors"]}
    assert set(errors) == {1, 3, 4}
    assert errors[1]["id"] == record(2)["id"] and "cost_usd" in errors[1]["error"]
    assert "timestamp" in errors[3]["error"]
    assert errors[4]["id"] is None
    assert server.store.count() == 2


def test_absurd_counts_and_surrogates_are_invalid_not_a_storage_failure(server: CostAPIServer) -> None:
    """A record that cannot be stored must be answered 400 (the exporter dead-letters it); a 503 would be
    retried forever and hold back every record sent with it."""
    from llm_otel.cost_contract import MAX_TOKENS

    batch: list[Any] = [
        record(1, input_tokens=2**63, total_tokens=2**63),
        record(2, output_tokens=10**400),
        record(3, model_id="gpt-\ud800"),
        record(4, attributes={"tenant": "\udfff"}),
        record(5, error_type="E\ud800", status="error"),
        record(6, input_tokens=MAX_TOKENS, output_tokens=0, total_tokens=MAX_TOKENS),
        record(7, model_id="modèle-😀", attributes={"zone": "zürich"}),
    ]
    status, answer = post(server, batch)  # json.dumps writes the surrogates as escapes, as a client would
    assert status == 400, answer
    errors = {e["index"]: e["error"] for e in answer["errors"]}
    assert set(errors) == {0, 1, 2, 3, 4}
    assert "input_tokens" in errors[0] and "output_tokens" in errors[1] and "model_id" in errors[2]
    assert answer["accepted"] == 2 and server.store.count() == 2


def test_body_cap_and_gzip_bomb(server: CostAPIServer) -> None:
    big = [record(i, attributes={"pad": "x" * 1000}) for i in range(300)]  # ~ 400 kB > 256 kB cap
    assert post(server, big)[0] == 413
    bomb = gzip.compress(b'{"records": [' + b" " * (5 * 1024 * 1024) + b"]}")
    status, answer = call(server, "POST", "/v1/usage", bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed" in answer["error"]
    assert post(server, [record(i) for i in range(1001)])[0] == 413  # contract: at most 1000 per request
    assert call(server, "POST", "/v1/usage", b"not json")[0] == 400
    assert server.store.count() == 0


def test_totals_are_exact_decimals(server: CostAPIServer) -> None:
    for chunk in range(25):  # 400 per request keeps each body under the fixture's 256 kB cap
        status, _ = post(server, [record(chunk * 400 + i) for i in range(400)], gz=True)
        assert status == 200
    status, result = call(server, "GET", "/v1/costs")
    assert status == 200
    total = result["total"]
    assert total["records"] == 10_000
    assert Decimal(total["cost_usd"]) == Decimal("0.000000123456") * 10_000 == Decimal("0.00123456")
    assert sum([0.000000123456] * 10_000) != 0.00123456  # what a float sum would have given
    assert total["input_tokens"] == 100_000 and total["total_tokens"] == 150_000


def test_group_by_and_time_window(server: CostAPIServer) -> None:
    rows = [
        record(1, model_id="gpt-4o", cost_usd="0.25"),
        record(2, model_id="gpt-4o", cost_usd="0.50", service_name="billing"),
        record(3, model_id="llama3", provider="ollama", cost_usd="0", organization_id="org-2"),
        record(4, model_id="mystery", cost_usd=None),
        record(5, model_id="gpt-4o", cost_usd="1", timestamp="2026-04-01T00:00:00Z"),
    ]
    assert post(server, rows)[0] == 200
    _, by_model = call(server, "GET", "/v1/costs?group_by=model&start=2026-03-01&end=2026-03-02")
    groups = {g["key"]: g for g in by_model["groups"]}
    assert set(groups) == {"gpt-4o", "llama3", "mystery"}
    assert Decimal(groups["gpt-4o"]["cost_usd"]) == Decimal("0.75") and groups["gpt-4o"]["records"] == 2
    assert groups["mystery"]["unpriced_records"] == 1 and Decimal(groups["mystery"]["cost_usd"]) == 0
    assert by_model["total"]["records"] == 4
    _, by_provider = call(server, "GET", "/v1/costs?group_by=provider")
    assert {g["key"]: Decimal(g["cost_usd"]) for g in by_provider["groups"]} == {
        "openai": Decimal("1.75"),
        "ollama": Decimal(0),
    }
    _, by_service = call(server, "GET", "/v1/costs?group_by=service")
    assert {g["key"]: g["records"] for g in by_service["groups"]} == {"svc": 4, "billing": 1}
    _, by_org = call(server, "GET", "/v1/costs?group_by=organization")
    assert {g["key"]: g["records"] for g in by_org["groups"]} == {"org-1": 4, "org-2": 1}
    assert call(server, "GET", "/v1/costs?group_by=tenant")[0] == 400
    assert call(server, "GET", "/v1/costs?start=last-week")[0] == 400


def test_costs_command_prints_a_table(server: CostAPIServer, capsys: pytest.CaptureFixture[str]) -> None:
    post(server, [record(1, model_id="gpt-4o", cost_usd="0.1"), record(2, model_id="gpt-4o", cost_usd="0.2")])
    code = cli.main(["costs", "--url", server.url, "--api-key", KEY, "--since", "3650d", "--by", "model"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("gpt-4o"))
    assert line.split()[1] == "2" and line.split()[-1] == "0.3"
    assert cli.main(["costs", "--url", server.url, "--api-key", "bad"]) == 1


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LLM_OTEL_COST_API_KEY"}
    full_env.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "llm_otel.cli", *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_cost_api_command_refuses_without_a_key(tmp_path: Path) -> None:
    proc = _cli(["cost-api", "--db", str(tmp_path / "a.sqlite"), "--port", "0"], {})
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "LLM_OTEL_COST_API_KEY" in err


def test_cost_api_command_serves_with_a_key(tmp_path: Path) -> None:
    args = ["cost-api", "--db", str(tmp_path / "a.sqlite"), "--port", "0"]
    proc = _cli(args, {"LLM_OTEL_COST_API_KEY": KEY})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line
        url = line.split("listening on ")[1].split()[0]
        body = json.dumps({"records": [record(7)]}).encode()
        req = urllib.request.Request(url + "/v1/usage", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(req, timeout=10)
        assert denied.value.code == 401
        req.add_header("Authorization", f"Bearer {KEY}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp) == {"accepted": 1, "duplicates": 0}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
