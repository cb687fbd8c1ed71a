"""The reference cost API (llm_otel.cost_server) and the ``llm-otel`` command: cost-api, costs, --version."""

from __future__ import annotations

import decimal
import gzip
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from llm_otel import cli
from llm_otel import cost_contract as contract
from llm_otel.cost_contract import MAX_COST_PLACES, MAX_COST_USD, MAX_TOKENS, TOKEN_FIELDS
from llm_otel.cost_server import CostAPIServer, make_server
from llm_otel.cost_server import server as server_module

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
        with exc:
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


def test_metrics_count_requests_and_records_without_a_key(server: CostAPIServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    post(server, [record(1), record(2)])
    post(server, [record(2), record(3, cost_usd=0.5), "x"])
    call(server, "GET", "/v1/costs", key="wrong")
    call(server, "GET", "/nowhere")
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:  # no Authorization header
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    records = {k[1][0][1]: v for k, v in samples.items() if k[0] == "llm_otel_cost_api_records_total"}
    assert records == {"accepted": 2, "duplicate": 1, "invalid": 2}
    requests = {
        dict(labels)["route"] + " " + dict(labels)["code"]: v
        for (name, labels), v in samples.items()
        if name == "llm_otel_cost_api_requests_total"
    }
    assert requests == {"/v1/usage 200": 1, "/v1/usage 400": 1, "/v1/costs 401": 1, "other 404": 1}


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


def test_cost_api_command_checks_the_connection_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "a.sqlite")
    for option, value in (("--read-timeout", "0"), ("--read-timeout", "inf"), ("--workers", "0"),
                          ("--max-connections", "-1"), ("--max-connections", "1.5")):  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            cli.main(["cost-api", "--db", db, "--no-auth", option, value])
        assert exited.value.code == 2 and option in capsys.readouterr().err
    args = cli.build_parser().parse_args(["cost-api", "--db", db])
    assert (args.read_timeout, args.max_connections, args.workers, args.max_body_bytes) == (
        server_module.DEFAULT_READ_TIMEOUT,
        server_module.DEFAULT_MAX_CONNECTIONS,
        server_module.DEFAULT_WORKERS,
        server_module.DEFAULT_MAX_BODY,
    )
    assert not (tmp_path / "a.sqlite").exists()


def test_cost_api_command_refuses_without_a_key(tmp_path: Path) -> None:
    proc = _cli(["cost-api", "--db", str(tmp_path / "a.sqlite"), "--port", "0"], {})
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "LLM_OTEL_COST_API_KEY" in err


def test_cost_api_command_serves_with_a_key(tmp_path: Path) -> None:
    args = ["cost-api", "--db", str(tmp_path / "a.sqlite"), "--port", "0"]
    args += ["--read-timeout", "5", "--max-connections", "50", "--workers", "2"]
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
        denied.value.close()
        req.add_header("Authorization", f"Bearer {KEY}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp) == {"accepted": 1, "duplicates": 0}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_version_option_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_otel.version import __version__

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"llm-otel {__version__}\n"
    proc = _cli(["--version"], {})  # the real command line, no subcommand needed
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (0, f"llm-otel {__version__}\n", "")


# --- hostile input: every request gets a JSON answer, and nothing stored can make a later read fail


def raw_exchange(srv: CostAPIServer, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes: the whole answer (b"" if it sent none)."""
    with socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_times_outside_the_utc_range_are_rejected_with_an_answer(server: CostAPIServer) -> None:
    stamps = [
        "0001-01-01T00:00:00+01:00",  # OverflowError converting to UTC
        "9999-12-31T23:59:59-01:00",  # past datetime.max in UTC
        "1969-12-31T23:59:59.999999Z",  # before the epoch
        "2026-03-01T12:00:00." + "1" * 100 + "Z",  # parseable, but padding stored as sent
    ]
    status, answer = post(server, [record(i, timestamp=t) for i, t in enumerate(stamps)])
    assert status == 400 and answer["accepted"] == 0
    assert [e["index"] for e in answer["errors"]] == [0, 1, 2, 3]
    assert all("timestamp" in e["error"] for e in answer["errors"])
    ok = ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999+00:00"]
    assert post(server, [record(10 + i, timestamp=t) for i, t in enumerate(ok)]) == (
        200,
        {"accepted": 3, "duplicates": 0},
    )
    status, result = call(server, "GET", "/v1/costs?end=0001-01-01T00%3A00%3A00%2B01%3A00")
    assert status == 400 and "start/end" in result["error"]
    status, result = call(server, "GET", "/v1/costs?start=0001-01-02&end=9999-12-31")
    assert status == 200 and result["total"]["records"] == 1  # a query may span any representable time
    assert call(server, "GET", "/v1/costs")[1]["total"]["records"] == 3


def test_deeply_nested_json_gets_a_400(server: CostAPIServer) -> None:
    nested = gzip.compress(b"[" * 250_000)  # a few hundred bytes on the wire; RecursionError in json
    status, answer = call(server, "POST", "/v1/usage", nested, headers={"Content-Encoding": "gzip"})
    assert status == 400 and "JSON" in answer["error"]
    status, answer = post(server, [record(1, attributes={"a": [[[[["x"]]]]]})])
    assert status == 400 and "attributes" in answer["errors"][0]["error"]
    assert post(server, [record(2)])[0] == 200  # the server is fine


def test_token_counts_are_bounded_and_their_sums_never_overflow(server: CostAPIServer) -> None:
    status, answer = post(server, [record(1, input_tokens=2**62), record(2, input_tokens=2**62)])
    assert status == 400 and answer["accepted"] == 0
    assert "input_tokens" in answer["errors"][0]["error"] and str(MAX_TOKENS) in answer["errors"][0]["error"]
    assert post(server, [record(3, output_tokens=MAX_TOKENS + 1)])[0] == 400
    biggest = dict.fromkeys(TOKEN_FIELDS, MAX_TOKENS)
    count = 1100  # beyond 1,024 records of MAX_TOKENS, a 64-bit SUM overflows
    for chunk in range(0, count, 400):
        batch = [record(i, **biggest) for i in range(chunk, min(count, chunk + 400))]
        assert post(server, batch, gz=True)[0] == 200
    status, result = call(server, "GET", "/v1/costs?group_by=model")
    assert status == 200
    for summary in (result["total"], result["groups"][0]):
        assert summary["records"] == count
        assert all(summary[t] == count * MAX_TOKENS for t in TOKEN_FIELDS)
    assert call(server, "GET", "/v1/costs?start=2027-01-01")[1]["total"]["input_tokens"] == 0


def test_costs_are_bounded_in_range_and_places(server: CostAPIServer, tmp_path: Path) -> None:
    bad = ["1e1000000", "1e20000000", "1e-20000000", "1000000000", "1e9", "-0.5", "NaN", "Infinity",
           "0.0000000000000000001", "1" * 300]  # fmt: skip
    status, answer = post(server, [record(i, cost_usd=v) for i, v in enumerate(bad)])
    assert status == 400 and answer["accepted"] == 0 and len(answer["errors"]) == len(bad)
    assert all("cost_usd" in e["error"] for e in answer["errors"])
    good = {"999999999.999999999999999999": "999999999.999999999999999999", "0.000000000000000001":
            "0.000000000000000001", "1.50000000000000000000000000": "1.5", "1E+2": "100", "-0": "0",
            "0E-1000000": "0", "0E+1000000": "0"}  # fmt: skip
    status, answer = post(server, [record(100 + i, cost_usd=v) for i, v in enumerate(good)])
    assert (status, answer) == (200, {"accepted": len(good), "duplicates": 0})
    stored = sqlite3.connect(tmp_path / "api.sqlite").execute("SELECT cost_usd FROM usage ORDER BY id")
    assert [row[0] for row in stored] == list(good.values())  # canonical text, a few bytes each
    assert (tmp_path / "api.sqlite").stat().st_size < 1_000_000
    status, result = call(server, "GET", "/v1/costs")
    assert status == 200
    assert Decimal(result["total"]["cost_usd"]) == sum(Decimal(v) for v in good.values())


def test_an_internal_error_gets_a_json_500(server: CostAPIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.store, "totals", broken)
    assert call(server, "GET", "/v1/costs") == (500, {"error": "internal server error"})
    assert call(server, "GET", "/healthz") == (200, {"status": "ok"})


def test_malformed_requests_get_json_answers(server: CostAPIServer) -> None:
    auth = f"Authorization: Bearer {KEY}\r\nConnection: close\r\n".encode()
    malformed = {
        b"GARBAGE\r\n\r\n": 400,  # the standard library would answer without a status line
        b"GET / HTTP/9\r\n\r\n": 400,
        b"BREW /v1/costs HTTP/1.1\r\n\r\n": 501,
        b"GET http://[x/v1/costs HTTP/1.1\r\n" + auth + b"\r\n": 400,  # urlsplit: ValueError
    }
    for raw, status in malformed.items():
        answer = raw_exchange(server, raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), (raw, answer)
        assert b"Content-Type: application/json" in head
        assert "error" in json.loads(body)


# --- exact totals (the bounds make every sum exact)


def test_a_total_the_old_precision_would_round_is_refused_instead(server: CostAPIServer) -> None:
    status, answer = post(server, [record(1, cost_usd="1e100"), record(2, cost_usd="1e-12")])
    assert status == 400 and [e["index"] for e in answer["errors"]] == [0]
    assert call(server, "GET", "/v1/costs")[1]["total"]["cost_usd"] == "0.000000000001"


def units(k: int) -> Decimal:
    """k * 10**-MAX_COST_PLACES, exactly (Decimal arithmetic would round to the default 28 digits)."""
    return Decimal(f"{k}E-{MAX_COST_PLACES}")


def test_sums_of_boundary_costs_are_exact(server: CostAPIServer) -> None:
    top_k = MAX_COST_USD * 10**MAX_COST_PLACES - 1  # the largest cost: 999999999.999999999999999999
    costs = [units(top_k)] * 999 + [units(1)] * 300 + [Decimal("0.1")] * 100
    for chunk in range(0, len(costs), 400):
        batch = [record(chunk + i, cost_usd=format(v, "f")) for i, v in enumerate(costs[chunk : chunk + 400])]
        assert post(server, batch, gz=True)[0] == 200
    total = call(server, "GET", "/v1/costs")[1]["total"]["cost_usd"]
    assert Decimal(total) == units(999 * top_k + 300 + 10 * 10**MAX_COST_PLACES)  # 30 digits
    assert total == "999000000009.999999999999999301"


def test_the_sum_context_is_exact_for_any_number_of_rows_sqlite_can_hold() -> None:
    from llm_otel.cost_server import store

    top_k = MAX_COST_USD * 10**MAX_COST_PLACES - 1  # the largest cost, in units of 10**-18
    rows = 2**64  # a rowid table never holds more
    assert store._CTX.prec >= store._SUM_DIGITS == len(str(rows * top_k)) == 47
    total = store._CTX.add(units((rows - 1) * top_k), units(top_k))  # traps Inexact: raises if rounded
    assert total == units(rows * top_k)
    assert store._CTX.add(total, units(1)) == units(rows * top_k + 1)
    with pytest.raises(decimal.Inexact):  # what the trap catches: values outside the bounds
        store._CTX.add(Decimal("1e100"), Decimal("1e-12"))


def test_a_row_outside_the_bounds_fails_the_read_loudly(server: CostAPIServer, tmp_path: Path) -> None:
    """A row stored before the bounds existed: a 500, never a silently rounded "exact" total."""
    assert post(server, [record(1, cost_usd="1"), record(2, cost_usd="1e-12")])[0] == 200
    with sqlite3.connect(tmp_path / "api.sqlite") as db:
        db.execute("UPDATE usage SET cost_usd = '1e100' WHERE cost_usd = '1'")
    assert call(server, "GET", "/v1/costs") == (500, {"error": "internal server error"})


# --- the database holds usage data: 0600


def test_database_files_are_created_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        srv = make_server(str(tmp_path / "private.sqlite"), port=0, api_key=KEY)
    finally:
        os.umask(old)
    try:
        srv.store.insert([record(1)])
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == ["private.sqlite", "private.sqlite-shm", "private.sqlite-wal"]
        assert {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in files} == dict.fromkeys(
            files, 0o600
        )
    finally:
        srv.server_close()
        srv.store.close()


def test_group_by_an_attribution_tag(server: CostAPIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """``group_by=tag:<key>`` groups by one attribution tag (records without it: key null), within the time
    window, largest cost first; the key is validated and the number of groups listed is capped."""
    rows = [
        record(1, cost_usd="0.25", attributes={"tenant": "acme", "feature": "search"}),
        record(2, cost_usd="0.50", attributes={"tenant": "globex"}),
        record(3, cost_usd="0.125", attributes={"tenant": "acme"}),
        record(4, cost_usd=None, attributes={}),
        record(5, cost_usd="2", attributes={"tenant": "acme"}, timestamp="2026-04-01T00:00:00Z"),
        record(6, cost_usd="0.01", attributes={"team.name-x": "blue", "mandant_ü": "nord"}),
    ]
    assert post(server, rows)[0] == 200
    status, by_tenant = call(server, "GET", "/v1/costs?group_by=tag:tenant&start=2026-03-01&end=2026-03-02")
    assert status == 200 and by_tenant["group_by"] == "tag:tenant"
    assert [(g["key"], Decimal(g["cost_usd"]), g["records"]) for g in by_tenant["groups"]] == [
        ("globex", Decimal("0.50"), 1),
        ("acme", Decimal("0.375"), 2),
        (None, Decimal("0.01"), 2),
    ]
    assert by_tenant["groups_omitted"] == 0 and by_tenant["total"]["records"] == 5
    none_group = by_tenant["groups"][2]
    assert none_group["unpriced_records"] == 1 and none_group["input_tokens"] == 20
    _, dotted = call(server, "GET", "/v1/costs?group_by=tag:team.name-x")
    assert {g["key"]: g["records"] for g in dotted["groups"]} == {"blue": 1, None: 5}
    for bad in (
        "tag:mandant_ü",
        "tag:",
        "tag:1st",
        'tag:a"b',
        "tag:a b",
        "tag:a$",
        "tag:" + "k" * 129,
        "tenant",
        "tag",
    ):
        status, answer = call(server, "GET", "/v1/costs?" + urlencode({"group_by": bad}))
        assert status == 400 and "group_by" in answer["error"], bad
    monkeypatch.setattr(contract, "MAX_GROUPS", 2)
    _, capped = call(server, "GET", "/v1/costs?group_by=tag:tenant")
    assert [g["key"] for g in capped["groups"]] == ["acme", "globex"]
    assert capped["groups_omitted"] == 1 and capped["total"]["records"] == 6
    _, by_model = call(server, "GET", "/v1/costs?group_by=model")
    assert by_model["groups_omitted"] == 0 and len(by_model["groups"]) == 1


def test_costs_command_groups_by_a_tag(server: CostAPIServer, capsys: pytest.CaptureFixture[str]) -> None:
    post(server, [
        record(1, cost_usd="0.1", attributes={"tenant": "acme"}),
        record(2, cost_usd="0.2", attributes={"tenant": "acme", "model": "tagged"}),
        record(3, cost_usd="0.4", attributes={}),
    ])  # fmt: skip
    base = ["costs", "--url", server.url, "--api-key", KEY, "--since", "3650d"]
    assert cli.main([*base, "--by", "tenant"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "TENANT"
    rows = {x.split()[0]: x.split() for x in lines[2:-2]}
    assert rows["(none)"][1] == "1" and rows["(none)"][-1] == "0.4"
    assert rows["acme"][1] == "2" and rows["acme"][-1] == "0.3"
    assert lines[-1].split()[1] == "3"
    assert cli.main([*base, "--by", "tag:model", "--json"]) == 0  # a tag named like a built-in group
    answer = json.loads(capsys.readouterr().out)
    assert answer["group_by"] == "tag:model"
    assert {g["key"]: g["records"] for g in answer["groups"]} == {"tagged": 1, None: 2}
    assert cli.main([*base, "--by", "model"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "MODEL"
    for bad in ("bad key", "tag:", "9lives", "x" * 200):
        assert cli.main([*base, "--by", bad]) == 2
        err = capsys.readouterr().err
        assert "--by" in err and "Traceback" not in err


def test_costs_command_refuses_impossible_windows_clearly(
    server: CostAPIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["costs", "--url", server.url, "--api-key", KEY]
    for since in ("99999999999d", "999999999999999999999w", "1" + "0" * 400 + "s", "800000d"):
        assert cli.main([*base, "--since", since]) == 2, since
        err = capsys.readouterr().err
        assert "too long" in err and "Traceback" not in err
    assert cli.main([*base, "--since", "1d", "--until", "99999999999d"]) == 2
    assert "too long" in capsys.readouterr().err


def test_cost_api_command_with_a_missing_directory_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "deeper" / "a.sqlite"
    proc = _cli(["cost-api", "--db", str(missing), "--no-auth", "--port", "0"], {})
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "does not exist" in err and str(missing.parent) in err and "Traceback" not in err
    assert not missing.parent.exists()
