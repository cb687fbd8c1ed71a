"""The live view's registry: LLM calls in flight, the last finished ones, and running totals.

What runs on the application thread (about 2,500 instructions per call, no lock, one dict entry and
one deque item):

* ``started(call)``, from ``GenAICall.__init__``: ``active[call] = None``;
* per streamed chunk, in the stream proxies: ``call.chunks += 1`` (a plain counter on the call, no lock);
* ``ended(call)``, from ``GenAICall`` right after its span ended: ``active.pop(call)``,
  ``pending.append(call)``.

The calls themselves are the entries (span, provider, model, start, first chunk, chunk count), so nothing
is copied while a call runs. Everything else happens on the registry's own thread (``llm-otel-live``:
every ``interval`` while someone listens, every ``idle_interval`` otherwise) or on the threads of the HTTP
requests: folding finished calls into the ring and the totals (exact cost), snapshots, JSON, and
the server-sent events for every listener. The application thread never waits for a listener and never
wakes a thread. Only attribute values llm-otel itself writes are read, from a fixed list: never message
content, never request headers or keys.

The view is per process (a pre-fork server has one registry per worker; see docs/live.md).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import StatusCode

from .. import semconv as sc
from ..errors import ConfigError
from ..exporters.cost.records import cost_string, rfc3339_utc
from ..exporters.prometheus.fastpath import span_attributes
from ..guard import report

if TYPE_CHECKING:
    from ..instrumentors.call import GenAICall

#: The ``version`` field of every JSON document and event (bumped on an incompatible change).
SCHEMA_VERSION: Final = 1
DEFAULT_RING_SIZE: Final = 200
DEFAULT_MAX_GROUPS: Final = 200
DEFAULT_INTERVAL: Final = 0.25  # seconds: at most 4 updates per second
DEFAULT_IDLE_INTERVAL: Final = 1.0  # seconds between folds while nobody listens
DEFAULT_SSE_RECENT: Final = 25
DEFAULT_MAX_ACTIVE: Final = 10_000
DEFAULT_MAX_PENDING: Final = 10_000
MAX_TAGS: Final = 8
MAX_TAG_KEY_CHARS: Final = 64
MAX_TAG_VALUE_CHARS: Final = 128
HEARTBEAT: Final = b": heartbeat\n\n"
_ERROR: Final = StatusCode.ERROR
_TAG_PREFIX: Final = sc.TAG_PREFIX
_TAG_PREFIX_LEN: Final = len(sc.TAG_PREFIX)
_OTHER: Final = ("other", "other")
_NO_ATTRIBUTES: Final[Mapping[str, Any]] = {}

_current: LiveRegistry | None = None


def active_registry() -> LiveRegistry | None:
    """The registry of the running ``instrument()``, or None (live view off or not instrumented)."""
    return _current


def set_active_registry(registry: LiveRegistry | None) -> None:
    global _current
    _current = registry


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return None
    return int(value)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(max(0.0, float(value)), 6)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tags(attrs: Mapping[str, Any], keys: list[str] | None = None) -> dict[str, str]:
    """Attribution tags (``llm_otel.tag.*``): at most MAX_TAGS, keys and values cut to a bounded length."""
    out: dict[str, str] = {}
    if keys is None:
        try:
            keys = [key for key in attrs if key.startswith(_TAG_PREFIX)]  # a live span's map copies its keys
        except RuntimeError:  # pragma: no cover - a plain dict changed size while we looked
            return out
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        out[_clip(key[_TAG_PREFIX_LEN:], MAX_TAG_KEY_CHARS)] = _clip(str(value), MAX_TAG_VALUE_CHARS)
        if len(out) >= MAX_TAGS:
            break
    return out


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def pico_usd(value: Any) -> int | Decimal | None:
    """A span's USD cost in exact pico-dollars (the unit the totals add up), or None when it is no cost.

    Pricing writes 12-decimal values, so for any cost below 1,000 USD ``round(value * 1e12)`` is exactly
    that decimal times 10**12 when it divides back to the same float; that is the value
    :func:`~llm_otel.exporters.cost.records.cost_string` reads from ``repr``. Anything else (more
    decimals, larger) takes the Decimal of its ``repr``, like cost_string: never a float sum."""
    cls = value.__class__
    if cls is not float and cls is not int:
        return None
    if 0 <= value < 1000:
        pico = round(value * 1e12)
        if pico / 1e12 == value:
            return pico
    exact = Decimal(repr(value))
    if not exact.is_finite() or exact < 0:
        return None
    return exact.scaleb(12)


def usd_string(pico: int | Decimal) -> str:
    """Pico-dollars -> the exact USD amount as a plain decimal string (``"0.000153"``, ``"0"``)."""
    return format(Decimal(pico).scaleb(-12).normalize(), "f")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class _Totals:
    __slots__ = ("calls", "errors", "input_tokens", "output_tokens", "cost", "unpriced")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost: int | Decimal = 0  # pico-dollars
        self.unpriced = 0

    def add(self, done: _Finished) -> None:
        self.calls += 1
        if done.failed:
            self.errors += 1
        if done.input_tokens:
            self.input_tokens += done.input_tokens
        if done.output_tokens:
            self.output_tokens += done.output_tokens
        if done.cost is not None:
            self.cost += done.cost
        if done.pricing == sc.PRICING_UNPRICED:
            self.unpriced += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd_string(self.cost),
            "unpriced_calls": self.unpriced,
        }


class _Finished:
    """One finished call as the ring keeps it: primitives only (neither the span nor any content).

    ``detailed=False`` reads only what the totals need (a call that later calls of the same batch push out
    of the ring before anyone could see it)."""

    __slots__ = (
        "span_id", "trace_id", "provider", "operation", "request_model", "response_model", "start_ns",
        "end_ns", "streaming", "chunks", "ttfc", "input_tokens", "output_tokens", "cost", "cost_value",
        "pricing", "failed", "error_type", "abandoned", "tags", "key",
    )  # fmt: skip

    def __init__(self, call: GenAICall, detailed: bool = True) -> None:
        span: Any = call.span
        try:  # ended: the SDK's map is frozen, read it without the proxy
            attrs = span_attributes(span)
        except AttributeError:  # a non-recording span has no attributes
            attrs = _NO_ATTRIBUTES
        get = attrs.get
        self.provider = provider = call.provider or "unknown"
        self.request_model = call.request_model
        # the common types checked inline (a function call per field would double the cost of a fold)
        model = get(sc.RESPONSE_MODEL)
        self.response_model = model if model.__class__ is str and model else None
        self.end_ns = end = getattr(span, "end_time", None) or time.time_ns()
        tokens = get(sc.USAGE_INPUT_TOKENS)
        self.input_tokens = tokens if tokens.__class__ is int and tokens >= 0 else _count(tokens)
        tokens = get(sc.USAGE_OUTPUT_TOKENS)
        self.output_tokens = tokens if tokens.__class__ is int and tokens >= 0 else _count(tokens)
        pricing = get(sc.PRICING_STATUS)
        self.pricing = pricing = pricing if pricing.__class__ is str and pricing else None
        value = get(sc.USAGE_COST)
        self.cost = None if pricing == sc.PRICING_UNPRICED else pico_usd(value)
        self.cost_value = value
        error_type = get(sc.ERROR_TYPE)
        self.error_type: str | None
        if error_type is not None:
            self.failed = True
            self.error_type = str(error_type)
        else:
            status = getattr(span, "status", None)
            self.failed = status is not None and status.status_code is _ERROR
            self.error_type = "_OTHER" if self.failed else None
        self.key = (provider, self.response_model or self.request_model or "unknown")
        if not detailed:
            return
        ctx = span.get_span_context()
        self.span_id = ctx.span_id
        self.trace_id = ctx.trace_id
        self.operation = _str(get(sc.OPERATION)) or "unknown"
        self.start_ns = getattr(span, "start_time", None) or end
        self.chunks = chunks = call.chunks
        self.streaming = chunks > 0 or get(sc.REQUEST_STREAM) is True
        self.ttfc = get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)
        self.abandoned = get(sc.STREAM_ABANDONED) is True
        tag_keys = [key for key in attrs if key.startswith(_TAG_PREFIX)]
        self.tags = _tags(attrs, tag_keys) if tag_keys else None

    @property
    def duration(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    def as_json(self) -> dict[str, Any]:
        return {
            "span_id": f"{self.span_id:016x}",
            "trace_id": f"{self.trace_id:032x}",
            "provider": self.provider,
            "operation": self.operation,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "start_time": rfc3339_utc(self.start_ns),
            "end_time": rfc3339_utc(self.end_ns),
            "duration_s": round(self.duration, 6),
            "streaming": self.streaming,
            "chunks": self.chunks,
            "time_to_first_chunk_s": _seconds(self.ttfc),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": cost_string(self.cost_value) if self.cost is not None else None,
            "pricing_status": self.pricing,
            "status": "error" if self.failed else "ok",
            "error_type": self.error_type,
            "abandoned": self.abandoned,
            "tags": dict(self.tags or {}),
        }


class LiveRegistry(SpanProcessor):
    """The live view's state; see the module docstring for what runs where.

    Fed by ``GenAICall`` directly (``Telemetry.live``), not by the TracerProvider (a processor call costs
    more than the whole feed): it is a SpanProcessor only so that ``instrument()``'s handle flushes and
    shuts it down with the others.

    ``ring_size``: finished calls kept for ``/live/recent`` and the percentiles. ``max_groups``: distinct
    (provider, model) totals before further ones are counted under ``other``. ``interval``: how often the
    registry thread folds finished calls and publishes an update while someone listens (0.25 s: at most 4
    updates a second); ``idle_interval``: how often it folds while nobody listens.
    ``sse_recent``: finished calls in each update event. ``max_active``: calls listed in flight at most
    (more are still counted when they end). ``max_pending``: finished calls waiting for the registry thread
    before the application thread folds them itself. ``token``: the bearer token the HTTP apps require
    (None: none). ``background=False`` starts no thread (tests and benchmarks call :meth:`tick`).
    """

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        max_groups: int = DEFAULT_MAX_GROUPS,
        interval: float = DEFAULT_INTERVAL,
        idle_interval: float = DEFAULT_IDLE_INTERVAL,
        sse_recent: int = DEFAULT_SSE_RECENT,
        max_active: int = DEFAULT_MAX_ACTIVE,
        max_pending: int = DEFAULT_MAX_PENDING,
        token: str | None = None,
        background: bool = True,
    ) -> None:
        for name, value in (("live_ring_size", ring_size), ("live_max_groups", max_groups),
                            ("live_sse_recent", sse_recent), ("live_max_active", max_active),
                            ("live_max_pending", max_pending)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "expected a positive integer")
        for name, seconds in (("live_interval", interval), ("live_idle_interval", idle_interval)):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
                raise ConfigError(name, seconds, "expected seconds, more than 0 and at most 3600")
        self.ring_size = ring_size
        self.max_groups = max_groups
        self.interval = float(interval)
        self.idle_interval = float(idle_interval)
        self.sse_recent = min(sse_recent, ring_size)
        self.max_active = max_active
        self.max_pending = max_pending
        self.token = token
        self.background = background
        self._closed = False
        self._thread: threading.Thread | None = None
        self._reset()
        if background:
            self._start_thread()
        weak = weakref.WeakMethod(self._after_fork)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _call_weak(weak))

    def _reset(self) -> None:
        """Fresh state (construction, and in a forked child: the view is per process)."""
        #: calls in flight (a dict as an ordered set). Written by application threads only.
        self._active: dict[GenAICall, None] = {}
        #: finished calls waiting to be folded. Appended by application threads only.
        self._pending: deque[GenAICall] = deque()
        self._lock = threading.Lock()  # ring, totals, folding
        self._cond = threading.Condition(threading.Lock())  # publication to listeners
        self._wake = threading.Event()  # set by shutdown and by a new listener, never by the application
        self._ring: deque[_Finished] = deque(maxlen=self.ring_size)
        self._groups: dict[tuple[str, str], _Totals] = {}
        self._overall = _Totals()
        self._minute: dict[int, list[Any]] = {}  # end second -> [calls, errors, pico-dollars]
        self._since_ns = time.time_ns()
        self._folded = 0
        self._seq = 0
        self._payload: bytes | None = None
        self._published_key: Any = None
        self._listeners = 0

    # -- the application thread ---------------------------------------------------------------------
    def started(self, call: GenAICall) -> None:
        """A call started (end of ``GenAICall.__init__``)."""
        try:
            active = self._active
            if len(active) < self.max_active:
                active[call] = None
        except Exception as exc:  # pragma: no cover - a dict insertion
            report("live.started", exc)

    def ended(self, call: GenAICall) -> None:
        """A call's span ended (once per call: ``GenAICall`` ends its span exactly once)."""
        try:
            self._active.pop(call, None)
            pending = self._pending
            pending.append(call)
            if len(pending) > self.max_pending:  # only when the registry thread cannot keep up
                self._fold(blocking=False)
        except Exception as exc:  # pragma: no cover - dict and deque operations
            report("live.ended", exc)

    # -- lifecycle ----------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the registry thread and end every event stream; the data stays readable."""
        self._closed = True
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if _current is self:
            set_active_registry(None)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llm-otel-live", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        """A forked child starts empty (its calls are its own) with its own thread."""
        self._reset()
        self._thread = None
        if self.background and not self._closed:
            self._start_thread()

    def _run(self) -> None:
        """Every ``interval`` while someone listens, else every ``idle_interval`` (just folding: an idle
        application with nobody watching costs one wake-up a second)."""
        wake = self._wake
        while not self._closed:
            wake.wait(self.interval if self._listeners else self.idle_interval)
            wake.clear()
            if self._closed:
                return
            try:
                self.tick()
            except Exception as exc:
                report("live.tick", exc)

    def tick(self) -> None:
        """Fold finished calls; publish an update if something changed and someone listens. The registry
        thread calls it every ``interval``."""
        self._fold()
        if self._listeners:
            self._publish_if_changed()

    @property
    def listeners(self) -> int:
        return self._listeners

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return len(self._active)

    @property
    def finished(self) -> int:
        """Calls folded into the totals so far."""
        return self._folded

    # -- folding (registry thread; an HTTP request's thread; the application's only past max_pending) --
    def _fold(self, blocking: bool = True) -> None:
        if not self._lock.acquire(blocking):
            return
        try:
            pending = self._pending
            ring_size = self.ring_size
            while pending:
                # a call followed by a full ring's worth of others in this batch never shows: totals only
                detailed = len(pending) <= ring_size
                call = pending.popleft()
                try:
                    self._fold_one(_Finished(call, detailed), detailed)
                except Exception as exc:
                    report("live.fold", exc)
        finally:
            self._lock.release()

    def _fold_one(self, done: _Finished, in_ring: bool = True) -> None:
        key = done.key
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                key = done.key = _OTHER
                group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Totals()
        group.add(done)
        self._overall.add(done)
        second = done.end_ns // 1_000_000_000
        bucket = self._minute.get(second)
        if bucket is None:
            bucket = self._minute[second] = [0, 0, 0]
            self._prune_minute(second)
        bucket[0] += 1
        if done.failed:
            bucket[1] += 1
        if done.cost is not None:
            bucket[2] += done.cost
        if in_ring:
            self._ring.append(done)
        self._folded += 1

    def _prune_minute(self, now_s: int) -> None:
        for second in [s for s in self._minute if s <= now_s - 60]:
            del self._minute[second]

    # -- snapshots (any thread but the application's) -----------------------------------------------
    def _header(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "pid": os.getpid(), "generated_at": rfc3339_utc(time.time_ns())}

    def active(self) -> list[dict[str, Any]]:
        """Calls in flight, oldest first."""
        now = time.time_ns()
        out = []
        for call in list(self._active):
            try:
                item = _active_entry(call, now)
            except Exception as exc:
                report("live.active_entry", exc)
                continue
            if item is not None:
                out.append(item)
        out.sort(key=lambda item: item["start_time"])
        return out

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The last finished calls, newest first (at most ``limit``, default all kept)."""
        self._fold()
        with self._lock:
            items = list(self._ring)
        items.reverse()
        if limit is not None:
            items = items[: max(0, limit)]
        return [done.as_json() for done in items]

    def totals(self) -> dict[str, Any]:
        """Running totals since start, overall and by (provider, model), with duration percentiles over the
        ring and the last minute's calls and cost."""
        self._fold()
        with self._lock:
            groups = {key: totals.as_json() for key, totals in self._groups.items()}
            overall = self._overall.as_json()
            ring = [(done.key, done.duration) for done in self._ring]
            now_s = time.time_ns() // 1_000_000_000
            self._prune_minute(now_s)
            minute_calls, minute_errors, minute_cost = 0, 0, 0
            for second, (calls, errors, cost) in self._minute.items():
                if second > now_s - 60:
                    minute_calls += calls
                    minute_errors += errors
                    minute_cost += cost
            since = self._since_ns
        durations: dict[tuple[str, str], list[float]] = {}
        for key, duration in ring:
            durations.setdefault(key, []).append(duration)
        everything = sorted(d for _, d in ring)
        overall["in_flight"] = len(self._active)
        overall["duration_p50_s"] = _round(percentile(everything, 0.5))
        overall["duration_p95_s"] = _round(percentile(everything, 0.95))
        by_model = []
        for (provider, model), values in groups.items():
            ds = sorted(durations.get((provider, model), ()))
            by_model.append({"provider": provider, "model": model, **values,
                             "duration_p50_s": _round(percentile(ds, 0.5)),
                             "duration_p95_s": _round(percentile(ds, 0.95))})  # fmt: skip
        by_model.sort(key=lambda g: (-Decimal(g["cost_usd"]), -g["calls"], g["provider"], g["model"]))
        return {
            "since": rfc3339_utc(since),
            "overall": overall,
            "last_minute": {
                "calls": minute_calls,
                "errors": minute_errors,
                "cost_usd": usd_string(minute_cost),
            },
            "by_model": by_model,
        }

    def active_document(self) -> dict[str, Any]:
        """``GET /live/active``."""
        return {**self._header(), "active": self.active()}

    def recent_document(self, limit: int | None = None) -> dict[str, Any]:
        """``GET /live/recent``."""
        return {**self._header(), "ring_size": self.ring_size, "recent": self.recent(limit)}

    def totals_document(self) -> dict[str, Any]:
        """``GET /live/totals``."""
        return {**self._header(), **self.totals()}

    def snapshot(self, recent: int | None = None) -> dict[str, Any]:
        """What an ``update`` event carries: active, the newest ``recent`` finished calls and the totals."""
        totals = self.totals()  # folds first: a call gone from active is already among the recent ones
        return {
            **self._header(),
            "seq": self._seq,
            "active": self.active(),
            "recent": self.recent(self.sse_recent if recent is None else recent),
            "totals": totals,
        }

    # -- server-sent events -------------------------------------------------------------------------
    def _change_key(self) -> tuple[frozenset[int], int, int]:
        """Changes when a call starts or ends, or a chunk arrives: the calls in flight, their chunks, the
        calls folded so far (computed on the registry thread)."""
        calls = list(self._active)
        return (frozenset(map(id, calls)), sum(call.chunks for call in calls), self._folded)

    @staticmethod
    def _event(document: dict[str, Any]) -> bytes:
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
        return b"event: update\ndata: " + data.encode("ascii") + b"\n\n"

    def _publish_if_changed(self) -> None:
        key = self._change_key()
        if key == self._published_key:
            return
        with self._cond:
            seq = self._seq + 1
        document = self.snapshot()
        document["seq"] = seq
        payload = self._event(document)
        with self._cond:
            self._seq = seq
            self._payload = payload
            self._published_key = key
            self._cond.notify_all()

    def add_listener(self) -> int:
        """Count a listener (updates are built only while someone listens); returns the sequence number
        of the last published update."""
        with self._cond:
            self._listeners += 1
            seq = self._seq
        self._wake.set()  # the registry thread switches to ``interval``
        return seq

    def remove_listener(self) -> None:
        with self._cond:
            self._listeners -= 1

    def published(self) -> tuple[int, bytes | None]:
        """The last published update: (sequence number, ``event: update`` bytes)."""
        with self._cond:
            return self._seq, self._payload

    def first_event(self, seq: int) -> bytes:
        """What a new listener gets at once: the reconnect delay and an update built now."""
        document = self.snapshot()
        document["seq"] = seq
        return b"retry: 3000\n\n" + self._event(document)

    def listen(
        self,
        heartbeat: float = 15.0,
        gone: Callable[[], bool] | None = None,
        poll: float = 1.0,
    ) -> Iterator[bytes]:
        """The byte stream of one ``/live/events`` listener: an ``update`` now, then one per published
        change (at most one per ``interval``), a ``: heartbeat`` comment every ``heartbeat`` seconds. Ends
        when ``gone()`` says the client left (checked every ``poll`` seconds), or at shutdown. Runs on the
        listener's own thread; the application thread is never involved."""
        seen = self.add_listener()
        try:
            yield self.first_event(seen)
            next_beat = time.monotonic() + heartbeat
            while True:
                with self._cond:
                    if self._seq == seen and not self._closed:
                        self._cond.wait(max(0.0, min(poll, next_beat - time.monotonic())))
                    seq, payload, closed = self._seq, self._payload, self._closed
                if closed:
                    return
                if seq != seen and payload is not None:
                    seen = seq
                    yield payload
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + heartbeat
                    yield HEARTBEAT
                elif gone is not None and gone():
                    return
        finally:
            self.remove_listener()


def _active_entry(call: GenAICall, now: int) -> dict[str, Any] | None:
    span: Any = call.span
    if getattr(span, "end_time", None) is not None:
        return None  # ending right now: it shows in the next update's recent calls
    attrs = getattr(span, "attributes", None) or {}  # the public view: safe while the application writes
    ctx = span.get_span_context()
    start = getattr(span, "start_time", None) or now
    chunks = call.chunks
    ttfc = round(max(0, call.first_chunk_ns - call.start_ns) / 1e9, 6) if call.first_chunk_ns else None
    return {
        "span_id": f"{ctx.span_id:016x}",
        "trace_id": f"{ctx.trace_id:032x}",
        "provider": call.provider or "unknown",
        "operation": _str(attrs.get(sc.OPERATION)) or "unknown",
        "request_model": call.request_model,
        "start_time": rfc3339_utc(start),
        "elapsed_s": round(max(0, now - start) / 1e9, 6),
        "streaming": chunks > 0 or attrs.get(sc.REQUEST_STREAM) is True,
        "chunks": chunks,
        "time_to_first_chunk_s": ttfc,
        "tags": _tags(attrs),
    }


def _call_weak(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()
