"""What the proxy changes in the heads it forwards, for both lanes; no I/O.

On the way in, hop-by-hop fields go (RFC 9110 §7.6.1), ``X-Forwarded-For`` (appended to),
``X-Real-IP``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` tell the upstream who the client is,
and ``Expect`` stays with the proxy, which answers it. On the way out, hop-by-hop fields go again,
the stickiness cookie pins a client the choice pinned anew (DESIGN §2.3: "cookie-sticky per DC")
and ``Connection`` says whether the connection stays open. The proxy's own ``502`` for an upstream
that failed is here too.
"""

from __future__ import annotations

from emulator.proxy.http1 import (
    RequestHead,
    ResponseHead,
    forwardable,
    serialize_response,
    simple_response,
)
from emulator.proxy.upstreams import Choice


def upstream_request(request: RequestHead, client_ip: str) -> RequestHead:
    headers = list(forwardable(request.headers, keep_upgrade=request.is_upgrade))
    lowered = {key.lower() for key, _ in headers}
    forwarded_for = request.get("X-Forwarded-For")
    headers = [(k, v) for k, v in headers if k.lower() not in ("x-forwarded-for", "expect")]
    headers.append(
        ("X-Forwarded-For", f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip)
    )
    if "x-real-ip" not in lowered:
        headers.append(("X-Real-IP", client_ip))
    headers.append(("X-Forwarded-Proto", "http"))
    if request.get("Host") is not None and "x-forwarded-host" not in lowered:
        headers.append(("X-Forwarded-Host", request.get("Host") or ""))
    return RequestHead(request.method, request.target, "HTTP/1.1", tuple(headers))


def client_head(
    response: ResponseHead,
    choice: Choice,
    cookie_name: str,
    *,
    keep: bool,
    upgrade: bool = False,
) -> bytes:
    """The response head as the client gets it: hop-by-hop fields dropped, the stickiness
    cookie set if the choice pinned the client anew, ``Connection`` saying what comes next."""
    headers = list(forwardable(response.headers, keep_upgrade=upgrade))
    if choice.set_cookie:
        cookie = f"{cookie_name}={choice.upstream.name}; Path=/; HttpOnly"
        headers.append(("Set-Cookie", cookie))
    if not upgrade:
        headers.append(("Connection", "keep-alive" if keep else "close"))
    return serialize_response(
        ResponseHead(response.version, response.status, response.reason, tuple(headers))
    )


def bad_gateway_response(upstream: str, reason: str) -> bytes:
    return simple_response(502, "Bad Gateway", f"502 Bad Gateway: upstream {upstream}: {reason}\n")
