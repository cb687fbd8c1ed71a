"""The GenAI convention metrics and llm-otel's own counters through the OpenTelemetry Metrics API.

For collector-based setups (OTLP metrics to a vendor or a Collector) next to, not instead of, the
Prometheus endpoint. :class:`OTelMetricsRecorder` does not look at spans itself: the Prometheus
processor's fold (``exporters/span_fold.py``, off the application thread) hands it every value it writes,
with the series' bounded label values, so both sinks see the same calls with the same attributes and the
same numbers. Each Prometheus child writer is wrapped once per label combination (``wrap``), so a call
costs one extra ``record``/``add`` per value, on the folding thread.

Instruments (names from opentelemetry-semantic-conventions where it has them; buckets passed as the
conventions' advisory boundaries):

- default names: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``
  (``gen_ai.token.type`` input/output), ``gen_ai.client.operation.time_to_first_chunk``,
  ``gen_ai.client.operation.time_per_output_chunk`` (one observation per streamed call: the mean gap);
- newest names (``latest_semconv``): ``gen_ai.client.inference.duration`` (other operations keep
  ``gen_ai.client.operation.duration``), ``gen_ai.client.inference.time_to_first_chunk`` /
  ``time_per_output_chunk``, the ``gen_ai.client.inference.usage.*`` counters and the
  ``gen_ai.client.inference.operation.input_tokens`` / ``output_tokens`` histograms;
- always: ``llm_otel.cost`` (USD), ``llm_otel.requests``, ``llm_otel.tokens``, ``llm_otel.unpriced_requests``
  (counters), ``llm_otel.active_requests`` (up-down counter), ``llm_otel.metrics.dropped_spans``
  (observable counter; its callback drains the fold first, so a metric reader's collection is exact).

Attribute keys: the GenAI attribute names for the convention instruments (an empty label value is left
out), the Prometheus label names (``provider``, ``model``, ``service``, ``operation``, ``status``,
``type``, tag keys) for llm-otel's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from ... import semconv as sc
from ...version import __version__
from ..prometheus.fastpath import Writer
from ..prometheus.metrics import DURATION_BUCKETS, TOKEN_BUCKETS

try:  # the constants of opentelemetry-semantic-conventions, where it has them
    from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _m

    OPERATION_DURATION: str = _m.GEN_AI_CLIENT_OPERATION_DURATION
    TOKEN_USAGE: str = _m.GEN_AI_CLIENT_TOKEN_USAGE
    TIME_TO_FIRST_CHUNK: str = getattr(
        _m, "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK", "gen_ai.client.operation.time_to_first_chunk"
    )
    TIME_PER_OUTPUT_CHUNK: str = getattr(
        _m, "GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK", "gen_ai.client.operation.time_per_output_chunk"
    )
except ImportError:  # pragma: no cover - an old semantic-conventions package
    OPERATION_DURATION = "gen_ai.client.operation.duration"
    TOKEN_USAGE = "gen_ai.client.token.usage"
    TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
    TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

try:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _ga

    TOKEN_TYPE: str = getattr(_ga, "GEN_AI_TOKEN_TYPE", "gen_ai.token.type")
except ImportError:  # pragma: no cover
    TOKEN_TYPE = "gen_ai.token.type"

#: Newest-convention names (not in the Python package yet).
INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
INFERENCE_TTFC: Final = "gen_ai.client.inference.time_to_first_chunk"
INFERENCE_TPOC: Final = "gen_ai.client.inference.time_per_output_chunk"
INFERENCE_USAGE: Final = "gen_ai.client.inference.usage."  # + input_tokens, cache_read.input_tokens, ...
INFERENCE_OP_TOKENS: Final = "gen_ai.client.inference.operation."  # + input_tokens / output_tokens
TOKEN_MODALITY: Final = "gen_ai.token.modality"
#: llm-otel's own instruments.
COST: Final = "llm_otel.cost"
REQUESTS: Final = "llm_otel.requests"
TOKENS: Final = "llm_otel.tokens"
UNPRICED: Final = "llm_otel.unpriced_requests"
ACTIVE: Final = "llm_otel.active_requests"
DROPPED: Final = "llm_otel.metrics.dropped_spans"

_SEM_KEYS: Final = (sc.OPERATION, sc.PROVIDER, sc.REQUEST_MODEL, sc.RESPONSE_MODEL)
_USAGE_NAMES: Final = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read.input_tokens",
    "cache_write": "cache_write.input_tokens",
    "reasoning": "reasoning.output_tokens",
}
_MODALITY: Final = "unknown"


def _attrs(keys: Iterable[str], values: Iterable[str]) -> dict[str, str]:
    """Attributes from label values; an empty value (Prometheus' "absent") is left out."""
    return {k: v for k, v in zip(keys, values, strict=True) if v}


class OTelMetricsRecorder:
    """Writes every metric value the Prometheus processor folds to OpenTelemetry instruments as well.

    ``drain``: called by the instruments' collection callback before a reader reads (the fold's
    ``drain``); ``dropped``: the fold's count of spans dropped from the metrics so far.
    """

    def __init__(
        self,
        meter_provider: MeterProvider,
        *,
        latest_semconv: bool,
        label_tags: tuple[str, ...] = (),
        drain: Callable[[], None] | None = None,
        dropped: Callable[[], int] | None = None,
    ) -> None:
        self.meter_provider = meter_provider
        self.latest_semconv = latest_semconv
        self.label_tags = label_tags
        self._drain = drain
        self._dropped = dropped
        meter: Meter = meter_provider.get_meter(sc.SCOPE_NAME, __version__)
        dur = list(DURATION_BUCKETS)
        tok = list(TOKEN_BUCKETS)

        def seconds(name: str, doc: str) -> Any:
            return meter.create_histogram(
                name, unit="s", description=doc, explicit_bucket_boundaries_advisory=dur
            )

        self.operation_duration = seconds(OPERATION_DURATION, "GenAI operation duration.")
        if latest_semconv:
            self.inference_duration = seconds(INFERENCE_DURATION, "GenAI inference duration.")
            self.ttfc = seconds(
                INFERENCE_TTFC, "Time from the request to the first chunk of a streamed response."
            )
            self.tpoc = seconds(INFERENCE_TPOC, "Mean time between the chunks of a streamed response.")
            self.usage = {
                kind: meter.create_counter(
                    INFERENCE_USAGE + name, unit="{token}", description=f"{kind} tokens."
                )
                for kind, name in _USAGE_NAMES.items()
            }
            self.op_tokens = {
                kind: meter.create_histogram(
                    INFERENCE_OP_TOKENS + kind + "_tokens",
                    unit="{token}",
                    description=f"{kind.capitalize()} tokens per inference operation.",
                    explicit_bucket_boundaries_advisory=tok,
                )  # fmt: skip
                for kind in ("input", "output")
            }
        else:
            self.token_usage = meter.create_histogram(
                TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=tok,
            )  # fmt: skip
            self.ttfc = seconds(
                TIME_TO_FIRST_CHUNK, "Time from the request to the first chunk of a streamed response."
            )
            self.tpoc = seconds(TIME_PER_OUTPUT_CHUNK, "Mean time between the chunks of a streamed response.")
        self.cost = meter.create_counter(COST, unit="USD", description="Cost of LLM calls in US dollars.")
        self.requests = meter.create_counter(REQUESTS, unit="{request}", description="LLM calls by outcome.")
        self.tokens = meter.create_counter(
            TOKENS, unit="{token}", description="Tokens used by LLM calls, by type."
        )
        self.unpriced = meter.create_counter(
            UNPRICED, unit="{request}", description="LLM calls whose model has no known price."
        )
        self.active = meter.create_up_down_counter(
            ACTIVE, unit="{request}", description="LLM calls in flight."
        )
        meter.create_observable_counter(
            DROPPED, callbacks=[self._observe_dropped], unit="{span}",
            description="Finished calls left out of the metrics because the folding queue was full.",
        )  # fmt: skip

    def _observe_dropped(self, options: CallbackOptions) -> Iterable[Observation]:
        """Runs first in every collection (observable callbacks run before the instruments are read)."""
        if self._drain is not None:
            self._drain()
        yield Observation(self._dropped() if self._dropped is not None else 0)

    # -- wrapping the Prometheus processor's writers (once per label combination) ---------------------
    def wrap_active(self, writer: Writer, labels: tuple[str, str]) -> Writer:
        attrs = _attrs(("provider", "operation"), labels)
        add = self.active.add

        def both(value: float) -> None:
            writer(value)
            add(value, attrs)

        return both

    def wrap(self, writer: Writer, name: str, series: Any) -> Writer:
        """``writer`` plus the OpenTelemetry instrument that the Prometheus child ``name`` stands for."""
        target = self._target(name, series)
        if target is None:
            return writer
        write, attrs = target

        def both(value: float) -> None:
            writer(value)
            write(value, attrs)

        return both

    def _target(self, name: str, series: Any) -> tuple[Callable[..., None], dict[str, str]] | None:
        sem = _attrs(_SEM_KEYS, series.sem)
        own_keys = ("provider", "model")
        kind, _, token_type = name.partition(":")
        if name == "duration":
            attrs = {**sem, sc.ERROR_TYPE: series.err} if series.err else sem
            if self.latest_semconv and series.inference:
                return self.inference_duration.record, attrs
            return self.operation_duration.record, attrs
        if name == "requests":
            status = "error" if series.err else "ok"
            keys = (*own_keys, "operation", "status", *self.label_tags)
            values = (*series.own, series.sem[0], status, *series.tags)
            return self.requests.add, _attrs(keys, values)
        if name == "cost":
            keys = (*own_keys, "service", *self.label_tags)
            return self.cost.add, _attrs(keys, (*series.own, series.service, *series.tags))
        if name == "unpriced":
            return self.unpriced.add, _attrs(own_keys, series.own)
        if name == "ttfc":
            return self.ttfc.record, sem
        if name == "tpoc":
            return self.tpoc.record, sem
        if kind == "t":
            return self.tokens.add, _attrs((*own_keys, "type"), (*series.own, token_type))
        if kind == "h":
            return self.token_usage.record, {**sem, TOKEN_TYPE: token_type}
        if kind == "u":
            return self.usage[token_type].add, {**sem, TOKEN_MODALITY: _MODALITY}
        if kind == "o":
            attrs = {**sem, sc.ERROR_TYPE: series.err} if series.err else sem
            return self.op_tokens[token_type].record, attrs
        return None
