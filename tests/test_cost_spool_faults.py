"""The spool under faults: locked by another process, damaged, read-only, uncreatable, shared by two
applications. The application thread never waits on it, every loss is counted, and a record only ever goes
to the cost API it was recorded for."""

from __future__ import annotations

import gc
import logging
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cost_support import KEY, Server, dropped_total, emit, free_port, metric, tracer_for, wait_for
from opentelemetry.sdk.trace import TracerProvider
from tests_support import run_child

from llm_otel.errors import ConfigError
from llm_otel.exporters.cost import CostRecordProcessor, build_cost_processor
from llm_otel.exporters.cost.spool import count_records
from llm_otel.semconv import SCOPE_NAME

FAST = {
    "flush_interval": 0.05, "timeout": 0.4, "retry_initial": 0.05, "retry_max": 0.3, "shutdown_timeout": 0.5,
}  # fmt: skip


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.sqlite"


@pytest.fixture
def processors() -> Iterator[Callable[..., CostRecordProcessor]]:
    made: list[CostRecordProcessor] = []

    def factory(url: str, **kw: Any) -> CostRecordProcessor:
        processor = build_cost_processor(url, KEY, **{**FAST, **kw})
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


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock, until the parent says
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


CALLS = 3000


def test_a_spool_locked_by_another_process_never_stalls_calls(
    processors: Callable[..., CostRecordProcessor], spool: Path
) -> None:
    processor = processors(f"http://127.0.0.1:{free_port()}", spool_path=spool, max_queue=50)
    tracer = tracer_for(processor)
    emit(tracer, 5)
    assert wait_for(lambda: count_records(spool) == 5)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(spool)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        dropped = dropped_total()
        durations: list[float] = []
        gc.collect()
        gc.freeze()  # the printed figures are then the exporter's, not a collection of pytest's heap

        def calls() -> None:
            for _ in range(CALLS):
                started = time.perf_counter()
                emit(tracer, 1)
                durations.append(time.perf_counter() - started)

        app = threading.Thread(target=calls, name="application")
        app.start()
        app.join(20)  # each call used to wait out SQLite's 30 s busy timeout once the queue was full
        assert not app.is_alive(), "an application call waited for the locked spool"
        lost = dropped_total() - dropped
        # Memory holds at most max_queue + 1000 spans queued and 1000 records the spooler mapped;
        # beyond that, records were dropped and counted.
        assert CALLS - 50 - 2000 <= lost < CALLS
        print(
            f"\ncalls with the spool locked: median {statistics.median(durations) * 1e3:.3f} ms, "
            f"max {max(durations) * 1e3:.2f} ms; {lost:.0f} of {CALLS} dropped"
        )
    finally:
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(10)
    # Everything not counted as dropped reaches the spool once the lock is gone.
    assert wait_for(lambda: count_records(spool) == 5 + CALLS - lost)
    assert not processor.exporter.queue


@pytest.mark.parametrize("where", ["table-root", "middle"])
def test_a_damaged_spool_is_moved_aside_and_a_new_one_started(
    where: str,
    processors: Callable[..., CostRecordProcessor],
    server: Server,
    spool: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    first = processors(down, spool_path=spool)
    emit(tracer_for(first), 400)
    assert wait_for(lambda: count_records(spool) == 400)
    first.shutdown()
    assert not Path(str(spool) + "-wal").exists()  # checkpointed: the rows are in the main file
    page = 4096
    offset = page if where == "table-root" else (spool.stat().st_size // page // 2) * page
    with open(spool, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xa5" * page)
    damaged, lost = metric("spool_damaged_total"), metric("records_dropped_total", reason="spool_damaged")

    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        again = processors(down, spool_path=spool)  # used to raise sqlite3.DatabaseError (or fail later)
    kept = list(spool.parent.glob("spool.sqlite.damaged-*"))
    assert [p.name for p in kept if not p.name.endswith(("-wal", "-shm"))], "the damaged file is kept"
    assert "is damaged" in caplog.text and str(kept[0]) in caplog.text
    assert metric("spool_damaged_total") == damaged + 1
    recovered = again.exporter.spool_depth()
    assert recovered + metric("records_dropped_total", reason="spool_damaged") - lost == 400
    if where == "middle":
        assert recovered > 0
    # The new spool works: records recorded now reach a cost API.
    fresh = processors(server.url, spool_path=spool)
    emit(tracer_for(fresh), 20)
    assert fresh.force_flush(10_000) is True
    assert server.count() == 20


def test_an_uncreatable_default_spool_directory_falls_back_to_a_temporary_spool(
    processors: Callable[..., CostRecordProcessor],
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        processor = processors(server.url)  # the default location: used to raise ConfigError
    exporter = processor.exporter
    assert exporter.temporary_spool and not exporter.spool_path.is_relative_to(blocker)
    assert "cannot use the default cost spool" in caplog.text and "LLM_OTEL_SPOOL_PATH" in caplog.text
    emit(tracer_for(processor), 30)
    assert processor.force_flush(10_000) is True
    assert server.count() == 30
    # A path the user chose is an error, not a fallback.
    with pytest.raises(ConfigError) as err:
        build_cost_processor(server.url, KEY, spool_path=blocker / "spool.sqlite")
    assert err.value.setting == "spool_path"


def test_a_temporary_spool_counts_what_it_could_not_deliver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("")
    left = metric("records_dropped_total", reason="temporary_spool")
    processor = build_cost_processor(f"http://127.0.0.1:{free_port()}", KEY, **FAST)
    emit(tracer_for(processor), 12)
    processor.shutdown()
    assert metric("records_dropped_total", reason="temporary_spool") - left == 12


READ_ONLY = """
    import ctypes, json, logging, os, sqlite3, sys
    if os.geteuid() == 0:  # root writes read-only files: drop CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH
        libc = ctypes.CDLL(None, use_errno=True)
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        header, data = Header(0x20080522, 0), (Data * 2)()
        if libc.capget(ctypes.byref(header), data) == 0:
            for d in data:
                d.effective &= ~0b110; d.permitted &= ~0b110; d.inheritable &= ~0b110
            libc.capset(ctypes.byref(header), data)
    spool, url, key = os.environ["SPOOL"], os.environ["URL"], os.environ["KEY"]
    probe = sqlite3.connect(spool, isolation_level=None)
    try:
        probe.execute("CREATE TABLE probe (x)")
        print(json.dumps({"skip": "this process can write a read-only file"}))
        sys.exit(0)
    except sqlite3.OperationalError:
        pass
    finally:
        probe.close()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("llm_otel").addHandler(handler)
    import llm_otel
    out = {}
    try:
        llm_otel.instrument(cost_api_url=url, cost_api_key=key, spool_path=spool, prometheus_port=0,
                            instrumentors=())
        out["explicit"] = "started"
    except llm_otel.ConfigError as exc:
        out["explicit"] = exc.setting
    llm_otel.uninstrument()
    handle = llm_otel.instrument(cost_api_url=url, cost_api_key=key, prometheus_port=0, instrumentors=())
    llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=5, output_tokens=1, id="ro-1")
    out["flushed"] = handle.flush(10_000)
    out["warned"] = any("cannot use the default cost spool" in m for m in messages)
    print(json.dumps(out))
"""


def test_a_read_only_spool_is_an_error_when_chosen_and_a_fallback_by_default(
    server: Server, tmp_path: Path
) -> None:
    data = tmp_path / "data"  # XDG_DATA_HOME: the default spool would be created in data/llm-otel
    spool = data / "llm-otel" / "chosen.sqlite"
    spool.parent.mkdir(parents=True)
    db = sqlite3.connect(spool)
    db.execute("CREATE TABLE t (x)")
    db.close()
    spool.chmod(0o444)
    spool.parent.chmod(0o555)  # neither a -wal/-shm next to it nor the default spool can be created
    try:
        out = run_child(
            READ_ONLY, {"SPOOL": str(spool), "URL": server.url, "KEY": KEY, "XDG_DATA_HOME": str(data)}
        )
    finally:
        spool.parent.chmod(0o755)
    if "skip" in out:
        pytest.skip(out["skip"])
    # Chosen by the user: refused at start-up (it used to start, then lose every record).
    assert out["explicit"] == "spool_path"
    # The default location: a temporary spool, a warning, and the record delivered.
    assert out["warned"] and out["flushed"]
    assert server.count() == 1


def test_records_only_go_to_the_destination_they_were_recorded_for(
    processors: Callable[..., CostRecordProcessor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # both apps use the default location
    port_a = free_port()
    url_a = f"http://127.0.0.1:{port_a}"
    api_b = Server(tmp_path / "b.sqlite")
    try:
        app_a = processors(url_a)  # API A is down: its records wait in the spool
        emit(tracer_for(app_a), 30)
        assert wait_for(lambda: app_a.exporter.spool_depth() == 30)
        app_a.shutdown()

        app_b = processors(api_b.url)
        emit(tracer_for(app_b), 20)
        assert app_b.force_flush(10_000) is True
        time.sleep(0.3)  # B's sender has had more rounds: it still must not take A's records
        assert api_b.count() == 20
        app_b.shutdown()

        api_a = Server(tmp_path / "a.sqlite", port=port_a)
        try:
            restarted = processors(url_a)
            assert wait_for(lambda: api_a.count() == 30)
            assert restarted.force_flush(10_000) is True
            assert api_a.count() == 30 and api_b.count() == 20
        finally:
            api_a.stop()
    finally:
        api_b.stop()


def test_one_spool_file_shared_by_two_destinations_keeps_them_apart(
    processors: Callable[..., CostRecordProcessor], spool: Path, tmp_path: Path
) -> None:
    api_b = Server(tmp_path / "b.sqlite")
    try:
        app_a = processors(f"http://127.0.0.1:{free_port()}", spool_path=spool)  # down
        app_b = processors(api_b.url, spool_path=spool)
        emit(tracer_for(app_a), 25)
        emit(tracer_for(app_b), 10)
        assert wait_for(lambda: count_records(spool) == 25)
        assert app_b.force_flush(10_000) is True
        assert api_b.count() == 10
        assert app_a.exporter.spool_depth() == 25 and app_b.exporter.spool_depth() == 0
    finally:
        api_b.stop()


def test_same_record_for_two_destinations_is_kept_for_each(tmp_path: Path) -> None:
    """One span, two exporters on one file (two cost APIs): the record is stored once per destination."""
    spool = tmp_path / "shared.sqlite"
    a = build_cost_processor(f"http://127.0.0.1:{free_port()}", KEY, spool_path=spool, **FAST)
    b = build_cost_processor(f"http://127.0.0.1:{free_port()}", KEY, spool_path=spool, **FAST)
    try:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(a)
        provider.add_span_processor(b)
        emit(provider.get_tracer(SCOPE_NAME), 7)
        assert wait_for(lambda: count_records(spool) == 14)
        assert a.exporter.spool_depth() == 7 == b.exporter.spool_depth()
    finally:
        a.shutdown()
        b.shutdown()


def old_spool(path: Path, rows: int) -> None:
    """A spool file as earlier llm-otel versions wrote it: no destination."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
        "body TEXT NOT NULL, lease_until REAL NOT NULL DEFAULT 0)"
    )
    db.executemany("INSERT INTO spool (id, body) VALUES (?, '{}')", [(f"old-{i}",) for i in range(rows)])
    db.commit()
    db.close()


@pytest.mark.parametrize("where", ["chosen", "former-default"])
def test_rows_of_an_older_spool_without_a_destination_are_left_alone(
    where: str,
    processors: Callable[..., CostRecordProcessor],
    server: Server,
    spool: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if where == "chosen":
        old, options = spool, {"spool_path": spool}
    else:  # $XDG_DATA_HOME/llm-otel/spool.sqlite, which every application used to share
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        old, options = tmp_path / "data" / "llm-otel" / "spool.sqlite", {}
    old_spool(old, 3)
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        processor = processors(server.url, **options)
    assert f"3 cost record(s) written by an older llm-otel in {old}" in caplog.text
    emit(tracer_for(processor), 4)
    assert processor.force_flush(10_000) is True
    assert server.count() == 4
    db = sqlite3.connect(old)
    assert db.execute("SELECT COUNT(*) FROM spool").fetchone()[0] == 3  # kept, never sent anywhere
    db.close()


def test_a_row_the_spool_refuses_does_not_hold_back_its_batch(
    processors: Callable[..., CostRecordProcessor],
    server: Server,
    spool: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One record SQLite cannot store (here a body that is not valid Unicode, as a mapping bug would make)
    fails the batch insert: the other records of that batch are still spooled and delivered, the bad one is
    dropped and counted once, and it is not retried forever."""
    from llm_otel.exporters.cost import exporter as exporter_module

    real = exporter_module.records.span_to_row
    calls = {"n": 0}

    def one_bad(span: Any, organization_id: str | None = None) -> tuple[str, str] | None:
        row = real(span, organization_id)
        calls["n"] += 1
        if row is not None and calls["n"] == 3:
            return row[0], row[1] + "\ud800"  # the spool's UTF-8 bind fails on this one only
        return row

    monkeypatch.setattr(exporter_module.records, "span_to_row", one_bad)
    errors_before = metric("records_dropped_total", reason="spool_error")
    processor = processors(server.url, spool_path=spool)
    emit(tracer_for(processor), 10)
    assert processor.force_flush(10_000)
    assert server.count() == 9
    assert metric("records_dropped_total", reason="spool_error") == errors_before + 1
    assert count_records(spool) == 0
    assert not processor.exporter._pending


def test_claim_delete_and_release_work_on_batches_larger_than_one_statement(tmp_path: Path) -> None:
    """Leases, deletes and releases go in chunks of ids per statement: a 1,000-record batch (the largest)
    spans several chunks, and each touches exactly the rows it names, for its own destination only."""
    from llm_otel.exporters.cost.spool import Spool, prepare

    path = tmp_path / "spool.sqlite"
    prepare(path)
    mine, other = Spool(path, 10**6, "a "), Spool(path, 10**6, "b ")
    rows = [(f"id-{i:05d}", f'{{"n":{i}}}') for i in range(1200)]
    assert mine.add(rows) == (1200, 0) and other.add(rows[:10]) == (10, 0)
    first = mine.claim(1000, lease_seconds=60)
    assert [rid for rid, _ in first] == [rid for rid, _ in rows[:1000]]
    second = mine.claim(1000, lease_seconds=60)
    assert [rid for rid, _ in second] == [rid for rid, _ in rows[1000:]]
    assert mine.claim(1000, lease_seconds=60) == []
    mine.delete([rid for rid, _ in first])
    assert mine.count() == 200 and other.count() == 10
    mine.release([rid for rid, _ in second])
    assert [rid for rid, _ in mine.claim(1000, lease_seconds=60)] == [rid for rid, _ in rows[1000:]]
    assert len(other.claim(1000, lease_seconds=60)) == 10
    mine.close()
    other.close()
