"""CostAPIExporter end to end: real HTTP to the reference server, a misbehaving proxy in front of it."""

from __future__ import annotations

import http.client
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cost_support import (
    COST,
    KEY,
    RecordOnlySampler,
    Server,
    emit,
    free_port,
    metric,
    tracer_for,
    wait_for,
)
from opentelemetry.sdk.trace import TracerProvider

from llm_otel.errors import ConfigError
from llm_otel.exporters.cost import CostRecordProcessor, build_cost_processor
from llm_otel.exporters.cost.spool import count_records
from llm_otel.exporters.cost.transport import parse_retry_after
from llm_otel.semconv import SCOPE_NAME


class FlakyProxy:
    """In front of the reference server: misbehaves according to ``mode``, forwards when ``mode == "ok"``.

    ``"hang"`` holds every request unanswered until ``release`` is set (``hanging`` is set once one is held).
    """

    def __init__(self, upstream: str, mode: str) -> None:
        self.upstream = upstream
        self.mode = mode
        self.requests = 0
        self.arrivals: list[float] = []  # time.monotonic() of each request, in arrival order
        self.in_flight = 0
        self.hanging = threading.Event()
        self.release = threading.Event()
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    proxy.requests += 1
                    proxy.arrivals.append(time.monotonic())
                    proxy.in_flight += 1
                try:
                    proxy.answer(self, body)
                except OSError:
                    self.close_connection = True  # the client gave up (timeout) first
                finally:
                    with lock:
                        proxy.in_flight -= 1

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def answer(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self.mode
        if mode == "429":
            self.reply(h, 429, b'{"error": "slow down"}', {"Retry-After": "1"})
        elif mode == "500":
            self.reply(h, 500, b"internal error")
        elif mode == "garbage200":
            self.reply(h, 200, b"<html>captive portal</html>", {"Content-Type": "text/html"})
        elif mode == "garbage_bytes":
            h.wfile.write(b"\x00\xff this is not HTTP \r\n\r\n")
            h.close_connection = True
        elif mode == "401":
            self.reply(h, 401, b'{"error": "bad key"}')
        elif mode == "hang":
            self.hanging.set()
            self.release.wait()
            self.reply(h, 503, b"gave up")
        else:
            if mode == "slow":
                time.sleep(0.8)  # longer than the exporter's timeout, then deliver anyway
            conn = http.client.HTTPConnection(self.upstream.split("//")[1], timeout=10)
            headers = {
                k: v for k, v in h.headers.items() if k.lower() in ("authorization", "content-encoding")
            }
            conn.request(
                "POST", "/v1/usage", body=body, headers={**headers, "Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            self.reply(h, resp.status, resp.read())
            conn.close()

    @staticmethod
    def reply(
        h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def stop(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.sqlite"


@pytest.fixture
def make_processor(spool: Path) -> Iterator[Callable[..., CostRecordProcessor]]:
    made: list[CostRecordProcessor] = []

    def factory(url: str, **kw: Any) -> CostRecordProcessor:
        options: dict[str, Any] = {
            "spool_path": spool, "flush_interval": 0.05, "timeout": 0.4, "retry_initial": 0.05,
            "retry_max": 0.3, "shutdown_timeout": 0.5,
        }  # fmt: skip
        options.update(kw)
        processor = build_cost_processor(url, KEY, **options)
        made.append(processor)
        return processor

    yield factory
    for processor in made:
        processor.shutdown()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "api.sqlite")
    yield srv
    srv.stop()


def assert_delivered_exactly(
    srv: Server, n: int, processor: CostRecordProcessor, proxy: FlakyProxy | None = None
) -> None:
    assert wait_for(lambda: srv.count() >= n), f"server holds {srv.count()} of {n}"
    # Nothing can arrive later: the exporter has nothing left to send, and no request is still on its way.
    assert processor.force_flush(10_000) is True
    assert processor.exporter.spool_depth() == 0
    if proxy is not None:
        assert wait_for(lambda: proxy.in_flight == 0)
    totals = srv.totals()["total"]
    assert totals["records"] == n == srv.count()
    assert Decimal(totals["cost_usd"]) == Decimal(repr(COST)) * n


def test_api_down_then_up_delivers_every_record_once(
    make_processor: Callable[..., CostRecordProcessor], spool: Path, tmp_path: Path
) -> None:
    port = free_port()
    processor = make_processor(f"http://127.0.0.1:{port}")
    tracer = tracer_for(processor)
    retried, sent = metric("records_retried_total"), metric("records_sent_total")
    emit(tracer, 300)
    assert wait_for(lambda: count_records(spool) == 300)
    assert wait_for(lambda: metric("records_retried_total") > retried)
    srv = Server(tmp_path / "api.sqlite", port=port)
    try:
        emit(tracer, 200)  # while the backlog replays
        assert_delivered_exactly(srv, 500, processor)
        assert wait_for(lambda: count_records(spool) == 0)
        assert metric("records_sent_total") - sent == 500
        assert metric("spool_depth") == 0
        assert metric("last_success_timestamp_seconds") > time.time() - 60
        groups = {g["key"]: g for g in srv.totals()["groups"]}
        assert groups["gpt-4o-mini"]["records"] == 500 and groups["gpt-4o-mini"]["input_tokens"] == 5000
        db = sqlite3.connect(tmp_path / "api.sqlite")
        row = db.execute(
            "SELECT organization_id, service_name, attributes, cost_usd FROM usage LIMIT 1"
        ).fetchone()
        db.close()
        assert row == ("org-7", "svc", '{"tenant": "acme"}', "0.000000123456")
    finally:
        srv.stop()


def test_unsampled_spans_are_still_billed(
    make_processor: Callable[..., CostRecordProcessor], server: Server
) -> None:
    processor = make_processor(server.url)
    emit(tracer_for(processor, sampler=RecordOnlySampler()), 50)
    assert_delivered_exactly(server, 50, processor)


@pytest.mark.parametrize("mode", ["429", "500", "slow", "garbage200", "garbage_bytes"])
def test_bad_api_never_slows_the_app_and_loses_nothing(
    mode: str,
    make_processor: Callable[..., CostRecordProcessor],
    server: Server,
    spool: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = FlakyProxy(server.url, mode)
    release = threading.Event()
    try:
        processor = make_processor(proxy.url, timeout=0.3)
        tracer = tracer_for(processor)
        retried = metric("records_retried_total")
        emit(tracer, 10)  # warm up the SDK and the proxy
        assert wait_for(lambda: metric("records_retried_total") > retried)

        # Hold the sender inside its next request: from here on the cost API answers nothing.
        transport = processor.exporter._transport
        post, sending = transport.post, threading.Event()

        def held_post(body: bytes, timeout: float) -> Any:
            sending.set()
            release.wait()
            return post(body, timeout)

        monkeypatch.setattr(transport, "post", held_post)
        assert sending.wait(15)
        app = threading.Thread(target=emit, args=(tracer, 200), name="application")
        app.start()
        app.join(60)  # a generous guard: blocked on the held request, on_end would never return
        assert not app.is_alive(), "the application thread waited for the cost API"
        # Every span was accepted and reached the spool while the request was still held.
        assert wait_for(lambda: count_records(spool) == 210)
        assert not release.is_set()
        if mode != "slow":  # nothing reaches the server; everything waits in the spool
            assert server.count() == 0
        release.set()

        if mode == "429":  # Retry-After: 1 is honoured, not hammered
            seen = len(proxy.arrivals)
            assert wait_for(lambda: len(proxy.arrivals) >= seen + 3)
            arrivals = proxy.arrivals[seen - 1 :]
            gaps = [later - earlier for earlier, later in pairwise(arrivals)]
            assert min(gaps) >= 1.0, gaps
        proxy.mode = "ok"
        assert_delivered_exactly(server, 210, processor, proxy)
        assert count_records(spool) == 0
    finally:
        release.set()
        proxy.stop()


def test_auth_failure_keeps_records_spooled_and_retries_slowly(
    make_processor: Callable[..., CostRecordProcessor], server: Server, spool: Path
) -> None:
    proxy = FlakyProxy(server.url, "401")
    try:
        processor = make_processor(proxy.url, slow_retry_interval=60.0)
        emit(tracer_for(processor), 30)
        assert wait_for(lambda: proxy.requests >= 1)
        time.sleep(1.0)
        assert proxy.requests == 1
        assert count_records(spool) == 30
        assert processor.force_flush(200) is False  # in slow-retry: flush gives up at once
    finally:
        proxy.stop()


def test_invalid_record_is_dead_lettered_the_rest_accepted(
    make_processor: Callable[..., CostRecordProcessor], server: Server, spool: Path
) -> None:
    dead = metric("records_dead_lettered_total")
    processor = make_processor(server.url, flush_interval=5.0)
    tracer = tracer_for(processor)
    emit(tracer, 9)
    emit(tracer, 1, model="m" * 300)  # the server allows at most 256 characters per model id
    assert processor.force_flush(5000) is True
    assert server.count() == 9
    assert metric("records_dead_lettered_total") - dead == 1
    lines = (spool.parent / "spool.deadletter.jsonl").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (
        entry["status"] == 400 and "model_id" in entry["error"] and entry["record"]["model_id"] == "m" * 300
    )
    assert count_records(spool) == 0


@pytest.mark.parametrize("api", ["down", "hanging"])
def test_shutdown_with_api_unavailable_keeps_records_and_respects_the_deadline(
    api: str,
    make_processor: Callable[..., CostRecordProcessor],
    server: Server,
    spool: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = FlakyProxy(server.url, "hang")
    try:
        url = proxy.url if api == "hanging" else f"http://127.0.0.1:{free_port()}"
        # A request may take 600 s: only the shutdown deadline can end the wait for a hanging API.
        processor = make_processor(url, timeout=600.0)
        emit(tracer_for(processor), 40)
        if api == "hanging":
            assert proxy.hanging.wait(15)  # the sender is inside a request that will not be answered
        shutdown = threading.Thread(target=processor.exporter.shutdown, kwargs={"timeout": 0.5})
        with caplog.at_level(logging.INFO, logger="llm_otel"):
            shutdown.start()
            shutdown.join(60)  # a generous guard: without the deadline, shutdown would wait 600 s
            assert not shutdown.is_alive(), "shutdown waited for the cost API instead of its deadline"
        assert not proxy.release.is_set()  # the hanging request was still unanswered when shutdown returned
        assert "cost API not reached before the shutdown deadline; records stay spooled" in caplog.text
        assert processor.exporter.spool_depth() == 40
        assert server.count() == 0
    finally:
        proxy.stop()


def test_spool_cap_drops_are_counted(make_processor: Callable[..., CostRecordProcessor], spool: Path) -> None:
    dropped = metric("records_dropped_total", reason="spool_full")
    processor = make_processor(f"http://127.0.0.1:{free_port()}", spool_max_records=50)
    emit(tracer_for(processor), 80)
    assert wait_for(lambda: metric("records_dropped_total", reason="spool_full") - dropped == 30)
    assert count_records(spool) == 50


def test_queue_overflow_spools_on_the_calling_thread_instead_of_dropping(
    make_processor: Callable[..., CostRecordProcessor], spool: Path
) -> None:
    dropped = metric("records_dropped_total", reason="spool_error")
    processor = make_processor(f"http://127.0.0.1:{free_port()}", max_queue=5, flush_interval=5.0)
    emit(tracer_for(processor), 300)
    assert wait_for(lambda: count_records(spool) == 300)
    assert metric("records_dropped_total", reason="spool_error") == dropped


def test_spans_of_other_instrumentation_scopes_are_ignored(
    make_processor: Callable[..., CostRecordProcessor], server: Server
) -> None:
    processor = make_processor(server.url)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    with provider.get_tracer("somebody.else").start_as_current_span("x") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
    assert not processor.exporter.queue
    with provider.get_tracer(SCOPE_NAME).start_as_current_span("not genai"):
        pass
    assert processor.force_flush(2000) is True
    assert server.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"url": "ftp://example.com"}, "cost_api_url"),
        ({"url": "http://"}, "cost_api_url"),
        ({"url": "localhost:8787"}, "cost_api_url"),
        ({"url": "http://h:99999"}, "cost_api_url"),
        ({"max_batch": 0}, "cost_api_max_batch"),
        ({"max_batch": 1001}, "cost_api_max_batch"),
        ({"timeout": -1}, "cost_api_timeout"),
        ({"flush_interval": "1"}, "cost_api_flush_interval"),
        ({"max_queue": 0}, "cost_api_max_queue"),
        ({"api_key": "a\nb"}, "cost_api_key"),
    ],
)
def test_bad_configuration_is_rejected_at_construction(
    kwargs: dict[str, Any], setting: str, spool: Path
) -> None:
    args: dict[str, Any] = {"url": "http://127.0.0.1:1", "api_key": KEY, "spool_path": spool, **kwargs}
    with pytest.raises(ConfigError) as err:
        build_cost_processor(args.pop("url"), args.pop("api_key"), **args)
    assert err.value.setting == setting
    assert "a\nb" not in str(err.value)


def test_unusable_spool_path_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        build_cost_processor("http://127.0.0.1:1", KEY, spool_path=blocker / "spool.sqlite")
    assert err.value.setting == "spool_path"


def test_default_spool_path_is_one_file_per_destination_under_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llm_otel.config import default_spool_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    a = Path(default_spool_path("https://a.example"))
    assert a.parent == tmp_path / "llm-otel"
    assert re.fullmatch(r"spool-[0-9a-f]{12}\.sqlite", a.name)
    assert Path(default_spool_path("https://a.example", None)) == a  # stable
    others = {
        default_spool_path("https://a.example", "org-1"),
        default_spool_path("https://a.example", "org-2"),
        default_spool_path("https://b.example"),
    }
    assert len(others | {str(a)}) == 4
    monkeypatch.delenv("XDG_DATA_HOME")
    home = Path.home() / ".local" / "share" / "llm-otel"
    assert Path(default_spool_path("https://a.example")) == home / a.name


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
