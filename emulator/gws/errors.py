"""The GWS node's exception tree: every error a Workspace API request can end in.

Each error carries the HTTP status and the message of the JSON error body the REST layer answers
with (``{"status": {"code": <http status>, "message": ...}}``); foreign exceptions (aiohttp, T-Lib
stream errors, OSError) are translated into these at the HTTP and T-Lib boundaries, so a handler
never leaks a traceback to a desktop.
"""

from __future__ import annotations


class GwsError(Exception):
    """Base of every error the Workspace API answers; ``http_status`` is what the desktop sees."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GwsError):
    """The request body or parameters are malformed or missing (HTTP 400)."""

    http_status = 400


class Unauthorized(GwsError):
    """No, forged or expired bearer token, or no live Workspace session (HTTP 401)."""

    http_status = 401


class NotFound(GwsError):
    """An unknown path, or a call that is not a call of the session's DN (HTTP 404)."""

    http_status = 404


class Conflict(GwsError):
    """The request is valid but the session is not in a state that allows it (HTTP 409)."""

    http_status = 409


class PayloadTooLarge(GwsError):
    http_status = 413


class NotServed(GwsError):
    """A Workspace API operation the lab does not model (a channel, a T-Lib service): HTTP 501,
    saying what it would need, so a desktop is never left with an HTML 404."""

    http_status = 501


class TLibUnavailable(GwsError):
    """The T-Lib link to the SIP node is down: voice requests cannot be served (HTTP 503)."""

    http_status = 503


class AuthError(GwsError):
    """An OAuth token request is refused; answered as RFC 6749 §5.2 (error, error_description),
    not in the Workspace API's shape: the token endpoint catches it before ``GwsError``."""

    def __init__(self, error: str, description: str, http_status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.http_status = http_status
