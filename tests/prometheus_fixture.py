"""A real Prometheus server (Debian's ``prometheus`` package) and promtool, for tests.

:class:`PrometheusServer` starts ``/usr/bin/prometheus`` on 127.0.0.1 (a free port), with a temp config
scraping the given targets every second and a temp TSDB, waits until it is ready, answers instant queries
and stops the process it started (by its PID). Prometheus 2.42 batches target discovery for 5 s after
start, so the first sample is queryable about 5.5 s after :meth:`start`: callers poll (:meth:`wait_for`).

Missing binaries skip the test, except in CI (``CI`` set to true/1/yes), where they fail it: .ci/run must
``apt-get install -y --no-install-recommends prometheus``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

READY_TIMEOUT_S = 10.0
QUERY_TIMEOUT_S = 15.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(tool: str) -> str:
    """Path of ``tool`` (PATH or /usr/bin); skip the test when absent, fail it when absent in CI."""
    path = shutil.which(tool) or (f"/usr/bin/{tool}" if os.access(f"/usr/bin/{tool}", os.X_OK) else None)
    if path:
        return path
    message = f"{tool} not installed (apt-get install -y --no-install-recommends prometheus)"
    if in_ci():
        pytest.fail(message + " -- required in CI")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run promtool; the result carries rc, stdout and stderr (callers assert on them)."""
    return subprocess.run(
        [need("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=30, cwd=cwd
    )


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


class PrometheusServer:
    """One Prometheus process scraping ``targets`` (host:port) every second."""

    def __init__(self, targets: list[str], workdir: Path, job: str = "llm_otel_test") -> None:
        self.binary = need("prometheus")
        self.targets = targets
        self.workdir = workdir
        self.job = job
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            "scrape_configs:\n"
            f"  - job_name: {self.job}\n"
            f"    static_configs: [{{targets: {json.dumps(self.targets)}}}]\n"
        )
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self.port = free_port()
            log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"prometheus did not become ready; log:\n{self.log()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def query(self, expr: str) -> list[dict[str, object]]:
        """Instant query; the ``result`` list of the API answer."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def scalar(self, expr: str) -> float | None:
        """Value of a single-series query (e.g. ``sum(...)``), None while there is no sample."""
        result = self.query(expr)
        if not result:
            return None
        value = result[0]["value"]
        assert isinstance(value, list)
        return float(value[1])

    def wait_for(self, expected: Mapping[str, float], timeout: float = QUERY_TIMEOUT_S) -> dict[str, float]:
        """Poll until every query returns its expected value; returns the last values seen either way
        (NaN for a query without a sample yet)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {expr: _or_nan(self.scalar(expr)) for expr in expected}
            if all(
                abs(seen[expr] - value) <= 1e-9 * max(1.0, abs(value)) for expr, value in expected.items()
            ):
                return seen
            if time.monotonic() > deadline:
                return seen
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the process this object started (by its PID); idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Samples:
    """The samples of one ``/metrics`` scrape (text format, parsed by prometheus-client's parser)."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = text
        self.rows: list[tuple[str, dict[str, str], float]] = [
            (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
        ]

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Samples called ``name`` whose labels include ``labels``."""
        return [
            (lab, value)
            for n, lab, value in self.rows
            if n == name and all(lab.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The one sample called ``name`` with exactly these labels (a missing label matches ``""``)."""
        found = [
            value
            for n, lab, value in self.rows
            if n == name
            and {k: v for k, v in lab.items() if v != ""} == {k: v for k, v in labels.items() if v}
        ]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples; have {self.names()}"
        return found[0]

    def buckets(self, name: str, **labels: str) -> dict[float, float]:
        """Cumulative bucket counts of a histogram series, by upper bound (``le``) as a float."""
        return {float(lab["le"]): value for lab, value in self.series(name + "_bucket", **labels)}

    def total(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.series(name, **labels))

    def names(self) -> set[str]:
        return {n for n, _, _ in self.rows}


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return Samples(response.read().decode())
