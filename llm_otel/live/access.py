"""Who may see the live view: loopback hosts freely, anything else only with a bearer token.

The live view shows which models run, for whom (attribution tags) and what they cost, so it follows the
``/metrics`` endpoint's default of 127.0.0.1 and goes one step further: on a host that is not loopback
(``0.0.0.0``, a LAN address, a host name) ``/live`` is served only when ``live_token`` is set, and then
only to requests that present it. A token set on a loopback host is enforced too. Without a token, a
loopback endpoint answers only requests whose ``Host`` names a loopback host (a web page that rebinds its
own DNS name to 127.0.0.1 cannot read it).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Final

logger = logging.getLogger("llm_otel")

#: Cookie set by ``GET /live?token=...`` so the page's EventSource (which cannot send headers) is let in.
COOKIE_NAME: Final = "llm_otel_live_token"
_warned: set[str] = set()


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8, ``::1`` (and IPv4-mapped loopback). Other names count as remote."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def host_is_loopback(host_header: str | None) -> bool:
    """A ``Host`` header naming a loopback host (``127.0.0.1:9464``, ``[::1]:9464``, ``localhost``); an
    absent header (HTTP/1.0) counts as loopback, the connection itself being local."""
    if not host_header:
        return True
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return is_loopback(host)


@dataclass(frozen=True)
class Access:
    """``enabled``: serve /live at all; ``token``: the bearer token requests must present (None: none)."""

    enabled: bool
    token: str | None
    reason: str


def decide(host: str, token: str | None) -> Access:
    """The access rule for the endpoint served on ``host`` (warns once when it leaves /live off)."""
    if token:
        return Access(True, token, "token")
    if is_loopback(host):
        return Access(True, None, "loopback")
    if host not in _warned:
        _warned.add(host)
        logger.warning(
            "llm-otel: the live view (/live) is off: the metrics endpoint listens on %s, which is not a "
            "loopback address, and no live_token (LLM_OTEL_LIVE_TOKEN) is set",
            host,
        )
    return Access(False, None, f"{host} is not a loopback address and no live_token is set")


def presented_token(authorization: str | None, cookie: str | None) -> str | None:
    """The token a request carries: ``Authorization: Bearer <token>``, else the live view's cookie."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if cookie:
        try:
            jar = SimpleCookie(cookie)
        except CookieError:
            return None
        morsel = jar.get(COOKIE_NAME)
        if morsel is not None and morsel.value:
            return morsel.value
    return None


def token_matches(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison; True when no token is expected."""
    if not expected:
        return True
    if not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))
