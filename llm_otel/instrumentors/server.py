"""Which server a client talks to: ``server.address``/``server.port`` and the GenAI provider name.

Read from the client's base URL (``instance._client._base_url`` for openai resources, ``instance._client
.base_url`` for ollama's httpx client), shared by both instrumentors. The provider is ``azure.ai.openai``
for Azure clients, else what ``provider_hosts`` maps the host (or host and port) to, else ``ollama`` on
Ollama's default port, else ``openai``. Results are cached per base URL object: parsing the URL costs more
than the rest of the request side, and a client's URL rarely changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import semconv as sc

if TYPE_CHECKING:
    from .call import Telemetry

OLLAMA_DEFAULT_PORT = 11434

#: (id(base_url), id(provider_hosts)) -> (base_url, provider_hosts, provider, attributes).
_SERVERS: dict[tuple[int, int], tuple[Any, Any, str, dict[str, Any]]] = {}
_MAX_SERVERS = 1024


def server_and_provider(
    instance: Any, telemetry: Telemetry, azure_types: tuple[type, ...]
) -> tuple[str, dict[str, Any]]:
    """Provider name and (a fresh dict of) server.address/port attributes for the resource's client."""
    client = getattr(instance, "_client", None)
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    hosts = telemetry.provider_hosts
    key = (id(url), id(hosts))
    hit = _SERVERS.get(key)
    if hit is not None and hit[0] is url and hit[1] is hosts and url is not None:
        return hit[2], dict(hit[3])
    provider, attrs = _resolve_server(client, url, hosts, azure_types)
    if url is not None:
        if len(_SERVERS) >= _MAX_SERVERS:
            _SERVERS.clear()
        _SERVERS[key] = (url, hosts, provider, attrs)
    return provider, dict(attrs)


def _resolve_server(
    client: Any, url: Any, hosts: dict[Any, str], azure_types: tuple[type, ...]
) -> tuple[str, dict[str, Any]]:
    attrs: dict[str, Any] = {}
    host = port = None
    if url is not None:
        host = getattr(url, "host", None)
        port = getattr(url, "port", None)
        if host:
            attrs[sc.SERVER_ADDRESS] = host
            if port is None:
                scheme = getattr(url, "scheme", "https")
                port = 443 if scheme == "https" else 80
            if port != 443:
                attrs[sc.SERVER_PORT] = port
    if azure_types and isinstance(client, azure_types):
        return sc.PROVIDER_AZURE_OPENAI, attrs
    if hosts and host:
        mapped = hosts.get((host, port)) or hosts.get(host)
        if mapped:
            return mapped, attrs
    if port == OLLAMA_DEFAULT_PORT:
        return sc.PROVIDER_OLLAMA, attrs
    return sc.PROVIDER_OPENAI, attrs
