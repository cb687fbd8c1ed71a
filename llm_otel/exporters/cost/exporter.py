"""The cost API exporter: queue (memory) -> spool (disk) -> cost API (HTTP), exactly once.

Three stages, three threads, so that no stage can slow the one before it:

1. ``CostRecordProcessor.on_end`` (application thread, ``processor.py``) only checks the instrumentation
   scope and appends the finished span to this exporter's in-memory deque. It sees recorded-but-unsampled
   spans too (the SDK calls ``on_end`` for every recording span; only ``BatchSpanProcessor`` looks at the
   sampled flag).
2. The *spooler* thread wakes every 200 ms (or as soon as a batch is queued), maps spans to records and
   commits them to the SQLite spool in one transaction. Spans still in the deque are the only loss window
   on SIGKILL: at most ~200 ms of calls (or one batch, whichever comes first).
3. The *sender* thread leases the oldest rows, POSTs them (gzip JSON) and deletes them only after the
   server acknowledged them. The server ignores repeated ids, so a crash between its 2xx and our delete
   costs a duplicate *request*, never a duplicate *record*.

HTTP details (keep-alive connection, Retry-After, backoff) live in ``transport.py``; the self-metrics in
``metrics.py``; the span -> record mapping in ``records.py``; the SQLite spool in ``spool.py``; the record
format and the limits the server enforces in :mod:`llm_otel.cost_contract`.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ... import cost_contract as c
from ...config import default_spool_path, parse_url
from ...errors import ConfigError
from ...guard import report
from ...semconv import SCOPE_NAME
from . import records
from .metrics import (
    LAST_SUCCESS,
    RECORDS_DEAD_LETTERED,
    RECORDS_DROPPED,
    RECORDS_RETRIED,
    RECORDS_SENT,
    RECORDS_SPOOLED,
    SPOOL_DEPTH,
)
from .spool import DeadLetterFile, Spool, count_records, dead_letter_path
from .transport import Backoff, Transport, parse_json, parse_retry_after

logger = logging.getLogger("llm_otel")

#: Upper bound on how long a finished span waits in memory before it is on disk (the SIGKILL loss window).
SPOOL_INTERVAL = 0.2
#: Largest ``max_batch``: the most records the cost API accepts in one request.
MAX_BATCH_LIMIT = c.MAX_RECORDS_PER_REQUEST


# --- configuration -----------------------------------------------------------------------------------


def _check_number(setting: str, value: object, low: float, high: float, integer: bool = False) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(setting, value, "must be an integer" if integer else "must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(setting, value, "must be finite")
    if not low <= value <= high:  # type: ignore[operator]
        raise ConfigError(setting, value, f"must be between {low:g} and {high:g}")


def validate_url(url: object) -> str:
    """The base URL, without trailing slash (``config.parse_url``), and nothing a bearer key could leak to."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("cost_api_url", url, "must be an http:// or https:// URL")
    base = parse_url("cost_api_url", url.strip())
    parts = urlsplit(base)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("cost_api_url", url, "must not contain a query, fragment or credentials")
    return base


def _validate_key(api_key: object) -> str | None:
    if api_key is None:
        return None
    if not isinstance(api_key, str) or not api_key or any(ch in api_key for ch in "\r\n\0"):
        # Never echo a secret in an error message.
        raise ConfigError("cost_api_key", "<redacted>", "must be a non-empty string, no control characters")
    return api_key


# --- the exporter ------------------------------------------------------------------------------------


class CostAPIExporter(SpanExporter):
    """Owns the queue, the spool and the two background threads; all arguments are validated here, at
    configuration time. Usually fed by :class:`CostRecordProcessor` (see :func:`build_cost_processor`),
    which also sees unsampled GenAI spans; as a plain ``SpanExporter`` behind another processor it only
    gets what that processor exports (a ``BatchSpanProcessor`` would drop unsampled calls' records)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        organization_id: str | None = None,
        spool_path: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
        max_batch: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        spool_max_records: int = 1_000_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        slow_retry_interval: float = 60.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.url = validate_url(url)
        self._api_key = _validate_key(api_key)
        if organization_id is not None and (not isinstance(organization_id, str) or not organization_id):
            raise ConfigError("organization_id", organization_id, "must be a non-empty string")
        _check_number("cost_api_timeout", timeout, 0.001, 600)
        _check_number("cost_api_max_batch", max_batch, 1, MAX_BATCH_LIMIT, integer=True)
        _check_number("cost_api_flush_interval", flush_interval, 0.001, 3600)
        _check_number("cost_api_max_queue", max_queue, 1, 10_000_000, integer=True)
        _check_number("spool_max_records", spool_max_records, 1, 10**12, integer=True)
        _check_number("cost_api_retry_initial", retry_initial, 0.0, 3600)
        _check_number("cost_api_retry_max", retry_max, 0.0, 86400)
        _check_number("cost_api_slow_retry_interval", slow_retry_interval, 0.0, 86400)
        _check_number("cost_api_shutdown_timeout", shutdown_timeout, 0.0, 3600)
        if spool_path is not None and not isinstance(spool_path, (str, os.PathLike)):
            raise ConfigError("spool_path", spool_path, "must be a path")
        self.spool_path = Path(os.fspath(spool_path or default_spool_path())).expanduser()
        self.organization_id = organization_id
        self.timeout = float(timeout)
        self.max_batch = max_batch
        self.flush_interval = float(flush_interval)
        self.max_queue = max_queue
        self.spool_max_records = spool_max_records
        self.shutdown_timeout = float(shutdown_timeout)
        self._slow_retry_interval = float(slow_retry_interval)
        self._backoff = Backoff(retry_initial, retry_max, max(300.0, retry_max))
        self.dead_letter = DeadLetterFile(dead_letter_path(self.spool_path))
        #: Finished spans waiting for the spooler. Appended to by the application thread only.
        self.queue: deque[ReadableSpan] = deque()
        self._shut_down = False
        self._start()
        weak = weakref.WeakMethod(self._after_fork)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _call_weak(weak))

    # -- lifecycle

    def _start(self) -> None:
        self._spooler_db = Spool(self.spool_path, self.spool_max_records)  # ConfigError if unusable
        self._sender_db = Spool(self.spool_path, self.spool_max_records)
        self._transport = Transport(self.url, self._api_key)
        self._batch_limit = self.max_batch
        self._not_before = 0.0
        self._logged: set[str] = set()
        self._drain_lock = threading.Lock()
        self._overflow_lock = threading.Lock()
        self._overflow_db: Spool | None = None
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self.spool_wake = threading.Event()
        self._send_wake = threading.Event()
        depth = self._sender_db.count()
        SPOOL_DEPTH.set(depth)
        if depth:
            self._send_wake.set()  # replay what a previous process left behind, right away
        self._spooler = threading.Thread(target=self._spooler_loop, name="llm-otel-cost-spooler", daemon=True)
        self._sender = threading.Thread(target=self._sender_loop, name="llm-otel-cost-sender", daemon=True)
        self._spooler.start()
        self._sender.start()

    def _after_fork(self) -> None:
        """The child has no threads and must not use the parent's SQLite connections or socket."""
        if self._shut_down:
            return
        self.queue.clear()  # the parent spools these
        self._transport.forget()
        self._start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Spool what is queued, then try to send until ``timeout`` (seconds; default shutdown_timeout);
        what is left stays in the spool for the next process (``spool_depth()`` tells how much)."""
        if self._shut_down:
            return
        self._shut_down = True
        deadline = time.monotonic() + (self.shutdown_timeout if timeout is None else timeout)
        self._stopping.set()
        self.spool_wake.set()
        self._send_wake.set()
        self._spooler.join(max(0.0, deadline - time.monotonic()))
        self._sender.join(max(0.0, deadline - time.monotonic()))
        if not self._flush(deadline):
            logger.info("llm-otel: cost API not reached before the shutdown deadline; records stay spooled")
        if not self._spooler.is_alive() and not self._sender.is_alive():
            self._transport.close()
            self._spooler_db.close()
            self._sender_db.close()
            with self._overflow_lock:
                if self._overflow_db is not None:
                    self._overflow_db.close()
                    self._overflow_db = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """SpanExporter API: queue llm-otel's spans (never blocks on the network)."""
        for span in spans:
            self.enqueue(span)
        return SpanExportResult.SUCCESS

    def enqueue(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != SCOPE_NAME or self._shut_down:
            return
        queue = self.queue
        depth = len(queue)
        if depth < self.max_queue:
            queue.append(span)
            if depth + 1 == self.max_batch:
                self.spool_wake.set()
        else:
            self.spool_overflow(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Spool the queue and send everything sendable within the timeout; True if nothing is left."""
        timeout = timeout_millis / 1000.0
        if self._shut_down:
            return True
        return self._flush(time.monotonic() + timeout)

    def _flush(self, deadline: float) -> bool:
        if not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            self._drain(self._sender_db)
            return self._send_all(deadline)
        except Exception as exc:
            report("cost_export.flush", exc)
            return False
        finally:
            self._send_lock.release()

    def spool_depth(self) -> int:
        """Records currently in the spool file (all processes sharing it)."""
        return count_records(self.spool_path)

    # -- spooler: memory -> disk

    def _spooler_loop(self) -> None:
        while True:
            self.spool_wake.wait(SPOOL_INTERVAL)
            self.spool_wake.clear()
            stopping = self._stopping.is_set()
            try:
                self._drain(self._spooler_db)
            except Exception as exc:
                report("cost_export.spooler", exc)
            if stopping:
                return

    def spool_overflow(self, span: ReadableSpan) -> None:
        """Application thread, queue full (the spooler cannot keep up with the call rate): write this one
        span to the spool right here. Slower for this call (~0.1 ms), but the record is kept; it is
        dropped (and counted) only if the spool itself refuses it."""
        self.spool_wake.set()
        self._log_once(
            "queue_full",
            "llm-otel: cost record queue full (%d); spooling on the caller thread",
            self.max_queue,
        )
        try:
            record = records.span_to_record(span, self.organization_id)
            if record is None:
                return
            with self._overflow_lock:
                if self._overflow_db is None:
                    self._overflow_db = Spool(self.spool_path, self.spool_max_records)
                inserted, dropped = self._overflow_db.add([(record[c.ID], records.encode(record))])
        except Exception as exc:
            RECORDS_DROPPED.labels("spool_error").inc()
            report("cost_export.overflow", exc)
            return
        RECORDS_SPOOLED.inc(inserted)
        if dropped:
            RECORDS_DROPPED.labels("spool_full").inc(dropped)

    def _drain(self, db: Spool) -> None:
        """Map every queued span to a record and commit them to the spool (1000 per transaction)."""
        queue = self.queue
        with self._drain_lock:
            while queue:
                spans: list[ReadableSpan] = []
                try:
                    while len(spans) < MAX_BATCH_LIMIT:
                        spans.append(queue.popleft())
                except IndexError:
                    pass
                rows: list[tuple[str, str]] = []
                for span in spans:
                    try:
                        record = records.span_to_record(span, self.organization_id)
                    except Exception as exc:
                        report("cost_export.map", exc)
                        RECORDS_DROPPED.labels("unmappable").inc()
                        continue
                    if record is not None:
                        rows.append((record[c.ID], records.encode(record)))
                try:
                    inserted, dropped = db.add(rows)
                except Exception as exc:
                    # Disk full, or the file locked for > 30 s: keep the spans and try again next tick. If
                    # this persists, the queue bound turns it into counted drops on the application thread.
                    queue.extendleft(reversed(spans))
                    report("cost_export.spool_write", exc)
                    return
                RECORDS_SPOOLED.inc(inserted)
                if dropped:
                    RECORDS_DROPPED.labels("spool_full").inc(dropped)
                    self._log_once(
                        "spool_full",
                        "llm-otel: cost spool full (%d records); new records are being dropped",
                        self.spool_max_records,
                    )
                if inserted:
                    SPOOL_DEPTH.inc(inserted)
                    if inserted >= self.max_batch or len(rows) >= self.max_batch:
                        self._send_wake.set()

    # -- sender: disk -> HTTP

    def _sender_loop(self) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            wait = self._not_before - now if self._not_before > now else self.flush_interval
            self._send_wake.wait(wait)
            self._send_wake.clear()
            if self._stopping.is_set():
                return
            if time.monotonic() < self._not_before:
                continue
            with self._send_lock:
                try:
                    self._send_all(None)
                    SPOOL_DEPTH.set(self._sender_db.count())
                except Exception as exc:
                    report("cost_export.sender", exc)
                    self._not_before = time.monotonic() + self._backoff.next_delay()

    def _send_all(self, deadline: float | None) -> bool:
        """Send batches until the spool has nothing claimable (True) or a send fails / time is up (False)."""
        while True:
            if deadline is None and self._stopping.is_set():
                return False
            now = time.monotonic()
            if now < self._not_before:
                if deadline is None or self._not_before >= deadline:
                    return False
                time.sleep(self._not_before - now)
            timeout = self.timeout
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                timeout = min(timeout, remaining)
            batch = self._sender_db.claim(self._batch_limit, lease_seconds=timeout + 2.0)
            if not batch:
                return True
            if not self._send_batch(batch, timeout):
                return False

    def _send_batch(self, batch: list[tuple[str, str]], timeout: float) -> bool:
        """POST one batch and settle it. True when the batch left the spool (or should be re-sent at once)."""
        ids = [rid for rid, _ in batch]
        payload = ('{"' + c.RECORDS + '":[' + ",".join(body for _, body in batch) + "]}").encode("utf-8")
        try:
            resp = self._transport.post(gzip.compress(payload, compresslevel=1), timeout)
        except (OSError, http.client.HTTPException) as exc:
            return self._retry_later(ids, None, f"{type(exc).__name__}: {exc}")
        status = resp.status
        if 200 <= status < 300:
            answer = parse_json(resp.body)
            if not isinstance(answer, dict) or not isinstance(answer.get(c.ACCEPTED), int):
                return self._retry_later(ids, None, f"HTTP {status} with a body that is not a usage answer")
            self._settle(batch, {}, status)
            return True
        if status == 400:
            answer = parse_json(resp.body)
            if isinstance(answer, dict) and isinstance(answer.get(c.ERRORS), list):
                self._settle(batch, _match_errors(batch, answer[c.ERRORS]), status)
                return True
            if isinstance(answer, dict):  # the API rejected the whole request: keep it, never retry it
                reason = str(answer.get(c.ERROR_MESSAGE) or answer)[:500]
                self._settle(batch, {rid: reason for rid in ids}, status)
                return True
            return self._retry_later(ids, None, "HTTP 400 with a body that is not JSON")
        if status == 413:
            if len(batch) > 1:
                self._batch_limit = max(1, len(batch) // 2)
                self._sender_db.release(ids)
                self._log_once("413", "llm-otel: cost API said 413; batch size now %d", self._batch_limit)
                return True
            self._settle(batch, {ids[0]: "413 Payload Too Large for a single record"}, status)
            return True
        if status in (408, 429) or status >= 500:
            return self._retry_later(ids, parse_retry_after(resp.retry_after), f"HTTP {status}")
        # 401/403 (bad key), 3xx (we never follow: the key would leak), other 4xx (wrong URL): a setting is
        # wrong. Keep everything spooled and retry slowly, in case someone fixes the server side.
        self._sender_db.release(ids)
        RECORDS_RETRIED.inc(len(ids))
        self._not_before = time.monotonic() + self._slow_retry_interval
        self._log_once(
            f"http{status}",
            "llm-otel: cost API %s answered HTTP %d; records stay in the spool %s, retrying every %.0f s",
            self.url,
            status,
            self.spool_path,
            self._slow_retry_interval,
        )
        return False

    def _settle(self, batch: list[tuple[str, str]], errors: dict[str, str], status: int) -> None:
        """The server answered for this batch: dead-letter the rejected records, then forget all of them."""
        if errors:
            self.dead_letter.write([(body, errors[rid]) for rid, body in batch if rid in errors], status)
            RECORDS_DEAD_LETTERED.inc(len(errors))
            self._log_once(
                "dead_letter",
                "llm-otel: cost API rejected %d record(s) as invalid; see %s",
                len(errors),
                self.dead_letter.path,
            )
        self._sender_db.delete([rid for rid, _ in batch])
        RECORDS_SENT.inc(len(batch) - len(errors))
        LAST_SUCCESS.set(time.time())
        self._backoff.reset()
        if self._logged & {"unreachable", "http401", "http403"}:
            logger.info("llm-otel: cost API %s reachable again", self.url)
            self._logged -= {"unreachable", "http401", "http403"}

    def _retry_later(self, ids: list[str], retry_after: float | None, why: str) -> bool:
        self._sender_db.release(ids)
        RECORDS_RETRIED.inc(len(ids))
        delay = self._backoff.next_delay(retry_after)
        self._not_before = time.monotonic() + delay
        self._log_once(
            "unreachable",
            "llm-otel: cost API %s failed (%s); records stay in the spool %s and are retried with backoff",
            self.url,
            why,
            self.spool_path,
        )
        return False

    def _log_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(msg, *args)


def _match_errors(batch: Sequence[tuple[str, str]], errors: list[Any]) -> dict[str, str]:
    """Per-record errors from a 400 answer -> ``{record id: message}``; by id, else by index."""
    ids = {rid for rid, _ in batch}
    matched: dict[str, str] = {}
    for err in errors:
        if not isinstance(err, dict):
            continue
        rid = err.get(c.ERROR_ID)
        index = err.get(c.ERROR_INDEX)
        if not (isinstance(rid, str) and rid in ids):
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(batch):
                rid = batch[index][0]
            else:
                continue
        matched[rid] = str(err.get(c.ERROR_MESSAGE, "invalid record"))[:500]
    return matched


def _call_weak(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()
