"""Durable delivery log for cost records: a SQLite spool plus a dead-letter JSONL file.

Every record passes through the spool: it is written here (one transaction per drain, background thread)
before it is ever sent, and deleted only after the cost API acknowledged it. A crash at any point after
the insert committed therefore loses nothing; a crash between the server's 2xx and our delete causes a
re-send that the server recognises by id (effectively once).

WAL with ``synchronous=NORMAL``: a committed transaction survives the process being killed (SIGKILL); only
an OS crash or power loss can roll back the last few commits. That is the right trade for telemetry that
is written every ~200 ms: ``FULL`` would add an fsync per drain for a failure mode the process cannot
cause.

Several processes may share one spool file (the default path is per user): rows are *leased* for the
duration of one request, so two processes never send the same row at the same time; a lease held by a
killed process simply expires.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0
)
"""


def dead_letter_path(spool_path: Path) -> Path:
    """The dead-letter file lives next to the spool: ``spool.sqlite`` -> ``spool.deadletter.jsonl``."""
    return spool_path.with_name(spool_path.stem + ".deadletter.jsonl")


class Spool:
    """One connection to the spool database. Not thread-safe: each thread opens its own."""

    def __init__(self, path: Path, max_records: int) -> None:
        self.path = path
        self.max_records = max_records
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError("spool_path", str(path), f"cannot open the SQLite spool: {exc}") from exc
        self._depth = self.count()
        self._depth_checked = time.monotonic()

    def close(self) -> None:
        self._db.close()

    def count(self) -> int:
        """Rows in the spool (all processes sharing the file)."""
        row = self._db.execute("SELECT COUNT(*) FROM spool").fetchone()
        return int(row[0])

    def add(self, rows: Sequence[tuple[str, str]]) -> tuple[int, int]:
        """Insert ``(id, json)`` rows in one transaction; ids already present are ignored.

        Returns ``(inserted, dropped)``; rows are dropped (not inserted) only when the spool holds
        ``max_records`` already -- the newest are the ones refused, so replay order stays FIFO.
        """
        if not rows:
            return 0, 0
        now = time.monotonic()
        if self._depth + len(rows) > self.max_records or now - self._depth_checked > 5.0:
            self._depth = self.count()  # other processes and the sender change it
            self._depth_checked = now
        room = max(0, self.max_records - self._depth)
        keep = rows[:room]
        with self._tx():
            cur = self._db.executemany("INSERT OR IGNORE INTO spool (id, body) VALUES (?, ?)", keep)
            inserted = max(0, cur.rowcount)
        self._depth += inserted
        return inserted, len(rows) - len(keep)

    def claim(self, limit: int, lease_seconds: float) -> list[tuple[str, str]]:
        """Lease up to ``limit`` of the oldest unleased rows for one send; ``[(id, json)]`` in FIFO order."""
        now = time.time()
        with self._tx():
            rows = self._db.execute(
                "SELECT seq, id, body FROM spool WHERE lease_until < ? ORDER BY seq LIMIT ?", (now, limit)
            ).fetchall()
            if rows:
                until = now + lease_seconds
                leases = [(until, r[0]) for r in rows]
                self._db.executemany("UPDATE spool SET lease_until = ? WHERE seq = ?", leases)
        return [(r[1], r[2]) for r in rows]

    def delete(self, ids: Iterable[str]) -> None:
        """Forget acknowledged (or dead-lettered) rows."""
        with self._tx():
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    def release(self, ids: Iterable[str]) -> None:
        """Give leased rows back after a failed send, so the next attempt (of any process) can take them."""
        with self._tx():
            self._db.executemany("UPDATE spool SET lease_until = 0 WHERE id = ?", [(i,) for i in ids])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: take the write lock up front so concurrent writers queue on
    ``busy_timeout`` instead of failing with SQLITE_BUSY at commit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


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


def count_records(path: Path) -> int:
    """Rows in the spool at ``path`` (0 when the file does not exist); for metrics, tests and the CLI."""
    if not path.exists():
        return 0
    db = sqlite3.connect(str(path), timeout=30.0)
    try:
        return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
