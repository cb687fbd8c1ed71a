"""SQLite storage of usage records: idempotent by id, exact Decimal totals.

Costs are stored as TEXT and summed by a Python aggregate over :class:`decimal.Decimal`, so a total is
exact however many records it covers (SQLite's own SUM would go through binary floats).
``synchronous=FULL``: a 200 from this server means the record is on disk, which is what lets the exporter
delete it from its spool.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

from .. import cost_contract as c
from .validation import parse_cost, parse_time

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
_CTX = Context(prec=80)  # far beyond any realistic total: sums never round


class _DecimalSum:
    """SQLite aggregate ``decsum(text)``: exact sum of decimal strings, NULLs skipped."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = _CTX.add(self.total, Decimal(value))

    def finalize(self) -> str:
        return format(self.total, "f")


def _us(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000 + when.microsecond


class UsageStore:
    """One connection shared by the server's threads behind a lock (SQLite serialises writes anyway)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.create_aggregate("decsum", 1, _DecimalSum)  # type: ignore[arg-type]
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, records: list[dict[str, Any]]) -> int:
        """Store already-validated records; returns how many were new (the rest were duplicate ids)."""
        rows = []
        for rec in records:
            cost = parse_cost(rec.get(c.COST_USD))
            rows.append((
                rec[c.ID], _us(parse_time(rec[c.TIMESTAMP])), rec[c.TIMESTAMP],
                *(rec[f] for f in c.STRING_FIELDS),
                *(rec[t] for t in _TOKENS),
                None if cost is None else format(cost, "f"),
                float(rec[c.LATENCY_MS]), rec[c.STATUS], rec.get(c.ERROR_TYPE),
                rec[c.TRACE_ID], rec[c.SPAN_ID], json.dumps(rec.get(c.ATTRIBUTES) or {}, sort_keys=True),
            ))  # fmt: skip
        sql = f"INSERT OR IGNORE INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
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
            args.append(_us(start))
        if end is not None:
            where.append("ts_us < ?")
            args.append(_us(end))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sums = ", ".join(f"COALESCE(SUM({t}), 0)" for t in _TOKENS)
        select = f"decsum(cost_usd), COUNT(*), COALESCE(SUM(cost_usd IS NULL), 0), {sums}"
        with self._lock:
            total = self._db.execute(f"SELECT {select} FROM usage {clause}", args).fetchone()
            groups = []
            if group_by is not None:
                column = c.GROUP_BY[group_by]
                groups = self._db.execute(
                    f"SELECT {column}, {select} FROM usage {clause} GROUP BY {column}", args
                ).fetchall()
        result: dict[str, Any] = {"currency": "USD", "group_by": group_by, "total": _summary(total)}
        if group_by is not None:
            entries = [{"key": row[0], **_summary(row[1:])} for row in groups]
            entries.sort(key=lambda e: (-Decimal(e["cost_usd"]), e["key"]))
            result["groups"] = entries
        return result

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM usage").fetchone()[0])


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "cost_usd": row[0],
        "records": row[1],
        "unpriced_records": row[2],
        **{t: row[3 + i] for i, t in enumerate(_TOKENS)},
    }
