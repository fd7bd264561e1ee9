"""The WWE client's exception tree: every failure a desktop user can meet, and local misuse.

Foreign exceptions (aiohttp, OSError, timeouts, Bayeux errors) are translated into these at the
two I/O boundaries (``rest`` for HTTP, ``client`` for CometD), so the library and its CLI show
one clear sentence and never a traceback.
"""

from __future__ import annotations


class WweError(Exception):
    """Base of every error raised or reported by :mod:`clients.wwe`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(WweError):
    """Local misuse: an operation asked in a state that does not allow it (a bug in the caller)."""


class NotConnected(UsageError):
    """A Workspace request was asked while the desktop has no live session (reconnecting, gave
    up, or logged out)."""


class LoginFailed(WweError):
    """The credentials were refused, or the workspace could not be initialized."""


class ServerUnreachable(WweError):
    """No Workspace answer: connection refused or reset, timeout, or a proxy error page."""


class RequestFailed(WweError):
    """The server answered a Workspace request with an error (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SessionGone(RequestFailed):
    """HTTP 401: the Workspace session no longer exists on the node that answered."""


class BadServerMessage(WweError):
    """The server sent a Workspace message this client cannot read (reported, then ignored)."""


class VoiceError(WweError):
    """An ``EventError`` reported by GWS on the voice channel (a T-Lib or GWS error code).

    Emitted as the ``"error"`` event, never raised: the Workspace API reports the outcome of a
    voice request asynchronously (e.g. 245, a login rejected while a call is in progress).
    """

    def __init__(
        self, code: int, text: str, *, dn: str | None = None, reference_id: int | None = None
    ) -> None:
        super().__init__(f"Error {code}: {text}")
        self.code = code
        self.text = text
        self.dn = dn
        self.reference_id = reference_id
