"""Bayeux 1.0 messages: the wire model shared by the CometD server and client cores.

Owns the JSON edge of the protocol (Bayeux 1.0 spec, "Common Message Field Definitions" and
"Messages"): a payload is a JSON array of message objects (a single object is accepted too, as the
spec allows), every message has exactly one ``channel``; ``advice`` carries ``reconnect`` /
``timeout`` / ``interval`` in milliseconds; errors are strings ``code:args:message`` such as
``402::Unknown client``. Inside the project messages are frozen dataclasses; dicts exist only in
:func:`Message.from_json` / :meth:`Message.to_json`.

No I/O here: this module is imported by both cores, the aiohttp server adapter and the client.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --- exception tree ------------------------------------------------------------------------


class BayeuxError(Exception):
    """Root of every error raised by :mod:`emulator.bayeux`."""


class UsageError(BayeuxError):
    """Local misuse of an API (wrong state, bad argument): a bug in the caller, not the peer."""


class ProtocolError(BayeuxError):
    """The peer sent something Bayeux does not allow; ``error`` is the Bayeux error string."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class PayloadError(ProtocolError):
    """The whole payload is unreadable (not JSON, not a message array): nothing can be answered
    message by message."""


class MalformedMessage(ProtocolError):
    """One message of a payload is wrong; ``channel`` and ``id`` are whatever could be salvaged so
    the reply can still be correlated by the peer."""

    def __init__(self, error: str, *, channel: str | None = None, id: str | int | None = None):
        super().__init__(error)
        self.channel = channel
        self.id = id


# --- codes -----------------------------------------------------------------------------------


class Reconnect(enum.StrEnum):
    """``advice.reconnect`` values (spec: "reconnect advice field")."""

    RETRY = "retry"
    HANDSHAKE = "handshake"
    NONE = "none"


class ErrorCode(enum.IntEnum):
    """Three-digit Bayeux error codes, HTTP-like as in the spec's examples."""

    BAD_REQUEST = 400
    NO_CLIENT_ID = 401
    UNKNOWN_CLIENT = 402
    DENIED = 403
    UNKNOWN_CHANNEL = 404
    TOO_LARGE = 413


def bayeux_error(code: ErrorCode, message: str, *args: str) -> str:
    """Format ``error_code ":" error_args ":" error_message`` (spec: the ``error`` field)."""
    return f"{int(code)}:{','.join(args)}:{message}"


UNKNOWN_CLIENT_ERROR = bayeux_error(ErrorCode.UNKNOWN_CLIENT, "Unknown client")

META_HANDSHAKE = "/meta/handshake"
META_CONNECT = "/meta/connect"
META_SUBSCRIBE = "/meta/subscribe"
META_UNSUBSCRIBE = "/meta/unsubscribe"
META_DISCONNECT = "/meta/disconnect"
# Replies to input that cannot be tied to a request channel (a payload that is not JSON, a
# message without a channel) use the channel CometD clients notify for any failed message.
META_UNSUCCESSFUL = "/meta/unsuccessful"

BAYEUX_VERSION = "1.0"
WEBSOCKET = "websocket"
LONG_POLLING = "long-polling"


# --- advice ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """The ``advice`` object; durations are kept in milliseconds exactly as on the wire."""

    reconnect: Reconnect | None = None
    timeout_ms: int | None = None
    interval_ms: int | None = None
    max_interval_ms: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: object) -> Advice:
        if not isinstance(value, dict):
            raise ProtocolError(bayeux_error(ErrorCode.BAD_REQUEST, "advice must be an object"))
        reconnect: Reconnect | None = None
        raw_reconnect = value.get("reconnect")
        if raw_reconnect is not None:
            try:
                reconnect = Reconnect(raw_reconnect)
            except ValueError:
                raise ProtocolError(
                    bayeux_error(
                        ErrorCode.BAD_REQUEST,
                        "advice.reconnect must be retry, handshake or none",
                        str(raw_reconnect),
                    )
                ) from None
        known = {"reconnect", "timeout", "interval", "maxInterval"}
        return cls(
            reconnect=reconnect,
            timeout_ms=_milliseconds(value, "timeout"),
            interval_ms=_milliseconds(value, "interval"),
            max_interval_ms=_milliseconds(value, "maxInterval"),
            extra={key: item for key, item in value.items() if key not in known},
        )

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.reconnect is not None:
            result["reconnect"] = self.reconnect.value
        if self.interval_ms is not None:
            result["interval"] = self.interval_ms
        if self.timeout_ms is not None:
            result["timeout"] = self.timeout_ms
        if self.max_interval_ms is not None:
            result["maxInterval"] = self.max_interval_ms
        result.update(self.extra)
        return result

    def overlay(self, newer: Advice | None) -> Advice:
        """Fields of ``newer`` replace ours; fields it lacks keep ours (CometD's default merge)."""
        if newer is None:
            return self
        return Advice(
            reconnect=newer.reconnect if newer.reconnect is not None else self.reconnect,
            timeout_ms=newer.timeout_ms if newer.timeout_ms is not None else self.timeout_ms,
            interval_ms=newer.interval_ms if newer.interval_ms is not None else self.interval_ms,
            max_interval_ms=(
                newer.max_interval_ms if newer.max_interval_ms is not None else self.max_interval_ms
            ),
            extra={**self.extra, **newer.extra},
        )


def _milliseconds(value: Mapping[str, Any], key: str) -> int | None:
    raw = value.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ProtocolError(
            bayeux_error(ErrorCode.BAD_REQUEST, f"advice.{key} must be a number of milliseconds")
        )
    return int(raw)


# --- messages --------------------------------------------------------------------------------

_FIELD_NAMES = {
    "channel",
    "id",
    "clientId",
    "data",
    "successful",
    "error",
    "advice",
    "subscription",
    "connectionType",
    "supportedConnectionTypes",
    "version",
    "minimumVersion",
    "ext",
}


@dataclass(frozen=True)
class Message:
    """One Bayeux message, request or reply, in either direction.

    ``data=None`` means "no data field": Bayeux event messages always carry data, and a JSON
    ``null`` data is treated as absent. ``extra`` keeps fields this module does not interpret
    (``authSuccessful``, ``reestablish``, ...) so that nothing a peer sends is silently lost.
    """

    channel: str
    id: str | int | None = None
    client_id: str | None = None
    data: Any = None
    successful: bool | None = None
    error: str | None = None
    advice: Advice | None = None
    subscription: str | tuple[str, ...] | None = None
    connection_type: str | None = None
    supported_connection_types: tuple[str, ...] | None = None
    version: str | None = None
    minimum_version: str | None = None
    ext: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_meta(self) -> bool:
        return self.channel.startswith("/meta/")

    @property
    def is_reply(self) -> bool:
        """Replies carry ``successful``; delivered events never do."""
        return self.successful is not None

    @property
    def subscriptions(self) -> tuple[str, ...]:
        if self.subscription is None:
            return ()
        if isinstance(self.subscription, str):
            return (self.subscription,)
        return self.subscription

    @classmethod
    def from_json(cls, value: object) -> Message:
        """Validate one decoded message object; raise :class:`MalformedMessage` naming the field."""
        if not isinstance(value, dict):
            raise MalformedMessage(
                bayeux_error(ErrorCode.BAD_REQUEST, "each Bayeux message must be a JSON object")
            )
        raw_id = value.get("id")
        message_id = (
            raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        )
        channel = value.get("channel")
        if channel is None:
            raise MalformedMessage(
                bayeux_error(ErrorCode.BAD_REQUEST, "message has no channel"), id=message_id
            )
        if not isinstance(channel, str):
            raise MalformedMessage(
                bayeux_error(ErrorCode.BAD_REQUEST, "channel must be a string"), id=message_id
            )

        def bad(text: str) -> MalformedMessage:
            return MalformedMessage(
                bayeux_error(ErrorCode.BAD_REQUEST, text, channel), channel=channel, id=message_id
            )

        if raw_id is not None and message_id is None:
            raise bad("id must be a string or an integer")
        advice = None
        if value.get("advice") is not None:
            try:
                advice = Advice.from_json(value["advice"])
            except ProtocolError as exc:
                raise MalformedMessage(exc.error, channel=channel, id=message_id) from None
        subscription: str | tuple[str, ...] | None = None
        raw_subscription = value.get("subscription")
        if isinstance(raw_subscription, str):
            subscription = raw_subscription
        elif isinstance(raw_subscription, list):
            if not all(isinstance(item, str) for item in raw_subscription):
                raise bad("subscription must be a channel name or a list of channel names")
            subscription = tuple(raw_subscription)
        elif raw_subscription is not None:
            raise bad("subscription must be a channel name or a list of channel names")
        supported: tuple[str, ...] | None = None
        raw_supported = value.get("supportedConnectionTypes")
        if raw_supported is not None:
            if not isinstance(raw_supported, list) or not all(
                isinstance(item, str) for item in raw_supported
            ):
                raise bad("supportedConnectionTypes must be a list of strings")
            supported = tuple(raw_supported)
        ext = value.get("ext")
        if ext is not None and not isinstance(ext, dict):
            raise bad("ext must be an object")
        successful = value.get("successful")
        if successful is not None and not isinstance(successful, bool):
            raise bad("successful must be a boolean")
        return cls(
            channel=channel,
            id=message_id,
            client_id=_optional_str(value, "clientId", bad),
            data=value.get("data"),
            successful=successful,
            error=_optional_str(value, "error", bad),
            advice=advice,
            subscription=subscription,
            connection_type=_optional_str(value, "connectionType", bad),
            supported_connection_types=supported,
            version=_optional_str(value, "version", bad),
            minimum_version=_optional_str(value, "minimumVersion", bad),
            ext=ext,
            extra={key: item for key, item in value.items() if key not in _FIELD_NAMES},
        )

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"channel": self.channel}
        if self.id is not None:
            result["id"] = self.id
        if self.client_id is not None:
            result["clientId"] = self.client_id
        if self.successful is not None:
            result["successful"] = self.successful
        if self.error is not None:
            result["error"] = self.error
        if self.subscription is not None:
            result["subscription"] = (
                self.subscription if isinstance(self.subscription, str) else list(self.subscription)
            )
        if self.version is not None:
            result["version"] = self.version
        if self.minimum_version is not None:
            result["minimumVersion"] = self.minimum_version
        if self.supported_connection_types is not None:
            result["supportedConnectionTypes"] = list(self.supported_connection_types)
        if self.connection_type is not None:
            result["connectionType"] = self.connection_type
        if self.data is not None:
            result["data"] = self.data
        if self.advice is not None:
            result["advice"] = self.advice.to_json()
        if self.ext is not None:
            result["ext"] = dict(self.ext)
        result.update(self.extra)
        return result


def _optional_str(value: Mapping[str, Any], key: str, bad: Any) -> str | None:
    raw = value.get(key)
    if raw is None or isinstance(raw, str):
        return raw
    raise bad(f"{key} must be a string")


# --- payloads --------------------------------------------------------------------------------


def decode_payload(payload: bytes | str) -> list[object]:
    """Split a transport payload into message objects (not yet validated).

    Raises :class:`PayloadError` when the payload as a whole is unusable.
    """
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise PayloadError(bayeux_error(ErrorCode.BAD_REQUEST, "payload is not UTF-8")) from None
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            bayeux_error(ErrorCode.BAD_REQUEST, f"payload is not valid JSON ({exc.msg})")
        ) from None
    if isinstance(decoded, dict):
        return [decoded]
    if not isinstance(decoded, list):
        raise PayloadError(
            bayeux_error(
                ErrorCode.BAD_REQUEST, "payload must be a JSON array of Bayeux message objects"
            )
        )
    if not decoded:
        raise PayloadError(bayeux_error(ErrorCode.BAD_REQUEST, "payload has no messages"))
    return decoded


def parse_messages(payload: bytes | str) -> list[Message]:
    """Strict parse for peers that trust their counterpart (the client side): any fault raises."""
    return [Message.from_json(item) for item in decode_payload(payload)]


def encode_messages(messages: Iterable[Message]) -> str:
    return json.dumps([message.to_json() for message in messages], separators=(",", ":"))


def failure_reply(error: ProtocolError) -> Message:
    """The reply to input that is wrong; correlated by channel and id when they are known."""
    channel = META_UNSUCCESSFUL
    message_id: str | int | None = None
    if isinstance(error, MalformedMessage):
        channel = error.channel or META_UNSUCCESSFUL
        message_id = error.id
    return Message(channel=channel, id=message_id, successful=False, error=error.error)
