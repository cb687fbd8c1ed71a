"""os.fork() after instrument(): the child exits promptly, counts its own calls and delivers its own
records, even when the fork lands inside the spooler's write transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cost_support import KEY, Server, free_port
from tests_support import run_child

FORKING_APP = r"""
import json, os, sqlite3, sys, threading, time

mode, url, key, spool = sys.argv[1:5]
in_commit = threading.Event()


class SlowCommit(sqlite3.Connection):
    def execute(self, sql, *args):
        if (mode == "spool" and sql == "COMMIT" and not in_commit.is_set()
                and threading.current_thread().name == "llm-otel-cost-spooler"):
            in_commit.set()
            time.sleep(0.5)  # the main thread forks now, inside this write transaction
        return super().execute(sql, *args)


_connect = sqlite3.connect
sqlite3.connect = lambda *a, **k: _connect(*a, factory=SlowCommit, **k)

import llm_otel
from llm_otel.metrics_registry import REGISTRY

options = {"instrumentors": ()}  # "metrics": the /metrics endpoint on (its port from the environment)
if mode == "spool":
    options.update(cost_api_url=url, cost_api_key=key, spool_path=spool, prometheus_port=0)
handle = llm_otel.instrument(**options)


def calls(n, prefix):
    for i in range(n):
        llm_otel.record_usage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5,
                              id=f"{prefix}-{i}")


def requests():
    return sum(s.value for m in REGISTRY.collect() if m.name == "llm_otel_requests"
               for s in m.samples if s.name == "llm_otel_requests_total")


calls(100, "parent")
if mode == "spool":
    assert in_commit.wait(10)
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    before = requests()
    calls(50, "child")
    serving = getattr(handle.metrics_server, "serving", None)
    report = {"requests": requests() - before, "serving": serving, "exiting": time.monotonic()}
    os.write(write_end, json.dumps(report).encode())
    os.close(write_end)
    sys.exit(0)  # a normal exit: atexit runs handle.shutdown() in the child

os.close(write_end)
deadline = time.monotonic() + 20  # a watchdog: a hung child is killed and reported
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        exited = time.monotonic()
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        exited, status = None, None
        break
    time.sleep(0.005)
child = json.loads(os.read(read_end, 65536) or b"{}")
out = {"child": child, "status": status,
       "exit_seconds": None if exited is None or "exiting" not in child else exited - child["exiting"]}
if handle.metrics_server is not None:
    import urllib.request
    with urllib.request.urlopen(handle.metrics_server.url, timeout=5) as resp:  # the parent still serves
        out["scrape"] = resp.status
out["parent_requests"] = requests()
if mode == "spool":
    out["flushed"] = handle.flush(10_000)
print(json.dumps(out))
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "api.sqlite")
    yield srv
    srv.stop()


def fork_app(mode: str, api: Server, spool: Path, tmp_path: Path) -> dict:
    script = tmp_path / "app.py"
    script.write_text(FORKING_APP)
    code = f"import sys; sys.argv = ['app', {mode!r}, {api.url!r}, {KEY!r}, {str(spool)!r}]\n"
    code += f"exec(compile(open({str(script)!r}).read(), 'app.py', 'exec'))"
    return run_child(code, {"OTEL_EXPORTER_PROMETHEUS_PORT": str(free_port())})


def test_a_forked_child_exits_promptly_and_counts_its_calls(api: Server, tmp_path: Path) -> None:
    out = fork_app("metrics", api, tmp_path / "unused.sqlite", tmp_path)
    # The child used to hang forever at exit: stopping the endpoint waited for a thread it does not have.
    assert out["exit_seconds"] is not None, "the child hung at exit and was killed"
    assert out["status"] == 0
    print(f"\nchild exit after fork: {out['exit_seconds'] * 1000:.0f} ms")
    assert out["exit_seconds"] < 5
    assert out["child"]["requests"] == 50  # the metrics processor works in the child
    assert out["child"]["serving"] is False  # the child knows the endpoint is its parent's
    assert out["scrape"] == 200 and out["parent_requests"] == 100


def test_a_fork_inside_a_spool_transaction_leaves_the_child_a_working_spool(
    api: Server, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.sqlite"
    out = fork_app("spool", api, spool, tmp_path)
    # The child used to find the spool "locked" (it inherited the parent's transaction) for 30 s and more.
    assert out["exit_seconds"] is not None, "the child hung and was killed"
    assert out["status"] == 0
    print(f"\nchild exit after a fork inside a transaction: {out['exit_seconds'] * 1000:.0f} ms")
    assert out["child"]["requests"] == 50
    assert out["flushed"] is True
    # Every record of both processes reached the cost API exactly once.
    db = sqlite3.connect(tmp_path / "api.sqlite")
    ids = sorted(row[0] for row in db.execute("SELECT id FROM usage"))
    db.close()
    assert ids == sorted([f"parent-{i}" for i in range(100)] + [f"child-{i}" for i in range(50)])
