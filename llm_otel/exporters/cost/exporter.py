"""The cost API exporter: queue (memory) -> spool (disk) -> cost API (HTTP), exactly once.

Three stages, three threads, so that no stage can slow the one before it:

1. ``CostRecordProcessor.on_end`` (application thread, ``processor.py``) only checks the instrumentation
   scope and appends the finished span to this exporter's in-memory deque. It sees recorded-but-unsampled
   spans too (the SDK calls ``on_end`` for every recording span; only ``BatchSpanProcessor`` looks at the
   sampled flag).
2. The *spooler* thread maps spans to records and commits them to the SQLite spool in one transaction. It
   runs when :data:`SPOOL_WAKE_AT` spans are queued, and at the latest every :data:`SPOOL_INTERVAL`
   seconds. Spans still in the deque and the batch being committed are the only loss window on SIGKILL,
   bounded by count as well as by time: about ``SPOOL_WAKE_AT`` (64) queued records plus the batch in
   its commit (itself at most about 64 plus the calls made while it commits), or ``SPOOL_INTERVAL``
   seconds of calls when fewer than 64 arrive in that time. Measured at a steady 1,000 calls/s
   (``tests/test_cost_sigkill.py``): queue high-water 64-68 (up to 95 with every core busy), 20-76
   records lost per SIGKILL with the cost API down, up to ~150 while a 20,000-record backlog is being
   delivered; with the interval alone the queue reached 200-230 at that rate.
3. The *sender* thread leases the oldest rows recorded for this exporter's destination (URL +
   organization), POSTs them (gzip JSON) and deletes them only after the server acknowledged them. The
   server ignores repeated ids, so a crash between its 2xx and our delete costs a duplicate *request*,
   never a duplicate *record*.

The application thread never waits on disk for more than a few milliseconds. When the queue holds
``max_queue`` spans (the spooler cannot keep up) the caller writes its own record to the spool if no
thread of ours is writing (else the span stays queued, up to ``max_queue`` + 1000), giving up after
:data:`~.spool.CALLER_BUSY_TIMEOUT` (3 ms) when another process holds the lock; when the spool is locked
by another process, failing, or was just found so, the record is dropped at once and counted
(``llm_otel_cost_export_records_dropped_total{reason}``): spool_busy, spool_error, spool_full, unmappable,
shutdown (still queued when the shutdown deadline passed), temporary_spool (left in a per-process
fallback spool at exit).

Start-up: a damaged spool file is moved aside (kept, logged, counted in
``llm_otel_cost_export_spool_damaged_total``; its readable rows are copied over) and a new one started; an
unusable location (directory not creatable, read-only file) is a :class:`~llm_otel.ConfigError` when the
user chose ``spool_path``, else a per-process temporary spool with a warning. After ``os.fork()`` the
child starts its own threads and SQLite connections and spools and sends its own records; the parent
keeps the spans queued before the fork.

HTTP details (keep-alive connection, Retry-After, backoff) live in ``transport.py``; the self-metrics in
``metrics.py``; the span -> record mapping in ``records.py``; the SQLite spool in ``spool.py``; the record
format and the limits the server enforces in :mod:`llm_otel.cost_contract`.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import logging
import math
import os
import shutil
import tempfile
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
    SPOOL_DAMAGED,
    SPOOL_DEPTH,
)
from .spool import (
    BACKGROUND_BUSY_TIMEOUT,
    CALLER_BUSY_TIMEOUT,
    DeadLetterFile,
    Spool,
    SpoolBusy,
    SpoolDamaged,
    SpoolUnusable,
    count_records,
    dead_letter_path,
    destination_key,
    legacy_rows,
    prepare,
    quarantine,
    salvage,
)
from .transport import Backoff, Transport, parse_json, parse_retry_after

logger = logging.getLogger("llm_otel")

#: Longest a finished span waits in memory before the spooler runs (when fewer than SPOOL_WAKE_AT queue).
SPOOL_INTERVAL = 0.2
#: Queued spans that wake the spooler at once: with SPOOL_INTERVAL, the bound of the SIGKILL loss window.
SPOOL_WAKE_AT = 64
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
    gets what that processor exports (a ``BatchSpanProcessor`` would drop unsampled calls' records).

    ``spool_path=None`` means the default, one file per destination
    (:func:`llm_otel.config.default_spool_path`), with a temporary fallback when that location is unusable.
    """

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
        self.organization_id = organization_id
        #: Rows are recorded for, and only ever sent to, this URL + organization.
        self.destination = destination_key(self.url, organization_id)
        self._spool_given = spool_path is not None
        chosen = spool_path if spool_path is not None else default_spool_path(self.url, organization_id)
        self.spool_path = Path(os.fspath(chosen)).expanduser()
        #: True when the chosen location was unusable and records go to a per-process temporary spool.
        self.temporary_spool = False
        self._temporary_owner = 0
        self.timeout = float(timeout)
        self.max_batch = max_batch
        self.flush_interval = float(flush_interval)
        self.max_queue = max_queue
        self.spool_max_records = spool_max_records
        self.shutdown_timeout = float(shutdown_timeout)
        self._slow_retry_interval = float(slow_retry_interval)
        self._backoff = Backoff(retry_initial, retry_max, max(300.0, retry_max))
        self._logged: set[str] = set()
        self._open_spool()  # ConfigError if unusable and chosen by the user
        self.dead_letter = DeadLetterFile(dead_letter_path(self.spool_path))
        #: Finished spans waiting for the spooler. Appended to by the application thread only.
        self.queue: deque[ReadableSpan] = deque()
        self._shut_down = False
        self._start()
        weak = weakref.WeakMethod(self._after_fork)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _call_weak(weak))

    # -- lifecycle

    def _open_spool(self) -> None:
        """Check the spool at start-up: move a damaged one aside, fall back from an unusable default."""
        path = self.spool_path
        try:
            legacy = prepare(path)
        except SpoolDamaged as exc:
            kept = quarantine(path)
            SPOOL_DAMAGED.inc()
            legacy = self._prepare_or_fallback(path)
            copied, total = salvage(kept, self._new_spool())
            lost = None if total is None else max(0, total - copied)
            if lost:
                RECORDS_DROPPED.labels("spool_damaged").inc(lost)
            logger.warning(
                "llm-otel: the cost spool %s is damaged (%s); moved it to %s and started a new one; "
                "%d record(s) recovered from it, %s unreadable",
                path,
                exc,
                kept,
                copied,
                "an unknown number" if lost is None else lost,
            )
        except SpoolUnusable as exc:
            legacy = self._fallback(path, exc)
        where = self.spool_path
        if not legacy and not self._spool_given:  # the former default file, shared by every app
            where = path.with_name("spool.sqlite")
            legacy = legacy_rows(where)
        if legacy:
            logger.warning(
                "llm-otel: %d cost record(s) written by an older llm-otel in %s do not say which cost API "
                "they are for; they are left there and not sent",
                legacy,
                where,
            )

    def _prepare_or_fallback(self, path: Path) -> int:
        try:
            return prepare(path)
        except (SpoolDamaged, SpoolUnusable) as exc:
            return self._fallback(path, exc)

    def _fallback(self, path: Path, exc: Exception) -> int:
        if self._spool_given:
            raise ConfigError("spool_path", str(path), f"cannot use the SQLite spool: {exc}") from exc
        directory = Path(tempfile.mkdtemp(prefix="llm-otel-spool-"))
        self.spool_path = directory / path.name
        self.temporary_spool = True
        self._temporary_owner = os.getpid()  # a forked child shares it, and leaves it to this process
        logger.warning(
            "llm-otel: cannot use the default cost spool %s (%s); using %s for this process only: records "
            "not delivered before it exits are not replayed by the next one. Set spool_path "
            "(LLM_OTEL_SPOOL_PATH) to a writable location.",
            path,
            exc,
            self.spool_path,
        )
        try:
            return prepare(self.spool_path)
        except (SpoolDamaged, SpoolUnusable) as again:
            raise ConfigError("spool_path", str(path), f"no usable spool location: {again}") from again

    def _new_spool(self, **kwargs: Any) -> Spool:
        return Spool(self.spool_path, self.spool_max_records, self.destination, **kwargs)

    def _start(self) -> None:
        self._spooler_db = self._new_spool()
        self._sender_db = self._new_spool()
        #: The application thread's own connection, used only when the queue is full: it never waits for
        #: our other threads (their spans stay queued instead) and waits CALLER_BUSY_TIMEOUT for others.
        self._caller_db = self._new_spool(busy_timeout=CALLER_BUSY_TIMEOUT, lock_timeout=0.0)
        self._caller_db.connect()
        self._transport = Transport(self.url, self._api_key)
        self._batch_limit = self.max_batch
        self._not_before = 0.0
        #: Until then the application thread does not try the spool (it was found busy or failing).
        self._spool_blocked_until = 0.0
        self._spool_blocked_reason = "spool_busy"
        self._drain_lock = threading.Lock()
        #: Mapped records the spool refused (busy, failing), written before any newer span.
        self._pending: list[tuple[str, str]] = []
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self.spool_wake = threading.Event()
        self._send_wake = threading.Event()
        with contextlib.suppress(Exception):  # busy: the sender sets it after its first round
            SPOOL_DEPTH.set(self._sender_db.count())
        self._send_wake.set()  # replay what a previous process left behind, right away
        self._spooler = threading.Thread(target=self._spooler_loop, name="llm-otel-cost-spooler", daemon=True)
        self._sender = threading.Thread(target=self._sender_loop, name="llm-otel-cost-sender", daemon=True)
        self._spooler.start()
        self._sender.start()

    def _after_fork(self) -> None:
        """In the child: no threads, and the parent's locks, connections and socket are not ours (the spool
        module closed every connection before the fork). Start afresh; the parent spools what was queued."""
        if self._shut_down:
            return
        self.queue.clear()
        self._transport.forget()
        self._start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Spool what is queued, then try to send until ``timeout`` (seconds; default shutdown_timeout);
        what is left stays in the spool for the next process (``spool_depth()`` tells how much)."""
        if self._shut_down:
            return
        deadline = time.monotonic() + (self.shutdown_timeout if timeout is None else timeout)
        self.spool_queued(deadline)
        self._shut_down = True
        self._stopping.set()
        self.spool_wake.set()
        self._send_wake.set()
        self._spooler.join(max(0.0, deadline - time.monotonic()))
        self._sender.join(max(0.0, deadline - time.monotonic()))
        if not self._flush(deadline):
            logger.info("llm-otel: cost API not reached before the shutdown deadline; records stay spooled")
        if (self.queue or self._pending) and not self._spooler.is_alive():
            lost = len(self.queue) + len(self._pending)
            self.queue.clear()
            self._pending = []
            RECORDS_DROPPED.labels("shutdown").inc(lost)
            logger.warning("llm-otel: %d cost record(s) could not be spooled before exit (spool busy)", lost)
        if not self._spooler.is_alive() and not self._sender.is_alive():
            self._transport.close()
            for db in (self._spooler_db, self._sender_db, self._caller_db):
                db.close()
            if self.temporary_spool and os.getpid() == self._temporary_owner:
                self._leave_temporary_spool()

    def _leave_temporary_spool(self) -> None:
        left = count_records(self.spool_path)
        if left:
            RECORDS_DROPPED.labels("temporary_spool").inc(left)
            logger.warning(
                "llm-otel: %d cost record(s) left undelivered in the temporary spool %s (not replayed)",
                left,
                self.spool_path,
            )
        elif not dead_letter_path(self.spool_path).exists():
            shutil.rmtree(self.spool_path.parent, ignore_errors=True)

    def spool_queued(self, deadline: float) -> bool:
        """Commit every queued span to the spool now, on this thread, retrying a busy spool until
        ``deadline`` (``time.monotonic()``); True when the queue is empty."""
        while True:
            remaining = deadline - time.monotonic()
            if self._drain_lock.acquire(timeout=max(0.0, remaining)):
                try:
                    if self._drain(self._spooler_db):
                        return True
                finally:
                    self._drain_lock.release()
            if time.monotonic() >= deadline:
                return not self.queue and not self._pending
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

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
            if depth + 1 == SPOOL_WAKE_AT:
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
        if not self.spool_queued(deadline):
            return False
        if not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            return self._send_all(deadline)
        except SpoolBusy:
            return False
        except Exception as exc:
            report("cost_export.flush", exc)
            return False
        finally:
            self._send_lock.release()

    def spool_depth(self) -> int:
        """Records for this exporter's destination currently in the spool file (all processes)."""
        return count_records(self.spool_path, self.destination)

    # -- spooler: memory -> disk

    def _spooler_loop(self) -> None:
        while True:
            self.spool_wake.wait(SPOOL_INTERVAL)
            self.spool_wake.clear()
            stopping = self._stopping.is_set()
            with self._drain_lock:
                done = self._drain(self._spooler_db)
            if stopping:
                return
            if not done:  # the spool is busy or failing: try again in an interval, not at every wake-up
                self._stopping.wait(SPOOL_INTERVAL)

    def spool_overflow(self, span: ReadableSpan) -> None:
        """Application thread, queue full (the spooler cannot keep up, or the spool is busy): write this one
        span to the spool right here, waiting at most a few ms; drop it (counted) when the spool is busy,
        failing or full."""
        self.spool_wake.set()
        if time.monotonic() < self._spool_blocked_until:
            RECORDS_DROPPED.labels(self._spool_blocked_reason).inc()
            return
        self._log_once(
            "queue_full",
            "llm-otel: cost record queue full (%d); spooling on the caller thread",
            self.max_queue,
        )
        try:
            row = records.span_to_row(span, self.organization_id)
        except Exception as exc:
            RECORDS_DROPPED.labels("unmappable").inc()
            report("cost_export.map", exc)
            return
        if row is None:
            return
        try:
            inserted, dropped = self._caller_db.add([row])
        except SpoolBusy as exc:
            if exc.in_process and len(self.queue) < self.max_queue + MAX_BATCH_LIMIT:
                self.queue.append(span)  # our spooler is committing right now and takes it next
                return
            self._spool_failed("spool_busy", exc)
            RECORDS_DROPPED.labels("spool_busy").inc()
            return
        except Exception as exc:
            self._spool_failed("spool_error", exc)
            RECORDS_DROPPED.labels("spool_error").inc()
            report("cost_export.overflow", exc)
            return
        RECORDS_SPOOLED.inc(inserted)
        if dropped:
            RECORDS_DROPPED.labels("spool_full").inc(dropped)

    def _spool_failed(self, reason: str, exc: BaseException) -> None:
        """The spool refused a write: the application thread stops trying it for an interval."""
        if isinstance(exc, SpoolBusy) and exc.in_process:
            return  # our own spooler is writing: not a reason to stop trying
        self._spool_blocked_reason = reason
        # Longer than the spooler's retry cadence: while it keeps failing, callers do not try at all.
        self._spool_blocked_until = time.monotonic() + 2 * SPOOL_INTERVAL + BACKGROUND_BUSY_TIMEOUT
        if reason == "spool_busy":
            self._log_once(
                "spool_busy",
                "llm-otel: the cost spool %s is locked by another process; records queue in memory up to "
                "%d, then are dropped and counted",
                self.spool_path,
                self.max_queue,
            )

    def _drain(self, db: Spool) -> bool:
        """Map every queued span to a record and commit them to the spool (1000 per transaction). Caller
        holds ``_drain_lock``. False when the spool refused a write: the records of that transaction are
        kept, already mapped, and written first next time (a busy spool costs no CPU while it waits)."""
        queue = self.queue
        while self._pending or queue:
            rows = self._pending
            if not rows:
                spans: list[ReadableSpan] = []
                try:
                    while len(spans) < MAX_BATCH_LIMIT:
                        spans.append(queue.popleft())
                except IndexError:
                    pass
                rows = self._map(spans)
            try:
                try:
                    inserted, dropped = db.add(rows)
                except SpoolBusy:
                    raise
                except Exception:
                    if len(rows) < 2:
                        raise
                    inserted, dropped = self._add_one_by_one(db, rows)
            except Exception as exc:
                # Locked by another process, disk full: keep the records and try again later. If this
                # persists, the queue bound turns it into counted drops on the application thread.
                self._pending = rows
                if isinstance(exc, SpoolBusy):
                    self._spool_failed("spool_busy", exc)
                else:
                    self._spool_failed("spool_error", exc)
                    report("cost_export.spool_write", exc)
                return False
            self._pending = []
            self._spool_blocked_until = 0.0
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
        return True

    def _add_one_by_one(self, db: Spool, rows: list[tuple[str, str]]) -> tuple[int, int]:
        """The batch insert failed (not busy): find the rows the spool refuses, so that one bad row never
        holds back the batch it came in. Rows that fail alone while others go in are dropped and counted
        (``spool_error``); when none goes in, the fault is the spool's (disk full, I/O error), so the
        first error is raised and the whole batch stays pending. A busy spool midway is raised too: the
        batch stays pending, and the rows already in are ignored when it is written again (same ids)."""
        inserted = dropped = 0
        refused: list[Exception] = []
        for row in rows:
            try:
                added, full = db.add([row])
            except SpoolBusy:
                if inserted:
                    RECORDS_SPOOLED.inc(inserted)
                    SPOOL_DEPTH.inc(inserted)
                raise
            except Exception as exc:
                refused.append(exc)
                continue
            inserted += added
            dropped += full
        if refused and len(refused) == len(rows):
            raise refused[0]
        if refused:
            RECORDS_DROPPED.labels("spool_error").inc(len(refused))
            report("cost_export.spool_row", refused[0])
        return inserted, dropped

    def _map(self, spans: list[ReadableSpan]) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        to_row, organization_id = records.span_to_row, self.organization_id
        for span in spans:
            try:
                row = to_row(span, organization_id)
            except Exception as exc:
                report("cost_export.map", exc)
                RECORDS_DROPPED.labels("unmappable").inc()
                continue
            if row is not None:
                rows.append(row)
        return rows

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
                except SpoolBusy:
                    pass  # another process is writing; next round
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
                self._release(ids)
                self._log_once("413", "llm-otel: cost API said 413; batch size now %d", self._batch_limit)
                return True
            self._settle(batch, {ids[0]: "413 Payload Too Large for a single record"}, status)
            return True
        if status in (408, 429) or status >= 500:
            return self._retry_later(ids, parse_retry_after(resp.retry_after), f"HTTP {status}")
        # 401/403 (bad key), 3xx (we never follow: the key would leak), other 4xx (wrong URL): a setting is
        # wrong. Keep everything spooled and retry slowly, in case someone fixes the server side.
        self._release(ids)
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
        self._delete([rid for rid, _ in batch])
        RECORDS_SENT.inc(len(batch) - len(errors))
        LAST_SUCCESS.set(time.time())
        self._backoff.reset()
        if self._logged & {"unreachable", "http401", "http403"}:
            logger.info("llm-otel: cost API %s reachable again", self.url)
            self._logged -= {"unreachable", "http401", "http403"}

    def _delete(self, ids: list[str]) -> None:
        """Forget acknowledged rows; a busy spool is retried for a while (a row left behind would only be
        re-sent after its lease, and the server would count it once)."""
        for attempt in range(40):
            try:
                self._sender_db.delete(ids)
                return
            except SpoolBusy:
                if attempt == 39 or self._stopping.wait(0.05):
                    break
        self._log_once("delete_busy", "llm-otel: cost spool busy; acknowledged records will be re-sent")

    def _release(self, ids: list[str]) -> None:
        """Give the lease back; when the spool is busy the lease simply expires."""
        with contextlib.suppress(SpoolBusy):
            self._sender_db.release(ids)

    def _retry_later(self, ids: list[str], retry_after: float | None, why: str) -> bool:
        self._release(ids)
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
