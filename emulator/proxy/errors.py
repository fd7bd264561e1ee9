"""The proxy's exception tree: a message it will not forward, and an upstream that failed."""

from __future__ import annotations


class ProxyError(Exception):
    """Base of every error the proxy raises."""


class HttpError(ProxyError):
    """A peer sent a message the proxy will not forward; ``status`` is the answer to give."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UpstreamFailure(ProxyError):
    """The upstream failed before a response head arrived (nothing went to the client yet).

    ``sent``: the request had reached the upstream, so it must not be replayed elsewhere.
    """

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class ConnectionLost(UpstreamFailure):
    """The upstream connection closed before a response head: a reused one may be retried."""
