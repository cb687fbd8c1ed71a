"""The span processor that turns llm-otel's GenAI spans into Prometheus metrics.

:class:`PrometheusMetricsProcessor` is a span processor: its ``on_start`` / ``on_end`` only queue the
span on the application thread (``span_fold.py``); the fold (a background thread, and every reader before
it reads) looks only at spans of the ``llm_otel`` instrumentation scope, counts calls in flight
(``fold_start``), and records the GenAI convention metrics and llm-otel's own ``llm_otel_*`` counters
(``fold_end``; families: ``metrics.py``), also to the OpenTelemetry Metrics API recorder when one is
attached (``attach``). Metrics are a by-product of the span, so tokens and cost are never computed twice.

Fold path: ``fold_end`` runs once per finished call. It reads each attribute once,
finds all labelled children of the call's label combination in one dict lookup (``metric.labels()`` is
slow, so children are cached per raw attribute tuple) and creates nothing per call. Any internal failure
goes to :func:`llm_otel.guard.report` and never reaches the application.

Label values are bounded (``labels.py``): at most ``max_models`` distinct values per
open-ended label, later ones become ``other``; attribution tags become labels only for the keys in
``label_tags``.

Multiprocess mode (gunicorn and other pre-fork servers): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty,
writable directory *before anything imports prometheus_client* (prometheus-client picks its value storage
at import), in the master's environment so every worker inherits it. Each worker then writes its values
to files there; the in-flight gauge uses ``multiprocess_mode="livesum"`` so only live workers count.
Serve from ONE process (e.g. gunicorn's ``when_ready`` hook calling :func:`start_metrics_server`, or a
mounted :func:`make_wsgi_app`, both in ``server.py``): in that mode they serve a fresh registry with a
``MultiProcessCollector`` that sums all workers' files. Call
``prometheus_client.multiprocess.mark_process_dead(pid)`` from gunicorn's ``child_exit`` hook so dead
workers' in-flight values are dropped, and empty the directory between runs of the whole server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry, Histogram

from ... import semconv as sc
from ...config import latest_semconv_from_env, prometheus_multiprocess_dir
from ...errors import ConfigError
from ...metrics_registry import REGISTRY
from ..span_fold import DEFAULT_FOLD_INTERVAL, DEFAULT_MAX_QUEUE, SpanFold, ensure_drain_collector
from .fastpath import Writer, counter_writer, gauge_writer, histogram_writer, span_attributes
from .labels import BoundedLabel
from .metrics import (
    INFERENCE_OPERATIONS,
    OWN_LABELS,
    LatestMetrics,
    LegacyMetrics,
    OwnMetrics,
)

__all__ = ["DEFAULT_MAX_MODELS", "PrometheusMetricsProcessor"]

DEFAULT_MAX_MODELS: Final = 200
_SCOPE = sc.SCOPE_NAME
_ERROR = StatusCode.ERROR
_SERVICE_NAME = "service.name"
_UNPRICED = sc.PRICING_UNPRICED
#: error.type when a span failed without saying why (the conventions' fallback value).
_OTHER_ERROR = "_OTHER"
#: Token counts that are parts of input/output: (span attribute, own-counter child, newest-counter child).
_DETAIL_TOKENS: Final = (
    (sc.USAGE_CACHE_READ_INPUT_TOKENS, "t:cache_read", "u:cache_read"),
    (sc.USAGE_CACHE_WRITE_INPUT_TOKENS, "t:cache_write", "u:cache_write"),
    (sc.USAGE_REASONING_OUTPUT_TOKENS, "t:reasoning", "u:reasoning"),
)
_MODALITY = "unknown"  # spans carry no per-modality breakdown; the conventions say report it as unknown


def _amount(value: Any) -> Any:
    """``value`` if it is a non-negative int/float (not bool, not NaN), else None."""
    cls = value.__class__
    if (cls is int or cls is float) and value >= 0:
        return value
    return None


class _Series:
    """The labelled children of one label combination. Children used by every call are made eagerly,
    the rest (tokens by type, cost, time to first chunk, ...) on first use, so no empty series appear."""

    __slots__ = (
        "sem",
        "err",
        "own",
        "service",
        "tags",
        "inference",
        "active",
        "duration",
        "requests",
        "kids",
    )

    def __init__(
        self,
        sem: tuple[str, str, str, str],
        err: str,
        own: tuple[str, str],
        service: str,
        tags: tuple[str, ...],
        inference: bool,
        active: Writer,
        duration: Writer,
        requests: Writer,
    ) -> None:
        self.sem = sem  # gen_ai_operation_name, gen_ai_provider_name, gen_ai_request/response_model
        self.err = err  # error_type ("" when the call succeeded)
        self.own = own  # provider, model (llm_otel_* families)
        self.service = service
        self.tags = tags
        self.inference = inference  # newest conventions and an inference operation
        self.active = active
        self.duration = duration
        self.requests = requests
        self.kids: dict[str, Writer] = {}


class PrometheusMetricsProcessor(SpanFold):
    """Span processor that turns finished ``llm_otel`` spans into Prometheus metrics.

    ``label_tags``: attribution tag keys (``llm_otel.attributes(tenant=...)``) that become an extra label
    on ``llm_otel_cost_usd_total`` and ``llm_otel_requests_total``. ``max_models``: distinct values
    kept per label before folding into ``other``. ``latest_semconv``: use the newest GenAI metric names;
    None reads OTEL_SEMCONV_STABILITY_OPT_IN once, here. ``registry``: where the families live.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry = REGISTRY,
        label_tags: Iterable[str] = (),
        max_models: int = DEFAULT_MAX_MODELS,
        latest_semconv: bool | None = None,
        fold_interval: float = DEFAULT_FOLD_INTERVAL,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        if isinstance(label_tags, str):
            label_tags = (label_tags,)
        tags = tuple(dict.fromkeys(label_tags))
        for tag in tags:
            if not (isinstance(tag, str) and tag.isascii() and tag.isidentifier() and tag[:2] != "__"):
                raise ConfigError("label_tags", tag, "must be an ASCII identifier not starting with '__'")
            if tag in OWN_LABELS:
                raise ConfigError("label_tags", tag, f"collides with a built-in label ({sorted(OWN_LABELS)})")
        if isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1:
            raise ConfigError("max_models", max_models, "must be an integer >= 1")
        self.latest_semconv = latest_semconv_from_env() if latest_semconv is None else bool(latest_semconv)
        self.label_tags = tags
        self.max_models = max_models
        self._tag_attrs = tuple(sc.TAG_PREFIX + tag for tag in tags)
        ensure_drain_collector(registry)  # before the families: a scrape drains, then reads them
        self._own = OwnMetrics(registry, tags)
        self._dropped_writer = counter_writer(self._own.dropped)
        self._legacy = None if self.latest_semconv else LegacyMetrics(registry)
        self._latest = LatestMetrics(registry) if self.latest_semconv else None
        cap = max_models
        self._models = BoundedLabel(cap)  # request, response and llm_otel "model" labels share one set
        self._providers = BoundedLabel(cap)
        self._operations = BoundedLabel(cap)
        self._errors = BoundedLabel(cap)
        self._services = BoundedLabel(cap)
        self._tag_bounds = tuple(BoundedLabel(cap) for _ in tags)
        self._series: dict[Any, _Series] = {}
        self._active: dict[Any, Writer] = {}
        #: Raw-key caches are bounded too (distinct raw values beyond the cap all map to "other" series).
        self._max_cached = max(1024, 16 * cap)
        self._resource: tuple[Any, Any] = (None, None)
        self._otel: Any = None
        # Multiprocess mode: the serving process reads this one's files and cannot drain its queue.
        super().__init__(
            interval=fold_interval, max_queue=max_queue, inline=prometheus_multiprocess_dir() is not None
        )

    # -- folding (the folding thread; a reader draining before it reads) ------------------------------
    # ``on_start`` / ``on_end`` (SpanFold) only queue the span on the application thread.
    def fold_start(self, span: Span) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != _SCOPE:
            return
        self._add_active(span, 1)

    def fold_end(self, span: ReadableSpan, started: bool = True) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != _SCOPE:
            return
        self._record(span, started)

    def overflow_end(self, span: ReadableSpan) -> None:
        """The queue is full and ``span`` is dropped from the metrics: only leave the in-flight gauge."""
        scope = span.instrumentation_scope
        if scope is not None and scope.name == _SCOPE:
            self._add_active(span, -1)

    def count_dropped(self, n: int) -> None:
        self._dropped_writer(n)

    def _add_active(self, span: ReadableSpan, delta: int) -> None:
        attrs = span_attributes(span)
        key = (attrs.get(sc.PROVIDER), attrs.get(sc.OPERATION))
        try:
            add = self._active[key]
        except (KeyError, TypeError):
            add = self._active_child(key)
        add(delta)

    def attach(self, recorder: Any) -> None:
        """Also feed ``recorder`` (``record(series, values)``, e.g. the OpenTelemetry Metrics API recorder)
        from this fold, with the same bounded label values; None detaches."""
        with self._fold_lock:
            self._otel = recorder
            self._series.clear()  # cached writers are rebuilt with (or without) the recorder
            self._active.clear()

    # -- hot path ---------------------------------------------------------------------------------------
    def _record(self, span: ReadableSpan, started: bool = True) -> None:
        get = span_attributes(span).get
        err = get(sc.ERROR_TYPE)
        if err is None and span.status.status_code is _ERROR:
            err = _OTHER_ERROR
        resource = span.resource
        cached = self._resource
        if cached[0] is resource:
            service = cached[1]
        else:
            service = resource.attributes.get(_SERVICE_NAME)
            self._resource = (resource, service)
        key: tuple[Any, ...] = (
            get(sc.OPERATION), get(sc.PROVIDER), get(sc.REQUEST_MODEL), get(sc.RESPONSE_MODEL), err, service,
        )  # fmt: skip
        if self._tag_attrs:
            key += tuple([get(attr) for attr in self._tag_attrs])
        try:
            series = self._series[key]
        except (KeyError, TypeError):
            series = self._new_series(key)

        if started:  # else it started and ended within one drain: the in-flight gauge stays as it was
            series.active(-1)
        series.requests(1)
        start, end = span.start_time, span.end_time
        if start is not None and end is not None:
            series.duration((end - start) / 1e9)
        kids = series.kids
        cost = get(sc.USAGE_COST)
        if cost.__class__ is float and cost >= 0:  # absent when unpriced; NaN fails the comparison
            (kids.get("cost") or self._kid(series, "cost"))(cost)
        if get(sc.PRICING_STATUS) == _UNPRICED:
            (kids.get("unpriced") or self._kid(series, "unpriced"))(1)
        ttfc = get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttfc.__class__ is float and ttfc >= 0:
            (kids.get("ttfc") or self._kid(series, "ttfc"))(ttfc)
        tpoc = get(sc.STREAM_TIME_PER_OUTPUT_CHUNK)
        if tpoc.__class__ is float and tpoc >= 0:
            (kids.get("tpoc") or self._kid(series, "tpoc"))(tpoc)

        inp = _amount(get(sc.USAGE_INPUT_TOKENS))
        out = _amount(get(sc.USAGE_OUTPUT_TOKENS))
        if inp is not None:
            (kids.get("t:input") or self._kid(series, "t:input"))(inp)
        if out is not None:
            (kids.get("t:output") or self._kid(series, "t:output"))(out)
        latest = series.inference  # newest conventions and an inference operation
        for attr, own_kid, usage_kid in _DETAIL_TOKENS:
            value = get(attr)
            if value and value.__class__ is int and value > 0:  # a subset count of 0 adds nothing
                (kids.get(own_kid) or self._kid(series, own_kid))(value)
                if latest:
                    (kids.get(usage_kid) or self._kid(series, usage_kid))(value)
        if latest:
            # The conventions record both for every inference operation, 0 when no usage came back.
            inp = inp or 0
            out = out or 0
            (kids.get("u:input") or self._kid(series, "u:input"))(inp)
            (kids.get("u:output") or self._kid(series, "u:output"))(out)
            (kids.get("o:input") or self._kid(series, "o:input"))(inp)
            (kids.get("o:output") or self._kid(series, "o:output"))(out)
        elif self._legacy is not None:
            if inp is not None:
                (kids.get("h:input") or self._kid(series, "h:input"))(inp)
            if out is not None:
                (kids.get("h:output") or self._kid(series, "h:output"))(out)

    # -- slow path: first call of a label combination ---------------------------------------------------
    def _active_child(self, key: tuple[Any, Any]) -> Writer:
        labels = (self._providers(key[0]), self._operations(key[1]))
        add = gauge_writer(self._own.active.labels(*labels))
        if self._otel is not None:
            add = self._otel.wrap_active(add, labels)
        self._remember(self._active, key, add)
        return add

    def _new_series(self, key: tuple[Any, ...]) -> _Series:
        operation, provider, request_model, response_model, err, service = key[:6]
        op_l = self._operations(operation)
        provider_l = self._providers(provider)
        request_l = self._models(request_model)
        response_l = self._models(response_model)
        err_l = "" if err is None else (self._errors(err) or _OTHER_ERROR)
        sem = (op_l, provider_l, request_l, response_l)
        model_l = response_l or request_l  # the model that answered, else the one asked for
        tags = tuple(bound(value) for bound, value in zip(self._tag_bounds, key[6:], strict=True))
        inference = self._latest is not None and op_l in INFERENCE_OPERATIONS
        active_key = (provider, operation)
        try:
            active = self._active.get(active_key) or self._active_child(active_key)
        except TypeError:
            active = self._active_child(active_key)
        status = "error" if err is not None else "ok"
        requests = counter_writer(self._own.requests.labels(provider_l, model_l, op_l, status, *tags))
        family: Histogram
        if self._latest is not None:
            family = self._latest.duration if inference else self._latest.other_duration
        else:
            assert self._legacy is not None
            family = self._legacy.duration
        duration = histogram_writer(family.labels(*sem, err_l))
        series = _Series(
            sem,
            err_l,
            (provider_l, model_l),
            self._services(service),
            tags,
            inference,
            active,
            duration,
            requests,
        )
        if self._otel is not None:
            series.duration = self._otel.wrap(duration, "duration", series)
            series.requests = self._otel.wrap(requests, "requests", series)
        self._remember(self._series, key, series)
        return series

    def _kid(self, series: _Series, name: str) -> Writer:
        kind, _, token_type = name.partition(":")
        own = self._own
        child: Any
        write = counter_writer
        if name == "cost":
            child = own.cost.labels(*series.own, series.service, *series.tags)
        elif name == "unpriced":
            child = own.unpriced.labels(*series.own)
        elif name == "ttfc":
            metrics = self._latest if self._latest is not None else self._legacy
            assert metrics is not None
            child = metrics.ttfc.labels(*series.sem)
            write = histogram_writer
        elif name == "tpoc":
            metrics = self._latest if self._latest is not None else self._legacy
            assert metrics is not None
            child = metrics.tpoc.labels(*series.sem)
            write = histogram_writer
        elif kind == "t":
            child = own.tokens.labels(*series.own, token_type)
        elif kind == "h":
            assert self._legacy is not None
            child = self._legacy.token_usage.labels(*series.sem, token_type)
            write = histogram_writer
        elif kind == "u":
            assert self._latest is not None
            child = getattr(self._latest, "usage_" + token_type).labels(*series.sem, _MODALITY)
        elif kind == "o":
            assert self._latest is not None
            family = self._latest.op_input if token_type == "input" else self._latest.op_output
            child = family.labels(*series.sem, series.err)
            write = histogram_writer
        else:  # pragma: no cover - programming error
            raise KeyError(name)
        writer = write(child)
        if self._otel is not None:
            writer = self._otel.wrap(writer, name, series)
        series.kids[name] = writer
        return writer

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self._max_cached:
            cache.clear()
        # An unhashable raw value (not from the SDK) just stays on the slow path.
        with contextlib.suppress(TypeError):
            cache[key] = value
