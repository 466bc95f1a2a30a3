"""A load balancer's health check without a `Host` header (HAProxy's default `option httpchk` is
HTTP/1.0 without one) is refused by the Host guard, with a message that says what to send."""

from __future__ import annotations

from shipyard.server._guard import HostAllowList, refusal


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/readyz",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
    }


def test_a_health_check_without_host_is_told_to_send_one() -> None:
    allow = HostAllowList("127.0.0.1")
    refused = refusal(_scope([]), allow, open_mode=True)
    assert refused is not None
    status, message, kind, param = refused
    assert (status, kind, param) == (400, "invalid_request_error", "host")
    assert "no Host header" in message and "hdr Host" in message
    # the check HAProxy sends once configured as the README shows passes the guard
    assert refusal(_scope([(b"host", b"localhost")]), allow, open_mode=True) is None
