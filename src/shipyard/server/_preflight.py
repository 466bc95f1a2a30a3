"""What `shipyard serve` checks before it says it is serving: the address can be bound, and every
Redis the config names answers. Each failure is one `StartupError` naming the problem (exit 2),
within seconds; the store is checked by opening it (migrations included, `Store.from_config`).

A Redis that goes away *after* start-up is survived (flags keep their last known values, listeners
reconnect by themselves); one that is unreachable at start-up is a configuration problem to fix
first, like an unreachable database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from shipyard.errors import ShipyardError

REDIS_ENV_VARS = ("SHIPYARD_REDIS_URL", "REDIS_URL")
REDIS_CHECK_TIMEOUT_S = 3.0


class StartupError(ShipyardError):
    """The server cannot start: its port is taken, or a service it needs does not answer."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), ready for uvicorn; raises StartupError when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise StartupError(
            f"cannot listen on {host}:{port}: the address does not resolve ({e.strerror})",
            hint="pass --host with an address of this machine (e.g. 127.0.0.1 or 0.0.0.0)",
        ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise StartupError(
                f"port {port} on {host} is already in use by another process",
                hint=f"stop that process, or pass another --port (see `ss -ltnp 'sport = :{port}'`)",
            ) from None
        raise StartupError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="ports below 1024 need privileges; pass --host / --port of this machine",
        ) from None
    sock.set_inheritable(True)  # --workers: the worker processes accept on it
    return sock


def _redis_fields(model: BaseModel, where: str) -> Iterator[tuple[str, str]]:
    """(`where`, url) of every `redis_url` set in the config whose section uses Redis (a section with
    a `backend` uses it only when the backend is redis)."""
    backend = getattr(model, "backend", None)
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name == "redis_url" and isinstance(value, str) and value and backend in (None, "redis"):
            yield f"{where}.{name}", value
        elif isinstance(value, BaseModel):
            yield from _redis_fields(value, f"{where}.{name}" if where else name)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from _redis_fields(item, f"{where}.{name}.{key}" if where else f"{name}.{key}")


def configured_redis(cfg: Any) -> list[tuple[str, str]]:
    """Every Redis this server would use: (where it is configured, url), each url once."""
    found: list[tuple[str, str]] = []
    for var in REDIS_ENV_VARS:
        if os.environ.get(var):
            found.append((f"${var}", os.environ[var]))
    found += [(where, url) for where, url in _redis_fields(cfg, "")]
    seen: set[str] = set()
    return [(w, u) for w, u in found if not (u in seen or seen.add(u))]  # type: ignore[func-returns-value]


def _safe(url: str) -> str:
    """The url without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_redis(cfg: Any, *, timeout_s: float = REDIS_CHECK_TIMEOUT_S) -> None:
    """PING every configured Redis; raises StartupError naming the first that does not answer."""
    targets = configured_redis(cfg)
    if not targets:
        return
    import redis

    for where, url in targets:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        except ValueError as e:
            raise StartupError(
                f"Redis URL {_safe(url)!r} ({where}) is not valid: {e}",
                hint="use redis://HOST:PORT/DB (or rediss:// for TLS)",
            ) from None
        try:
            client.ping()
        except redis.RedisError as e:
            raise StartupError(
                f"Redis at {_safe(url)} ({where}) does not answer: {str(e).splitlines()[0][:200]}",
                hint=f"start Redis there, or fix / unset {where}",
            ) from None
        finally:
            client.close()
