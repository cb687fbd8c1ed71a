"""Settings of ``instrument()``: keyword wins over environment variable, every value validated once.

A bad value raises :class:`llm_otel.ConfigError` naming the setting and the value at start-up, so that
nothing can fail later inside a user's LLM call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .content import CaptureMode, parse_mode
from .errors import ConfigError

KNOWN_INSTRUMENTORS = ("openai", "ollama")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET: Any = object()


def parse_bool(setting: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(setting, value, "expected true or false")


def parse_url(setting: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(setting, value, "expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(setting, value, str(exc)) from None
    return value.rstrip("/")


def parse_port(setting: str, value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(setting, value, "expected a port number (0 disables)") from None
    if not 0 <= port <= 65535:
        raise ConfigError(setting, value, "expected a port number between 0 and 65535")
    return port


def parse_provider_hosts(value: Any) -> dict[Any, str]:
    """``"host=provider,host:port=provider"`` or a mapping -> {host or (host, port): provider}."""
    if not value:
        return {}
    items: list[tuple[str, str]]
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for entry in str(value).split(","):
            if not entry.strip():
                continue
            if "=" not in entry:
                raise ConfigError("provider_hosts", value, f"entry {entry!r} is not host[:port]=provider")
            host, provider = entry.split("=", 1)
            items.append((host.strip(), provider.strip()))
    out: dict[Any, str] = {}
    for host, provider in items:
        if not host or not provider:
            raise ConfigError("provider_hosts", value, "empty host or provider")
        if ":" in host and not host.startswith("["):
            name, port = host.rsplit(":", 1)
            out[(name, parse_port("provider_hosts", port))] = provider
        else:
            out[host] = provider
    return out


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


@dataclass
class Settings:
    service_name: str | None = None
    otlp_endpoint: str | None = None
    otlp_protocol: str = "http/protobuf"
    otlp_from_env: bool = False
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    cost_api_url: str | None = None
    cost_api_key: str | None = None
    organization_id: str | None = None
    spool_path: str | None = None
    capture_content: CaptureMode = CaptureMode.NO_CONTENT
    prices: Any = None
    instrumentors: tuple[str, ...] = KNOWN_INSTRUMENTORS
    model_aliases: dict[str, str] = field(default_factory=dict)
    provider_hosts: dict[Any, str] = field(default_factory=dict)
    label_tags: tuple[str, ...] = ()
    max_model_labels: int = 200
    inject_stream_usage: bool = True

    @classmethod
    def resolve(
        cls,
        *,
        service_name: str | None = None,
        otlp_endpoint: str | None = None,
        prometheus_port: Any = _UNSET,
        prometheus_host: str | None = None,
        cost_api_url: str | None = None,
        cost_api_key: str | None = None,
        organization_id: str | None = None,
        spool_path: str | os.PathLike[str] | None = None,
        capture_content: Any = None,
        prices: Any = None,
        instrumentors: Any = None,
        model_aliases: Mapping[str, str] | None = None,
        provider_hosts: Any = None,
        label_tags: Any = None,
        max_model_labels: int | None = None,
        inject_stream_usage: bool | None = None,
    ) -> Settings:
        s = cls()
        s.service_name = service_name or _env("OTEL_SERVICE_NAME")

        protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol is not None:
            if protocol not in ("http/protobuf", "grpc"):
                raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "expected http/protobuf or grpc")
            s.otlp_protocol = protocol
        if otlp_endpoint:
            s.otlp_endpoint = parse_url("otlp_endpoint", otlp_endpoint)
        else:
            traces = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            generic = _env("OTEL_EXPORTER_OTLP_ENDPOINT")
            if traces:
                s.otlp_endpoint = parse_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
                s.otlp_from_env = True
            elif generic:
                s.otlp_endpoint = parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", generic)
                s.otlp_from_env = True
        if (
            s.otlp_endpoint
            and s.otlp_protocol == "http/protobuf"
            and not (s.otlp_from_env and _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            and not s.otlp_endpoint.endswith("/v1/traces")
        ):
            s.otlp_endpoint += "/v1/traces"

        if prometheus_port is _UNSET:
            env_port = _env("OTEL_EXPORTER_PROMETHEUS_PORT")
            s.prometheus_port = parse_port("OTEL_EXPORTER_PROMETHEUS_PORT", env_port) if env_port else 9464
        else:
            s.prometheus_port = parse_port("prometheus_port", prometheus_port)
        host = prometheus_host or _env("OTEL_EXPORTER_PROMETHEUS_HOST") or "127.0.0.1"
        if not host or any(c.isspace() for c in host) or "/" in host:
            raise ConfigError("prometheus_host", host, "expected a host name or IP address")
        s.prometheus_host = host

        url = cost_api_url or _env("LLM_OTEL_COST_API_URL")
        s.cost_api_url = parse_url("cost_api_url", url) if url else None
        s.cost_api_key = cost_api_key or _env("LLM_OTEL_COST_API_KEY")
        s.organization_id = organization_id or _env("LLM_OTEL_ORGANIZATION_ID")
        spool = spool_path or _env("LLM_OTEL_SPOOL_PATH")
        s.spool_path = str(Path(spool).expanduser()) if spool else None

        s.capture_content = parse_mode(capture_content)
        s.prices = prices if prices is not None else _env("LLM_OTEL_PRICES")

        names = instrumentors if instrumentors is not None else _env("LLM_OTEL_INSTRUMENTORS")
        if names is not None:
            listed = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            listed = [n for n in listed if n]
            for name in listed:
                if name not in KNOWN_INSTRUMENTORS:
                    raise ConfigError(
                        "instrumentors",
                        names,
                        f"unknown instrumentor {name!r}; known: {', '.join(KNOWN_INSTRUMENTORS)}",
                    )
            s.instrumentors = tuple(listed)

        if model_aliases is not None:
            if not isinstance(model_aliases, Mapping):
                raise ConfigError("model_aliases", model_aliases, "expected a mapping deployment -> model")
            s.model_aliases = {str(k): str(v) for k, v in model_aliases.items()}
        s.provider_hosts = parse_provider_hosts(
            provider_hosts if provider_hosts is not None else _env("LLM_OTEL_PROVIDER_HOSTS")
        )
        tags = label_tags if label_tags is not None else _env("LLM_OTEL_PROMETHEUS_LABEL_TAGS")
        if tags:
            listed_tags = [t.strip() for t in tags.split(",")] if isinstance(tags, str) else list(tags)
            for tag in listed_tags:
                if not str(tag).isidentifier():
                    raise ConfigError("label_tags", tags, f"tag {tag!r} is not an identifier")
            s.label_tags = tuple(str(t) for t in listed_tags if t)
        cap = max_model_labels if max_model_labels is not None else _env("LLM_OTEL_MAX_MODEL_LABELS")
        if cap is not None:
            try:
                s.max_model_labels = int(cap)
            except (TypeError, ValueError):
                raise ConfigError("max_model_labels", cap, "expected a positive integer") from None
            if s.max_model_labels < 1:
                raise ConfigError("max_model_labels", cap, "expected a positive integer")
        s.inject_stream_usage = parse_bool(
            "inject_stream_usage",
            inject_stream_usage if inject_stream_usage is not None else _env("LLM_OTEL_STREAM_USAGE"),
            True,
        )
        return s
