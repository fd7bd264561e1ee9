"""T-Lib error codes and the exception tree of the T-Lib core.

Codes follow the names of Genesys T-Server ``TERR_*`` errors; numbers are those of the T-Server
"Error Messages" tables where we know them, and drlab-specific numbers (>= 1700) where Genesys has
no exact equivalent for an emulator condition (for example a TC-layer partition).
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    UNKNOWN_ERROR = 1
    INVALID_ATTRIBUTE = 40
    NO_SUCH_DN = 56
    UNKNOWN_REQUEST = 57
    INVALID_CONN_ID = 71
    DN_NOT_REGISTERED = 96
    DN_OUT_OF_SERVICE = 121
    INVALID_AGENT_STATE = 166
    AGENT_ALREADY_LOGGED_IN = 223
    AGENT_NOT_LOGGED_IN = 224
    CALL_IN_PROGRESS = 245
    INVALID_CALL_STATE = 246
    MALFORMED_FRAME = 1700
    CALL_NODE_UNREACHABLE = 1701
    OWNER_UNREACHABLE = 1702


class TLibError(Exception):
    """Base of every T-Lib core error."""


class ProtocolError(TLibError):
    """The peer sent something the protocol does not allow; answer it with ``EventError``.

    ``fatal`` errors leave the byte stream unsynchronised (a bad length prefix): the connection
    must be closed after the error is sent.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        reference_id: int | None = None,
        this_dn: str | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reference_id = reference_id
        self.this_dn = this_dn
        self.fatal = fatal


class RequestRejected(TLibError):
    """A well-formed request the cluster refuses (login during a call, DN out of service, ...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
