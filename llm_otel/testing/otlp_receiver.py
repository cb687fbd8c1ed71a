"""Minimal real OTLP trace and metrics receivers (HTTP/protobuf and gRPC) for tests and the demo.

Jaeger and the OpenTelemetry Collector cannot be installed on this project's machines; these receivers
speak the same OTLP wire protocol Jaeger ingests on 4318/4317, decode every span and keep it for
assertions (``receiver.spans``: dicts with name, trace/span ids, attributes, resource attributes).
Metrics (``/v1/metrics``, the MetricsService) are decoded too: ``receiver.metric_exports`` holds one list
of data points per export request (see :func:`decode_metrics`), ``receiver.latest_metrics()`` the newest.

As a stand-in for Jaeger on 127.0.0.1, printing one line per span it receives::

    python -m llm_otel.testing.otlp_receiver [--port 4318] [--grpc-port 4317] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TextIO

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def decode(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "name": s.name,
                        "scope": ss.scope.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "kind": s.kind,
                        "status_code": s.status.code,
                        "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                        "events": [e.name for e in s.events],
                        "resource": resource,
                    }
                )
    return out


def decode_metrics(request: ExportMetricsServiceRequest) -> list[dict[str, Any]]:
    """One dict per data point: ``name``, ``unit``, ``kind`` (sum, gauge, histogram), ``attributes``,
    ``scope``, ``resource`` and the values: ``value`` (sum, gauge; ``monotonic`` for sums) or ``count``,
    ``sum``, ``bucket_counts``, ``bounds`` (histogram)."""
    out: list[dict[str, Any]] = []
    for rm in request.resource_metrics:
        resource = {kv.key: _value(kv.value) for kv in rm.resource.attributes}
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                base = {
                    "name": m.name,
                    "unit": m.unit,
                    "kind": kind,
                    "scope": sm.scope.name,
                    "resource": resource,
                }
                data = getattr(m, kind) if kind else None
                for p in getattr(data, "data_points", ()):
                    point = {**base, "attributes": {kv.key: _value(kv.value) for kv in p.attributes}}
                    if kind == "histogram":
                        point.update(
                            count=p.count, sum=p.sum, bucket_counts=list(p.bucket_counts),
                            bounds=list(p.explicit_bounds),
                        )  # fmt: skip
                    else:
                        number = p.WhichOneof("value")
                        point["value"] = getattr(p, number) if number else None
                        if kind == "sum":
                            point["monotonic"] = getattr(data, "is_monotonic", None)
                    out.append(point)
    return out


class _Store:
    def __init__(self) -> None:
        #: Every export request's metric data points, in arrival order (cumulative exports: use the last).
        self.metric_exports: list[list[dict[str, Any]]] = []
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        #: Called (on the receiving thread) with each request's decoded spans, after they are stored.
        self.on_spans: Callable[[list[dict[str, Any]]], None] | None = None

    def add(self, spans: list[dict[str, Any]]) -> None:
        with self.arrived:
            self.spans.extend(spans)
            self.arrived.notify_all()
        if self.on_spans is not None:
            self.on_spans(spans)

    def add_metrics(self, points: list[dict[str, Any]]) -> None:
        with self.arrived:
            self.metric_exports.append(points)
            self.arrived.notify_all()

    def latest_metrics(self) -> list[dict[str, Any]]:
        """The data points of the newest metrics export ([] when none arrived)."""
        with self.lock:
            return list(self.metric_exports[-1]) if self.metric_exports else []

    def wait_for_metrics(self, exports: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``exports`` metric export requests arrived; the newest one's data points."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.metric_exports) >= exports, timeout)
            return list(self.metric_exports[-1]) if self.metric_exports else []

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.spans) >= count, timeout)
            return list(self.spans)


class OTLPHttpReceiver(_Store):
    """OTLP/HTTP protobuf on 127.0.0.1 (``endpoint`` is the base URL; spans are POSTed to /v1/traces,
    metrics to /v1/metrics)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.rstrip("/").endswith("/v1/metrics"):
                    metrics_request = ExportMetricsServiceRequest()
                    metrics_request.ParseFromString(body)
                    store.add_metrics(decode_metrics(metrics_request))
                    out = ExportMetricsServiceResponse().SerializeToString()
                else:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    store.add(decode(request))
                    out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OTLPHttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()


class OTLPGrpcReceiver(_Store):
    """OTLP/gRPC on 127.0.0.1 (needs grpcio, which opentelemetry-exporter-otlp installs)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        store = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC API
                store.add(decode(request))
                return ExportTraceServiceResponse()

        class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC API
                store.add_metrics(decode_metrics(request))
                return ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsService(), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPGrpcReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)


# -- python -m llm_otel.testing.otlp_receiver ------------------------------------------------------------

_SUMMARY = (
    ("gen_ai.provider.name", "provider"),
    ("gen_ai.usage.input_tokens", "in"),
    ("gen_ai.usage.output_tokens", "out"),
    ("gen_ai.usage.cost", "cost_usd"),
    ("llm_otel.pricing.status", "pricing"),
    ("error.type", "error"),
)


def summary(span: dict[str, Any]) -> str:
    """One line for a span: service, name, trace id and, for a GenAI span, its tokens and cost."""
    attrs = span["attributes"]
    fields = [f"{label}={attrs[key]}" for key, label in _SUMMARY if key in attrs]
    service = span["resource"].get("service.name", "?")
    return " ".join([f"[{service}]", span["name"], f"trace={span['trace_id']}", *fields])


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_otel.testing.otlp_receiver",
        description="OTLP trace receiver on 127.0.0.1 printing every span it receives (a Jaeger stand-in).",
    )
    parser.add_argument("--port", type=int, default=4318, help="OTLP/HTTP port (default 4318; 0: any free)")
    parser.add_argument("--grpc-port", type=int, help="also receive OTLP/gRPC on this port (e.g. 4317)")
    parser.add_argument("--json", action="store_true", help="print each span as one JSON object per line")
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    lock = threading.Lock()

    def show(spans: list[dict[str, Any]]) -> None:
        with lock:
            for span in spans:
                print(json.dumps(span, default=str) if args.json else summary(span), file=stream, flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    receivers: list[OTLPHttpReceiver | OTLPGrpcReceiver] = []
    try:
        http = OTLPHttpReceiver(args.port)
        receivers.append(http)
        if args.grpc_port is not None:
            receivers.append(OTLPGrpcReceiver(args.grpc_port))
    except (OSError, RuntimeError) as exc:  # a port in use (grpcio raises RuntimeError)
        for receiver in receivers:
            receiver.stop()
        print(f"otlp_receiver: cannot listen: {exc}", file=sys.stderr)
        return 1
    for receiver in receivers:
        receiver.on_spans = show
        receiver.start()
    endpoints = ", ".join(
        f"{'gRPC' if isinstance(r, OTLPGrpcReceiver) else 'HTTP'} {r.endpoint}" for r in receivers
    )
    print(f"OTLP receiver listening: {endpoints}", file=stream, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for receiver in receivers:
            receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
