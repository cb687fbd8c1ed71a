"""Durable delivery log for cost records: a SQLite spool plus a dead-letter JSONL file.

Every record passes through the spool: it is written here (one transaction per drain, background thread)
before it is ever sent, and deleted only after the cost API acknowledged it. A crash at any point after
the insert committed therefore loses nothing; a crash between the server's 2xx and our delete causes a
re-send that the server recognises by id (effectively once).

WAL with ``synchronous=NORMAL``: a committed transaction survives the process being killed (SIGKILL); only
an OS crash or power loss can roll back the last few commits. That is the right trade for telemetry that
is written many times a second: ``FULL`` would add an fsync per drain for a failure mode the process
cannot cause.

Each row carries its *destination* (cost API URL + organization, :func:`destination_key`) and is only
ever claimed by an exporter for that destination, so a spool file shared by two applications never sends
one's records to the other's API. Several processes may share one spool file: rows are *leased* for the
duration of one request, so two processes never send the same row at the same time; a lease held by a
killed process simply expires.

Nothing here waits long on a lock. SQLite's own busy wait is short (:data:`BACKGROUND_BUSY_TIMEOUT`, or
:data:`CALLER_BUSY_TIMEOUT` on the application thread) and a busy spool raises :class:`SpoolBusy`; the
background threads retry later, the application thread drops and counts. Every SQLite call of this
process runs under one process-wide lock, which ``os.fork()`` takes first (``os.register_at_fork``): no
transaction is ever open across a fork, and every connection is closed before it and reopened lazily
after it, so a child never inherits SQLite's lock bookkeeping and opens its own connections.

Start-up (:func:`prepare`) creates the directory and schema, runs ``PRAGMA quick_check`` and probes that
a write is possible: a damaged file raises :class:`SpoolDamaged` (the exporter moves it aside with
:func:`quarantine` and :func:`salvage`\\ s what is readable), an unusable location :class:`SpoolUnusable`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

#: SQLite's busy wait on the background threads' connections (each retries later on :class:`SpoolBusy`).
BACKGROUND_BUSY_TIMEOUT = 0.05
#: SQLite's busy wait, and the wait for this process's spool lock, on the application thread.
CALLER_BUSY_TIMEOUT = 0.003
#: Busy wait when opening the spool at start-up (another process may be creating it at the same moment).
STARTUP_BUSY_TIMEOUT = 2.0

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        destination TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0,
        UNIQUE (destination, id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS records_by_destination ON records (destination, seq)",
)
#: The table of earlier llm-otel versions (no destination column): its rows are counted, never sent.
LEGACY_TABLE = "spool"

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


class SpoolBusy(Exception):
    """Another connection holds the spool's write lock; ``in_process`` when it was this process's spool
    lock that was not free in time (another thread of ours is in a transaction)."""

    def __init__(self, message: str, in_process: bool = False) -> None:
        super().__init__(message)
        self.in_process = in_process


class SpoolDamaged(Exception):
    """The spool file is corrupt or not a SQLite database."""


class SpoolUnusable(Exception):
    """The spool cannot be created or written at this location (directory, permissions, read-only file)."""


def destination_key(url: str, organization_id: str | None) -> str:
    """What a row is recorded for: the cost API base URL and the organization (empty when none)."""
    return f"{url} {organization_id or ''}"


def dead_letter_path(spool_path: Path) -> Path:
    """The dead-letter file lives next to the spool: ``spool-x.sqlite`` -> ``spool-x.deadletter.jsonl``."""
    return spool_path.with_name(spool_path.stem + ".deadletter.jsonl")


# --- one lock per process, taken by fork() ---------------------------------------------------------------

_lock = threading.RLock()
_open: weakref.WeakSet[Spool] = weakref.WeakSet()


@contextlib.contextmanager
def _exclusive(timeout: float | None) -> Iterator[None]:
    """This process's spool lock (every SQLite call on a spool runs under it). SpoolBusy when ``timeout``
    (seconds) passes first."""
    lock = _lock
    if timeout is None:
        acquired = lock.acquire()
    elif timeout > 0:
        acquired = lock.acquire(timeout=timeout)
    else:
        acquired = lock.acquire(blocking=False)
    if not acquired:
        raise SpoolBusy("the spool is in use by another thread of this process", in_process=True)
    try:
        yield
    finally:
        lock.release()


def _before_fork() -> None:
    _lock.acquire()  # waits for a transaction in progress on any thread to end
    for spool in list(_open):
        spool._disconnect()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: BaseException) -> bool:
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def is_damage(exc: BaseException) -> bool:
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text)


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            db.execute(statement)
    except BaseException:
        db.close()
        raise
    return db


# --- start-up ------------------------------------------------------------------------------------------


def prepare(path: Path) -> int:
    """Make ``path`` a usable spool: directory, WAL, schema, ``quick_check``, a write probe.

    Returns the number of legacy rows (no destination) found. Raises :class:`SpoolDamaged` or
    :class:`SpoolUnusable`. A spool another process is writing to at this moment is usable (busy is not
    an error here).
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SpoolUnusable(f"cannot create the directory {path.parent}: {exc}") from exc
    with _exclusive(None):
        try:
            db = sqlite3.connect(str(path), timeout=STARTUP_BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise SpoolUnusable(str(exc)) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                db.execute(statement)
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise SpoolDamaged("; ".join(str(p) for p in problems[:3]))
            db.execute("BEGIN IMMEDIATE")
            try:  # a read-only file opens and reads fine; only a write tells
                db.execute("INSERT INTO records (destination, id, body) VALUES ('', '', '')")
            finally:
                db.execute("ROLLBACK")
            return _legacy_rows(db)
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise SpoolDamaged(str(exc)) from exc
            if is_busy(exc):
                return 0
            raise SpoolUnusable(str(exc)) from exc
        finally:
            db.close()


def _legacy_rows(db: sqlite3.Connection) -> int:
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,))
    if exists.fetchone() is None:
        return 0
    return int(db.execute(f"SELECT COUNT(*) FROM {LEGACY_TABLE}").fetchone()[0])


def legacy_rows(path: Path) -> int:
    """Rows in the table of an older llm-otel's spool file at ``path`` (0 when none or unreadable)."""
    if not path.exists():
        return 0
    with _exclusive(None):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BACKGROUND_BUSY_TIMEOUT)
        except sqlite3.Error:
            return 0
        try:
            return _legacy_rows(db)
        except sqlite3.Error:
            return 0
        finally:
            db.close()


def quarantine(path: Path) -> Path:
    """Move a damaged spool (and its -wal/-shm) aside, keeping it; returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    kept = path.with_name(f"{path.name}.damaged-{stamp}-{os.getpid()}")
    with _exclusive(None):
        os.replace(path, kept)
        for suffix in ("-wal", "-shm"):
            companion = Path(str(path) + suffix)
            if companion.exists():
                with contextlib.suppress(OSError):
                    os.replace(companion, Path(str(kept) + suffix))
    return kept


def salvage(damaged: Path, into: Spool) -> tuple[int, int | None]:
    """Copy the rows still readable from ``damaged`` into ``into`` (skipping unreadable pages), in order.
    Returns ``(copied, rows the damaged file held, or None when it cannot say)``."""
    rows: list[tuple[str, str, str]] = []
    total: int | None = None
    with _exclusive(None):
        try:
            db = sqlite3.connect(str(damaged), timeout=BACKGROUND_BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error:
            return 0, None
        try:
            with contextlib.suppress(sqlite3.Error):
                total = int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            last_seq = 0
            with contextlib.suppress(sqlite3.Error):
                row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
                last_seq = int(row[0]) if row else 0
            rows = _readable_rows(db, last_seq)
        finally:
            db.close()
    copied = 0
    for start in range(0, len(rows), 1000):
        copied += into.insert(rows[start : start + 1000])
    return copied, total


def _readable_rows(db: sqlite3.Connection, last_seq: int) -> list[tuple[str, str, str]]:
    """Walk the rows by ``seq``; past an unreadable page, seek further and further ahead until rows read
    again (up to ``last_seq``, the highest ever allocated)."""
    rows: list[tuple[str, str, str]] = []
    after, skip = 0, 1
    sql = "SELECT seq, destination, id, body FROM records WHERE seq > ? ORDER BY seq"
    while True:
        try:
            for seq, destination, rid, body in db.execute(sql, (after,)):
                rows.append((str(destination), str(rid), str(body)))
                after, skip = int(seq), 1
            return rows
        except sqlite3.Error:
            if after + skip > last_seq:
                return rows
            after += skip
            skip *= 2


# --- a connection --------------------------------------------------------------------------------------


class Spool:
    """One connection to the spool database, for one destination. Connects on first use (and again after
    a fork); every call runs under this process's spool lock, so threads may share it. Raises
    :class:`SpoolBusy` when the file is locked for longer than ``busy_timeout``."""

    def __init__(
        self,
        path: Path,
        max_records: int,
        destination: str,
        *,
        busy_timeout: float = BACKGROUND_BUSY_TIMEOUT,
        lock_timeout: float | None = None,
    ) -> None:
        self.path = path
        self.max_records = max_records
        self.destination = destination
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        self._db: sqlite3.Connection | None = None
        self._depth: int | None = None
        self._depth_checked = 0.0
        with _exclusive(None):  # fork() walks this set under the same lock
            _open.add(self)

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def close(self) -> None:
        with _exclusive(None):
            self._disconnect()

    def _run(self, work: Callable[[sqlite3.Connection], _T], write: bool) -> _T:
        with _exclusive(self.lock_timeout):
            try:
                if self._db is None:
                    self._db = _connect(self.path, self.busy_timeout)
                db = self._db
                if not write:
                    return work(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise SpoolBusy(str(exc)) from exc
                raise

    def connect(self) -> None:
        """Connect now rather than on first use (errors are left for that use to report)."""
        with contextlib.suppress(Exception):
            self._run(lambda db: None, write=False)

    def count(self, everything: bool = False) -> int:
        """Rows for this destination (all processes sharing the file); every row with ``everything``."""
        sql = "SELECT COUNT(*) FROM records"
        args: tuple[str, ...] = ()
        if not everything:
            sql, args = sql + " WHERE destination = ?", (self.destination,)
        return self._run(lambda db: int(db.execute(sql, args).fetchone()[0]), write=False)

    def add(self, rows: Sequence[tuple[str, str]]) -> tuple[int, int]:
        """Insert ``(id, json)`` rows for this destination in one transaction; ids already present are
        ignored.

        Returns ``(inserted, dropped)``; rows are dropped (not inserted) only when the file holds
        ``max_records`` already -- the newest are the ones refused, so replay order stays FIFO.
        """
        if not rows:
            return 0, 0
        now = time.monotonic()
        if self._depth is None or self._depth + len(rows) > self.max_records or now - self._depth_checked > 5:
            self._depth = self.count(everything=True)  # other processes and the sender change it
            self._depth_checked = now
        room = max(0, self.max_records - self._depth)
        keep = [(self.destination, rid, body) for rid, body in rows[:room]]
        inserted = self.insert(keep)
        self._depth += inserted
        return inserted, len(rows) - len(keep)

    def insert(self, rows: Sequence[tuple[str, str, str]]) -> int:
        """Insert ``(destination, id, json)`` rows in one transaction; returns how many were new."""
        if not rows:
            return 0

        def work(db: sqlite3.Connection) -> int:
            sql = "INSERT OR IGNORE INTO records (destination, id, body) VALUES (?, ?, ?)"
            cur = db.executemany(sql, rows)
            return max(0, cur.rowcount)

        return self._run(work, write=True)

    def claim(self, limit: int, lease_seconds: float) -> list[tuple[str, str]]:
        """Lease up to ``limit`` of this destination's oldest unleased rows for one send; ``[(id, json)]``
        in FIFO order."""
        now = time.time()

        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = db.execute(
                "SELECT seq, id, body FROM records WHERE destination = ? AND lease_until < ? "
                "ORDER BY seq LIMIT ?",
                (self.destination, now, limit),
            ).fetchall()
            if rows:
                # In this transaction the rows just selected are exactly this destination's unleased rows
                # from the first seq to the last one selected: one range update, no list of seqs.
                db.execute(
                    "UPDATE records SET lease_until = ? WHERE destination = ? AND seq BETWEEN ? AND ? "
                    "AND lease_until < ?",
                    (now + lease_seconds, self.destination, rows[0][0], rows[-1][0], now),
                )
            return [(r[1], r[2]) for r in rows]

        return self._run(work, write=True)

    def delete(self, ids: Iterable[str]) -> None:
        """Forget acknowledged (or dead-lettered) rows."""
        self._by_ids("DELETE FROM records", ids)

    def release(self, ids: Iterable[str]) -> None:
        """Give leased rows back after a failed send, so the next attempt (of any process) can take them."""
        self._by_ids("UPDATE records SET lease_until = 0", ids)

    def _by_ids(self, statement: str, ids: Iterable[str]) -> None:
        """``statement`` on this destination's rows with these ids, in one transaction: a few statements
        of up to :data:`_CHUNK` ids each rather than one per row."""
        chunks = _chunks(list(ids))

        def work(db: sqlite3.Connection) -> None:
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                db.execute(
                    f"{statement} WHERE destination = ? AND id IN ({marks})", (self.destination, *chunk)
                )

        self._run(work, write=True)


#: Values bound in one ``IN (...)`` list (SQLite before 3.32 allows 999 parameters per statement).
_CHUNK = 500


def _chunks(values: list[_T]) -> list[list[_T]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


class DeadLetterFile:
    """Append-only JSONL of records the cost API rejected as invalid (they are never retried).

    Each line is fsynced before the records leave the spool, so a rejected record is always in exactly
    one of the two places.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, entries: Sequence[tuple[str, str]], status: int) -> None:
        """``entries``: ``(record_json, error)`` pairs."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = []
        for body, error in entries:
            record: Any
            try:
                record = json.loads(body)
            except ValueError:
                record = body
            lines.append(
                json.dumps({"time": stamp, "status": status, "error": error, "record": record}) + "\n"
            )
        with self._lock, open(self.path, "a", encoding="utf-8", opener=_private) as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def count_records(path: Path, destination: str | None = None) -> int:
    """Rows in the spool at ``path`` (0 when the file does not exist), for one destination or all; for
    metrics, tests and the CLI."""
    if not Path(path).exists():
        return 0
    with _exclusive(None):
        db = sqlite3.connect(str(path), timeout=5.0)
        try:
            if destination is None:
                return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            sql = "SELECT COUNT(*) FROM records WHERE destination = ?"
            return int(db.execute(sql, (destination,)).fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()
