"""Metric aggregation off the application thread: finished spans wait in a queue, a background thread
folds them into the metric values, and every reader drains the queue first.

The application thread's whole share of metrics is one ``deque.append`` in ``on_start`` and one in
``on_end`` (atomic in CPython, no lock, no attribute read). :class:`SpanFold` owns the queues and the
folding thread; what a span turns into is its ``fold_start`` / ``fold_end`` (the Prometheus processor,
which also feeds the OpenTelemetry Metrics API recorder from the same fold).

Exact when read: the folding thread runs every ``interval`` seconds, and every reader calls
:func:`drain_all` (or :meth:`SpanFold.drain`) first: a ``/metrics`` scrape through a collector registered
ahead of the metric families (:func:`ensure_drain_collector`), an OpenTelemetry metric reader through an
observable instrument's callback, ``shutdown()`` and ``force_flush()``.

Bounded: past ``max_queue`` waiting spans (the folding thread cannot keep up), an ended span is dropped
from the metrics and counted (``llm_otel_metrics_dropped_spans_total``), and the in-flight gauge is
corrected on the spot; a started span is folded on the spot. The caller never waits for a lock that a
fold holds.

Fork: a child starts with empty queues and its own folding thread (its calls are its own).

``inline=True`` folds on the calling thread instead (no queue, no thread): prometheus-client's
multiprocess mode uses it, because the process that serves the scrape cannot drain another process's
queue.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ..guard import report

#: How often the folding thread folds, in seconds.
DEFAULT_FOLD_INTERVAL: Final = 1.0
#: Finished spans waiting to be folded, at most (each holds its span alive until folded).
DEFAULT_MAX_QUEUE: Final = 20_000

_folds: weakref.WeakSet[SpanFold] = weakref.WeakSet()


def drain_all() -> None:
    """Fold every waiting span of every live fold of this process into its metric values."""
    for fold in list(_folds):
        fold.drain()


def dropped_all() -> int:
    """Ended spans dropped from the metrics by every live fold of this process (as folded so far)."""
    return sum(fold.dropped_total for fold in list(_folds))


class _DrainCollector:
    """A prometheus-client collector with no metrics of its own: collecting it drains the queues. It is
    registered before the families it feeds, so a scrape (and ``get_sample_value``) reads exact values."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        try:
            drain_all()
        except Exception as exc:  # a scrape must still answer
            report("metrics.drain", exc)
        return []


_drain_lock = threading.Lock()
_drained_registries: weakref.WeakSet[Any] = weakref.WeakSet()


def ensure_drain_collector(registry: Any) -> None:
    """Register a draining collector in ``registry`` once (call it before creating the families)."""
    with _drain_lock:
        if registry in _drained_registries:
            return
        registry.register(_DrainCollector())
        _drained_registries.add(registry)


class SpanFold(SpanProcessor):
    """A span processor whose ``on_start`` / ``on_end`` only queue the span; subclasses fold them.

    Subclasses implement ``fold_start(span)``, ``fold_end(span)``, ``overflow_end(span)`` (the span is
    dropped: undo what ``fold_start`` did, on the application thread) and ``count_dropped(n)``.
    """

    def __init__(
        self,
        *,
        interval: float = DEFAULT_FOLD_INTERVAL,
        max_queue: int = DEFAULT_MAX_QUEUE,
        inline: bool = False,
    ) -> None:
        self.fold_interval = interval
        self.max_queue = max_queue
        self.inline = inline
        #: Ended spans left out of the metrics because the queue was full, since construction (as folded).
        self.dropped_total = 0
        self._closed = False
        self._reset()
        _folds.add(self)
        if inline:  # instance attributes shadow the queueing methods
            self.on_start = self._fold_start_now  # type: ignore[method-assign]
            self.on_end = self._fold_end_now  # type: ignore[method-assign]
            return
        self._start_thread()
        if hasattr(os, "register_at_fork"):
            weak = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(after_in_child=lambda: _call_weak(weak))

    def _reset(self) -> None:
        self._starts: deque[Span] = deque()
        self._ends: deque[ReadableSpan] = deque()
        self._fold_lock = threading.Lock()
        self._wake = threading.Event()
        self._dropped = 0
        self._thread: threading.Thread | None = None

    # -- the application thread ---------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        starts = self._starts
        if len(starts) < self.max_queue:
            starts.append(span)
            return
        try:
            self.fold_start(span)  # only when the folding thread cannot keep up
        except Exception as exc:
            report("metrics.on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        ends = self._ends
        if len(ends) < self.max_queue:
            ends.append(span)
            return
        try:
            self._dropped += 1
            self.overflow_end(span)
        except Exception as exc:
            report("metrics.on_end", exc)

    def _fold_start_now(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self.fold_start(span)
        except Exception as exc:
            report("metrics.fold_start", exc)

    def _fold_end_now(self, span: ReadableSpan) -> None:
        try:
            self.fold_end(span)
        except Exception as exc:
            report("metrics.fold_end", exc)

    # -- folding (folding thread, readers, shutdown) ------------------------------------------------
    def drain(self) -> None:
        """Fold everything queued so far. Ends are taken first, then every start is folded, then those
        ends: every taken end's start was queued before it, so the in-flight gauge never dips below zero.
        A call that started and ended within one drain leaves the gauge as it was: neither is written."""
        with self._fold_lock:
            ends = self._ends
            starts = self._starts
            popleft = ends.popleft
            done: list[ReadableSpan] = [popleft() for _ in range(len(ends))]
            ended = {id(span) for span in done}
            both: set[int] = set()
            fold_start = self.fold_start
            fold_end = self.fold_end
            while starts:
                started = starts.popleft()
                if id(started) in ended:
                    both.add(id(started))
                    continue
                try:
                    fold_start(started)
                except Exception as exc:
                    report("metrics.fold_start", exc)
            for span in done:
                try:
                    fold_end(span, id(span) not in both)
                except Exception as exc:
                    report("metrics.fold_end", exc)
            dropped, self._dropped = self._dropped, 0
            if dropped:
                self.dropped_total += dropped
                self.count_dropped(dropped)

    def fold_start(self, span: Span) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def fold_end(self, span: ReadableSpan, started: bool = True) -> None:  # pragma: no cover - overridden
        """``started``: its start was folded (else it started and ended within this drain: leave the
        in-flight count alone)."""
        raise NotImplementedError

    def overflow_end(self, span: ReadableSpan) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def count_dropped(self, n: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def queued(self) -> int:
        """Spans waiting to be folded (starts and ends)."""
        return len(self._starts) + len(self._ends)

    # -- lifecycle ----------------------------------------------------------------------------------
    def _start_thread(self) -> None:
        # The thread holds the fold weakly: a processor nobody uses any more is collected, its thread ends.
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self), self._wake), name="llm-otel-metrics-fold", daemon=True
        )
        self._thread.start()

    def shutdown(self) -> None:
        """Fold what is queued and stop the folding thread; the values stay readable (and later spans,
        if any still arrive, are folded when read)."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.drain()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.drain()
        return True

    def _after_fork_in_child(self) -> None:
        self._reset()
        if not self._closed and not self.inline:
            self._start_thread()


def _run(ref: weakref.ref[SpanFold], wake: threading.Event) -> None:
    """The folding thread: every ``fold_interval`` seconds, until the fold is shut down or collected."""
    while True:
        fold = ref()
        if fold is None or fold._closed:
            return
        interval = fold.fold_interval
        del fold
        wake.wait(interval)
        fold = ref()
        if fold is None or fold._closed:
            return
        try:
            fold.drain()
        except Exception as exc:
            report("metrics.fold", exc)
        del fold


def _call_weak(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()
