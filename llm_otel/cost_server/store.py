"""SQLite storage of usage records: idempotent by id, exact Decimal totals.

Costs are stored as TEXT and summed by a Python aggregate over :class:`decimal.Decimal`, so a total is
exact however many records it covers (SQLite's own SUM would go through binary floats). Token counts are
summed by SQLite, and by a Python aggregate on the rare query whose sum exceeds SQLite's 64-bit integers.
``synchronous=FULL``: a 200 from this server means the record is on disk, which is what lets the exporter
delete it from its spool. The database file is created 0600 (it holds usage data); SQLite gives its
``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import threading
from datetime import datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from pathlib import Path
from typing import Any

from .. import cost_contract as c
from .validation import epoch_us, parse_cost, parse_time

# Columns are named after the record fields (so ``c.GROUP_BY`` values are column names), plus ``ts_us``.
_TOKENS = c.TOKEN_FIELDS
_COLUMNS = (
    c.ID, "ts_us", c.TIMESTAMP, *c.STRING_FIELDS, *_TOKENS, c.COST_USD, c.LATENCY_MS, c.STATUS,
    c.ERROR_TYPE, c.TRACE_ID, c.SPAN_ID, c.ATTRIBUTES,
)  # fmt: skip
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS usage (
    id TEXT PRIMARY KEY,
    ts_us INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    organization_id TEXT NOT NULL, service_name TEXT NOT NULL, provider TEXT NOT NULL,
    model_id TEXT NOT NULL, operation TEXT NOT NULL,
    {", ".join(f"{t} INTEGER NOT NULL" for t in _TOKENS)},
    cost_usd TEXT,
    latency_ms REAL NOT NULL, status TEXT NOT NULL, error_type TEXT,
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts_us);
"""
_INSERT = f"INSERT OR IGNORE INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
#: The string and token fields, in column order, in one C call.
_pick_fields = operator.itemgetter(*c.STRING_FIELDS, *_TOKENS)
#: ``json.dumps(attributes, sort_keys=True)`` without building an encoder per record.
_attributes_json = json.JSONEncoder(sort_keys=True).encode

# Exactness of the cost sums. The validator stores every cost as k * 10**-P with integers
# 0 <= k < M * 10**P, where M = MAX_COST_USD = 10**9 and P = MAX_COST_PLACES = 18 (so k < 10**27), in a form
# whose exponent is >= -P. A rowid table holds at most 2**64 rows (rowids are distinct 64-bit integers), so
# every partial sum, and the total, is K * 10**-P with 0 <= K < 2**64 * 10**27 < 10**47. Decimal addition
# gives the exact result whenever its coefficient fits the context precision: the exact sum of two such
# operands has exponent e = min(e1, e2) >= -P, so its coefficient, sum * 10**-e, is at most K: 47 digits.
# prec=80 is above 47 (the import-time check below keeps it so if the bounds change), so no sum this store
# computes is ever rounded; the 10**12 records of a very large deployment need at most 39 digits. Inexact
# is trapped all the same: a row written before these bounds existed fails the query loudly (500) instead
# of yielding a rounded "exact" total.
_SUM_DIGITS = len(str(2**64 * c.MAX_COST_USD * 10**c.MAX_COST_PLACES))
_CTX = Context(prec=80, traps=[Inexact, InvalidOperation, Overflow])
if _CTX.prec < _SUM_DIGITS:  # pragma: no cover - guards a future change of the contract's bounds
    raise RuntimeError(f"cost sums need {_SUM_DIGITS} digits of precision, the context has {_CTX.prec}")


class _DecimalSum:
    """SQLite aggregate ``decsum(text)``: exact sum of decimal strings, NULLs skipped."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = _CTX.add(self.total, Decimal(value))

    def finalize(self) -> str:
        return format(self.total, "f")


class _IntSum:
    """SQLite aggregate ``intsum(int)``: exact integer sum as TEXT (a Python int does not overflow; SQLite's
    SUM raises "integer overflow" beyond 2**63 - 1, which 1,024 records of MAX_TOKENS reach)."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total += value

    def finalize(self) -> str:
        return str(self.total)


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 if it does not exist yet (SQLite would create it 0644 under
    the usual umask); an existing file keeps its mode. Errors are left for SQLite to report."""
    if path == ":memory:" or not path:
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    os.close(fd)


class UsageStore:
    """One connection shared by the server's threads behind a lock (SQLite serialises writes anyway)."""

    def __init__(self, path: str | Path) -> None:
        _create_private(str(path))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.create_aggregate("decsum", 1, _DecimalSum)  # type: ignore[arg-type]
        self._db.create_aggregate("intsum", 1, _IntSum)  # type: ignore[arg-type]
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(
        self, records: list[dict[str, Any]], parsed: list[tuple[datetime, Decimal | None]] | None = None
    ) -> int:
        """Store already-validated records; returns how many were new (the rest were duplicate ids).
        ``parsed``: each record's time and cost as validation parsed them (parsed here when not given)."""
        if parsed is None:
            parsed = [(parse_time(rec[c.TIMESTAMP]), parse_cost(rec.get(c.COST_USD))) for rec in records]
        rows = []
        pick, attributes_json = _pick_fields, _attributes_json
        for rec, (when, cost) in zip(records, parsed, strict=True):
            attributes = rec.get(c.ATTRIBUTES)
            rows.append((
                rec[c.ID], epoch_us(when), rec[c.TIMESTAMP], *pick(rec),
                None if cost is None else format(cost, "f"),
                float(rec[c.LATENCY_MS]), rec[c.STATUS], rec.get(c.ERROR_TYPE),
                rec[c.TRACE_ID], rec[c.SPAN_ID], attributes_json(attributes) if attributes else "{}",
            ))  # fmt: skip
        sql = _INSERT
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.executemany(sql, rows)
                inserted = max(0, cur.rowcount)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return inserted

    def totals(self, start: datetime | None, end: datetime | None, group_by: str | None) -> dict[str, Any]:
        """Exact totals over ``start <= timestamp < end``, overall and per group."""
        where, args = [], []
        if start is not None:
            where.append("ts_us >= ?")
            args.append(epoch_us(start))
        if end is not None:
            where.append("ts_us < ?")
            args.append(epoch_us(end))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        column, column_args = None, []
        if group_by is not None:
            tag = c.group_tag(group_by)  # ValueError for anything the server did not check first
            if tag is None:
                column = c.GROUP_BY[group_by]
            else:  # the key's syntax (no quote) makes the JSON path safe; it is bound, never spliced
                column, column_args = "json_extract(attributes, ?)", [f'$."{tag}"']
        with self._lock:
            try:
                total, groups = self._totals(clause, args, column, column_args, exact_tokens=False)
            except sqlite3.OperationalError as exc:
                if "integer overflow" not in str(exc):
                    raise
                total, groups = self._totals(clause, args, column, column_args, exact_tokens=True)
        result: dict[str, Any] = {"currency": "USD", "group_by": group_by, "total": _summary(total)}
        if group_by is not None:
            entries = [{"key": row[0], **_summary(row[1:])} for row in groups]
            entries.sort(key=lambda e: (-Decimal(e["cost_usd"]), e["key"] is None, e["key"] or ""))
            result["groups"] = entries[: c.MAX_GROUPS]
            result["groups_omitted"] = max(0, len(entries) - c.MAX_GROUPS)
        return result

    def _totals(
        self, clause: str, args: list[int], column: str | None, column_args: list[str], exact_tokens: bool
    ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        summing = "intsum" if exact_tokens else "SUM"
        sums = ", ".join(f"COALESCE({summing}({t}), 0)" for t in _TOKENS)
        select = f"decsum(cost_usd), COUNT(*), COALESCE(SUM(cost_usd IS NULL), 0), {sums}"
        total = self._db.execute(f"SELECT {select} FROM usage {clause}", args).fetchone()
        groups = []
        if column is not None:
            groups = self._db.execute(
                f"SELECT {column} AS grp, {select} FROM usage {clause} GROUP BY grp", [*column_args, *args]
            ).fetchall()
        return total, groups

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM usage").fetchone()[0])


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "cost_usd": row[0],
        "records": row[1],
        "unpriced_records": row[2],
        **{t: int(row[3 + i]) for i, t in enumerate(_TOKENS)},
    }
