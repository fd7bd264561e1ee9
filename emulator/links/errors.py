"""The fault relay's exception tree: every way a request to the relay can be refused.

Each error carries the HTTP status and the message of the Toxiproxy-shaped error body the API
answers with (``{"error": <message>, "status": <status>}``). Where Toxiproxy has a message for the
same failure ("proxy not found", "toxic already exists", ...) we use its exact text, so clients
that match on it keep working; our own failures (non-loopback listen, negative attributes, ...)
say precisely which field is wrong. Foreign exceptions (OSError from ``bind``, JSON decode errors)
are translated into these where they happen, never raised through the service. ``LinksClient``
raises the same classes from the status of an error answer, so callers catch one tree.
"""

from __future__ import annotations


class LinksError(Exception):
    """Base of every refusal; ``status`` is the HTTP status the API answers with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(LinksError):
    """Malformed JSON, a missing or ill-typed field, a value out of range (HTTP 400)."""

    status = 400


class NotFound(LinksError):
    """An unknown proxy, toxic or connection (HTTP 404)."""

    status = 404


class Conflict(LinksError):
    """A name that already exists, or a listen address that is taken (HTTP 409)."""

    status = 409


class Unavailable(LinksError):
    """Client side: the relay's API could not be reached or answered garbage (HTTP 503)."""

    status = 503


class InvalidTransition(LinksError):
    """Local misuse: a (state, command) pair missing from the link transition table."""

    status = 500


# Toxiproxy's own messages (api.go), kept verbatim for client compatibility.
PROXY_NOT_FOUND = "proxy not found"
PROXY_EXISTS = "proxy already exists"
TOXIC_NOT_FOUND = "toxic not found"
TOXIC_EXISTS = "toxic already exists"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
INVALID_TOXIC_TYPE = "invalid toxic type"
BAD_BODY = "bad request body"
MISSING_FIELD = "missing required field"
