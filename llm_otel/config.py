"""Every setting of llm-otel, declared once: keyword, environment variables, default and validation.

``instrument(**options)`` and an instrumentor used on its own (``OpenAIInstrumentor().instrument()``,
``opentelemetry-instrument``) both resolve through :meth:`Settings.resolve`, so the same environment gives
the same behaviour either way. A keyword wins over its environment variables; an unknown keyword or a bad
value raises :class:`llm_otel.ConfigError` naming the setting, at start-up, never inside an LLM call.
This is the only module that reads the process environment.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .content import CaptureMode, parse_mode
from .errors import ConfigError

KNOWN_INSTRUMENTORS = ("openai", "ollama")
#: ``OTEL_SEMCONV_STABILITY_OPT_IN`` value that switches metrics to the newest GenAI convention names.
LATEST_SEMCONV_OPT_IN = "gen_ai_latest_experimental"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name: str) -> str | None:
    """A non-empty environment variable, else None."""
    value = os.environ.get(name)
    return value if value else None


# -- value parsers: (setting name as the user wrote it, raw value) -> validated value ----------------------


def parse_bool(setting: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(setting, value, "expected true or false")


def _need_str(setting: str, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(setting, value, f"expected {what} (a string)")
    return value


def _integral(setting: str, value: Any, what: str) -> int:
    """An int, or an integral float or numeric string; never a bool (True is not port 1)."""
    if isinstance(value, bool):
        raise ConfigError(setting, value, f"expected {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(setting, value, f"expected {what}")


def parse_url(setting: str, value: Any) -> str:
    text = _need_str(setting, value, "an http:// or https:// URL").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(setting, value, "expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(setting, value, str(exc)) from None
    return text.rstrip("/")


def parse_port(setting: str, value: Any) -> int:
    if value is None or value == "":
        return 0
    port = _integral(setting, value, "a port number (0 disables)")
    if not 0 <= port <= 65535:
        raise ConfigError(setting, value, "expected a port number between 0 and 65535")
    return port


def parse_host(setting: str, value: Any) -> str:
    host = _need_str(setting, value, "a host name or IP address").strip()
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ConfigError(setting, value, "expected a host name or IP address")
    return host


def int_at_least(minimum: int, what: str) -> Callable[[str, Any], int]:
    """A parser of whole numbers >= ``minimum`` (integral floats and numeric strings accepted)."""

    def parse(setting: str, value: Any) -> int:
        number = _integral(setting, value, what)
        if number < minimum:
            raise ConfigError(setting, value, f"expected {what}")
        return number

    return parse


parse_positive_int = int_at_least(1, "a positive integer")
parse_content_max_chars = int_at_least(0, "a number of characters (0 or more)")


def parse_text(setting: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(setting, value, "expected a non-empty string (leave the setting out for none)")
    return value


def parse_path(setting: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(setting, value, "expected a file path")
    return str(Path(value).expanduser())


def parse_otlp_protocol(setting: str, value: Any) -> str:
    if isinstance(value, str):
        value = value.strip()
    if value not in ("http/protobuf", "grpc"):
        raise ConfigError(setting, value, "expected http/protobuf or grpc")
    return str(value)


#: ``OTEL_METRICS_EXPORTER`` values llm-otel acts on (``prometheus``: its own endpoint already serves them).
METRICS_EXPORTERS = ("otlp", "console", "prometheus", "none")


def parse_metrics_exporter(setting: str, value: Any) -> tuple[str, ...]:
    """A comma-separated list of ``otlp``, ``console``, ``prometheus``, ``none`` (the standard variable)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(
            setting, value, f"expected a comma-separated list of {', '.join(METRICS_EXPORTERS)}"
        )
    names = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    for name in names:
        if name not in METRICS_EXPORTERS:
            raise ConfigError(
                setting, value, f"unknown metrics exporter {name!r}; known: {', '.join(METRICS_EXPORTERS)}"
            )
    return names


def parse_capture(setting: str, value: Any) -> CaptureMode:
    try:
        return parse_mode(value)
    except ValueError as exc:
        raise ConfigError(setting, value, str(exc)) from None


def _names(setting: str, value: Any, what: str) -> list[str]:
    """A comma-separated string or a list/tuple of strings."""
    if isinstance(value, str):
        return [n.strip() for n in value.split(",")]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(n, str) for n in value):
        return [n.strip() for n in value]
    raise ConfigError(setting, value, f"expected {what}: a comma-separated string or a list of strings")


def parse_instrumentors(setting: str, value: Any) -> tuple[str, ...]:
    listed = [n for n in _names(setting, value, "instrumentor names") if n]
    for name in listed:
        if name not in KNOWN_INSTRUMENTORS:
            raise ConfigError(
                setting, value, f"unknown instrumentor {name!r}; known: {', '.join(KNOWN_INSTRUMENTORS)}"
            )
    return tuple(listed)


def parse_model_aliases(setting: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(setting, value, "expected a mapping deployment -> model")
    return {str(k): str(v) for k, v in value.items()}


def parse_provider_hosts(setting: str, value: Any) -> dict[Any, str]:
    """``"host=provider,host:port=provider"`` or a mapping -> {host or (host, port): provider}."""
    if not isinstance(value, (str, Mapping)):
        raise ConfigError(setting, value, "expected 'host[:port]=provider,...' or a mapping")
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
                raise ConfigError(setting, value, f"entry {entry!r} is not host[:port]=provider")
            host, provider = entry.split("=", 1)
            items.append((host.strip(), provider.strip()))
    out: dict[Any, str] = {}
    for host, provider in items:
        if not host or not provider:
            raise ConfigError(setting, value, "empty host or provider")
        if ":" in host and not host.startswith("["):
            name, port = host.rsplit(":", 1)
            out[(name, parse_port(setting, port))] = provider
        else:
            out[host] = provider
    return out


def parse_label_tags(setting: str, value: Any) -> tuple[str, ...]:
    listed = _names(setting, value, "tag names")
    for tag in listed:
        if tag and not tag.isidentifier():
            raise ConfigError(setting, value, f"tag {tag!r} is not an identifier")
    return tuple(t for t in listed if t)


def parse_seconds(setting: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(setting, value, "expected a number of seconds (0 or more)") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ConfigError(setting, value, "expected a number of seconds (0 or more)")
    return number


def parse_opt_in(setting: str, value: Any) -> bool:
    """``OTEL_SEMCONV_STABILITY_OPT_IN`` is a comma-separated list; a bool keyword is taken as it is."""
    if isinstance(value, bool):
        return value
    return LATEST_SEMCONV_OPT_IN in {part.strip() for part in str(value).split(",")}


def _keep(setting: str, value: Any) -> Any:
    """Validated later by its consumer (the price table loads the file and names this setting)."""
    return value


def option(default: Any, *env_vars: str, parse: Callable[[str, Any], Any], factory: bool = False) -> Any:
    """Declare one setting: its default, the environment variables read for it (first set wins) and its
    parser. The field name is the ``instrument()`` keyword."""
    meta = {"env": env_vars, "parse": parse}
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


# -- defaults that depend on the platform -------------------------------------------------------------------


def default_spool_dir() -> Path:
    """``$XDG_DATA_HOME/llm-otel`` (else ``~/.local/share/llm-otel``; on Windows
    ``%LOCALAPPDATA%\\llm-otel``)."""
    local = env("LOCALAPPDATA")
    if os.name == "nt" and local:
        base = Path(local)
    else:
        xdg = env("XDG_DATA_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "llm-otel"


def default_spool_path(url: str, organization_id: str | None = None) -> str:
    """One spool per destination: ``<default_spool_dir()>/spool-<12 hex digits>.sqlite``, the digits being
    the start of the SHA-256 of the cost API URL and the organization id, so two applications sending to
    different cost APIs (or organizations) never share a file by default."""
    digest = hashlib.sha256(f"{url}\n{organization_id or ''}".encode()).hexdigest()[:12]
    return str(default_spool_dir() / f"spool-{digest}.sqlite")


def prometheus_multiprocess_dir() -> str | None:
    """prometheus-client's multiprocess directory, if that mode is on (read where metrics are served, which
    may be a pre-fork master that never calls ``instrument()``)."""
    return env("PROMETHEUS_MULTIPROC_DIR") or env("prometheus_multiproc_dir")


def _check_multiprocess_dir() -> None:
    """prometheus-client's multiprocess mode needs an existing directory; say so now, not at first scrape."""
    for var in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        path = env(var)
        if path is not None:
            if not os.path.isdir(path):
                raise ConfigError(
                    var, path, "expected an existing directory (prometheus-client multiprocess mode)"
                )
            return


def latest_semconv_from_env() -> bool:
    raw = env("OTEL_SEMCONV_STABILITY_OPT_IN")
    return parse_opt_in("OTEL_SEMCONV_STABILITY_OPT_IN", raw) if raw else False


@dataclass
class Settings:
    """Resolved settings. Field name = ``instrument()`` keyword; see :func:`option` for the rest."""

    service_name: str | None = option(None, "OTEL_SERVICE_NAME", parse=parse_text)
    otlp_endpoint: str | None = option(
        None, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", parse=parse_url
    )
    otlp_protocol: str = option(
        "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        parse=parse_otlp_protocol,
    )
    prometheus_host: str = option("127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_HOST", parse=parse_host)
    prometheus_port: int = option(9464, "OTEL_EXPORTER_PROMETHEUS_PORT", parse=parse_port)
    cost_api_url: str | None = option(None, "LLM_OTEL_COST_API_URL", parse=parse_url)
    cost_api_key: str | None = option(None, "LLM_OTEL_COST_API_KEY", parse=parse_text)
    organization_id: str | None = option(None, "LLM_OTEL_ORGANIZATION_ID", parse=parse_text)
    spool_path: str | None = option(None, "LLM_OTEL_SPOOL_PATH", parse=parse_path)
    capture_content: CaptureMode = option(
        CaptureMode.NO_CONTENT, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", parse=parse_capture
    )
    content_max_chars: int = option(16_384, "LLM_OTEL_CONTENT_MAX_CHARS", parse=parse_content_max_chars)
    content_max_total_chars: int = option(
        131_072, "LLM_OTEL_CONTENT_MAX_TOTAL_CHARS", parse=parse_content_max_chars
    )
    prices: Any = option(None, "LLM_OTEL_PRICES", parse=_keep)
    instrumentors: tuple[str, ...] = option(
        KNOWN_INSTRUMENTORS, "LLM_OTEL_INSTRUMENTORS", parse=parse_instrumentors
    )
    model_aliases: dict[str, str] = option(dict, parse=parse_model_aliases, factory=True)
    provider_hosts: dict[Any, str] = option(
        dict, "LLM_OTEL_PROVIDER_HOSTS", parse=parse_provider_hosts, factory=True
    )
    label_tags: tuple[str, ...] = option((), "LLM_OTEL_PROMETHEUS_LABEL_TAGS", parse=parse_label_tags)
    max_model_labels: int = option(200, "LLM_OTEL_MAX_MODEL_LABELS", parse=parse_positive_int)
    inject_stream_usage: bool = option(True, "LLM_OTEL_STREAM_USAGE", parse=parse_bool)
    latest_semconv: bool = option(False, "OTEL_SEMCONV_STABILITY_OPT_IN", parse=parse_opt_in)
    #: Metrics through the OpenTelemetry Metrics API too, when there is an SDK MeterProvider (the
    #: application's global one, or one llm-otel creates because ``metrics_exporter`` asks for it).
    otel_metrics: bool = option(True, "LLM_OTEL_OTEL_METRICS", parse=parse_bool)
    metrics_exporter: tuple[str, ...] = option((), "OTEL_METRICS_EXPORTER", parse=parse_metrics_exporter)
    otlp_metrics_endpoint: str | None = option(
        None, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", parse=parse_url
    )
    otlp_metrics_protocol: str = option(
        "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        parse=parse_otlp_protocol,
    )
    #: Longest time ``shutdown()`` (and so interpreter exit) waits for every exporter together, in seconds.
    shutdown_timeout: float = option(3.0, "LLM_OTEL_SHUTDOWN_TIMEOUT", parse=parse_seconds)
    #: The live view (/live on the metrics endpoint, llm_otel.live); off costs nothing per call.
    live: bool = option(True, "LLM_OTEL_LIVE", parse=parse_bool)
    #: Bearer token for /live; required (else /live stays off) when prometheus_host is not loopback.
    live_token: str | None = option(None, "LLM_OTEL_LIVE_TOKEN", parse=parse_text)
    #: Where each value came from: the keyword, or the environment variable's name (absent = default).
    sources: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The keywords ``instrument()`` accepts besides ``tracer_provider``."""
        return tuple(f.name for f in fields(cls) if "parse" in f.metadata)

    @classmethod
    def resolve(cls, **options: Any) -> Settings:
        """Keyword (if not None) > first set environment variable > default, each value validated."""
        known = {f.name: f for f in fields(cls) if "parse" in f.metadata}
        for name in options:
            if name not in known:
                raise ConfigError(name, options[name], f"unknown option; known: {', '.join(known)}")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, f in known.items():
            given = options.get(name)
            if given is not None:
                values[name] = f.metadata["parse"](name, given)
                sources[name] = name
                continue
            for var in f.metadata["env"]:
                raw = env(var)
                if raw is not None:
                    values[name] = f.metadata["parse"](var, raw)
                    sources[name] = var
                    break
        settings = cls(**values, sources=sources)
        settings._finish()
        _check_multiprocess_dir()
        return settings

    def _finish(self) -> None:
        """Rules that tie settings together."""
        # OTLP/HTTP: a base endpoint gets the traces path; the signal-specific variable is used as given.
        if (
            self.otlp_endpoint
            and self.otlp_protocol == "http/protobuf"
            and self.sources.get("otlp_endpoint") != "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            and not self.otlp_endpoint.endswith("/v1/traces")
        ):
            self.otlp_endpoint += "/v1/traces"
        if (
            self.otlp_metrics_endpoint
            and self.otlp_metrics_protocol == "http/protobuf"
            and self.sources.get("otlp_metrics_endpoint") != "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
            and not self.otlp_metrics_endpoint.endswith("/v1/metrics")
        ):
            self.otlp_metrics_endpoint = self.otlp_metrics_endpoint.rstrip("/") + "/v1/metrics"
        if self.cost_api_url and self.spool_path is None:
            self.spool_path = default_spool_path(self.cost_api_url, self.organization_id)

    @property
    def otlp_from_env(self) -> bool:
        """The endpoint came from the standard OTEL_* variables (an app's own SDK setup may own them)."""
        return self.sources.get("otlp_endpoint", "").startswith("OTEL_")
