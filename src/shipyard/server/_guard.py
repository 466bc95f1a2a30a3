"""What a browser on another site could make the server do: nothing (ASGI middleware).

API keys are bearer headers, which a browser never adds on its own, so a server with keys is safe
from other websites by construction. A server without keys (open on loopback) is not: any page the
user visits can send it requests. Three checks close that, on every request, with or without keys:

- `Host` must be on the allow-list (DNS rebinding: a hostile name resolved to 127.0.0.1 sends
  `Host: evil.example`). Allowed: IP literals (a rebinding attack needs a name it controls, so its
  Host is never an IP), `localhost` and `*.localhost`, the address the server is bound to, and the
  names in `server.allowed_hosts` (exact, or `*.example.com` for any subdomain).
- A write (POST, PUT, PATCH, DELETE) that carries a body or a Content-Type must be
  `application/json` (or `*+json`): browsers send `text/plain`, form and multipart bodies to other
  sites without asking, but not JSON. Otherwise 415.
- A write from a browser page must come from the server's own origin: an `Origin` that differs from
  `Host`, `Origin: null`, or `Sec-Fetch-Site` other than `same-origin` / `none` is refused (403).

Besides, a server with no keys answers only connections that arrived on a loopback address, even if
it was bound wider by mistake (`open` tells it whether it is in that mode).

Errors are the JSON shape of `error_response`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.server._http import error_response

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values of the server's own pages / typed URLs


@functools.lru_cache(maxsize=256)  # the guard asks it of the bound address on every request
def is_loopback(host: str) -> bool:
    """True for `localhost`, `*.localhost` and loopback IPs (`127.0.0.0/8`, `::1`, bracketed or not)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def split_host(value: str) -> str:
    """The host name of a `Host` header value (`name:port`, `[v6]:port`), lower case, no port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value  # a bare name, or an unbracketed IPv6 address


class HostAllowList:
    """The Host names a server answers (see the module's docstring).

    Args:
        bind_host: the address the server listens on (`0.0.0.0` and `::` add nothing).
        names: `server.allowed_hosts`: exact names, or `*.example.com`.
    """

    def __init__(self, bind_host: str, names: Iterable[str] = ()) -> None:
        self.exact = {n.lower().rstrip(".") for n in names if not n.startswith("*.")}
        self.suffixes = tuple(n.lower().rstrip(".")[1:] for n in names if n.startswith("*."))
        bind = bind_host.strip("[]").lower()
        if bind and bind not in ("0.0.0.0", "::"):
            self.exact.add(bind)

    def allows(self, host: str) -> bool:
        """`host`: lower case, without port or brackets (`split_host`). Names are matched first:
        parsing a name as an IP address costs two failed parses on every request."""
        host = host.rstrip(".")
        return (
            host in self.exact
            or host == "localhost"
            or host.endswith(".localhost")
            or any(host.endswith(s) for s in self.suffixes)
            or _is_ip(host)  # loopback addresses included
        )


def _json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if headers.get("transfer-encoding"):
        return True
    return length is not None and length.strip() not in ("", "0")


def _origin_host(origin: str) -> str | None:
    """`host[:port]` of an Origin header, None for `null` or anything unparsable."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def refusal(scope: Scope, allow: HostAllowList, open_mode: bool) -> tuple[int, str, str, str] | None:
    """Why the request must be refused, as (status, message, type, param); None to let it through."""
    headers = Headers(scope=scope)
    raw_host = headers.get("host", "")
    host = split_host(raw_host)
    if not raw_host:  # HTTP/1.0 without Host: a load balancer's default health check, never a browser
        return (
            400,
            "the request has no Host header; send one (HTTP/1.1). A load balancer's health check needs "
            "it too, e.g. HAProxy: `http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost`",
            "invalid_request_error",
            "host",
        )
    if not allow.allows(host):
        return (
            400,
            f"Host {raw_host!r} is not one this server answers to (a guard against DNS rebinding); "
            f"if it is this server's name, add {host!r} to server.allowed_hosts in shipyard.yaml",
            "invalid_request_error",
            "host",
        )
    if open_mode:
        local = scope.get("server")
        local_host = str(local[0]) if local else ""
        if local_host and not local_host.startswith("/") and not is_loopback(local_host):
            return (
                403,
                "this server has no API keys, so it answers on loopback only; create a key with "
                "`shipyard keys create --role admin` to serve other machines",
                "permission_error",
                "authorization",
            )
    if scope["method"] not in WRITES:
        return None
    content_type = headers.get("content-type")
    if (content_type is not None or _has_body(headers)) and not _json_type(content_type or ""):
        return (
            415,
            f"a {scope['method']} body must be JSON, sent with 'Content-Type: application/json' "
            f"(got {content_type or 'no Content-Type'}); with curl: -H 'Content-Type: application/json'",
            "invalid_request_error",
            "content-type",
        )
    origin = headers.get("origin")
    if origin is not None and _origin_host(origin) != raw_host.strip().lower():
        return (
            403,
            f"cross-origin writes are refused: Origin {origin!r} is not this server ({raw_host}); "
            "call the API from your backend, not from another site's page",
            "permission_error",
            "origin",
        )
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE:
        return (
            403,
            f"cross-site writes are refused (Sec-Fetch-Site: {fetch_site}); call the API from your "
            "backend, not from another site's page",
            "permission_error",
            "origin",
        )
    return None


class RequestGuard:
    """The ASGI middleware: refuses what `refusal` names, passes everything else on.

    Args:
        app: the wrapped app.
        allow: the Host allow-list.
        open_mode: tells whether the server is open (no keys); read on every request.
    """

    def __init__(self, app: ASGIApp, *, allow: HostAllowList, open_mode: Callable[[], bool]) -> None:
        self.app = app
        self.allow = allow
        self.open_mode = open_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.allow, self.open_mode())
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, message, kind, param = refused
        response: Any = error_response(status, message, type=kind, param=param)
        await response(scope, receive, send)
