"""Bayeux channel names and trailing-wildcard patterns (Bayeux 1.0 spec, "Channels").

``channel_name = "/" segment *("/" segment)``; a pattern ends in ``/*`` (one segment) or ``/**``
(any number of segments, at least one). ``/meta/**`` belongs to the protocol and ``/service/**``
is for request/response with the server: neither is a broadcast channel.
"""

from __future__ import annotations

import enum
import re

# Spec token characters (alphanum and marks) plus "." which CometD implementations also accept.
_SEGMENT = re.compile(r"[A-Za-z0-9\-_!~()$@.]+")


class ChannelKind(enum.Enum):
    META = "meta"
    SERVICE = "service"
    BROADCAST = "broadcast"


def kind_of(channel: str) -> ChannelKind:
    if channel == "/meta" or channel.startswith("/meta/"):
        return ChannelKind.META
    if channel == "/service" or channel.startswith("/service/"):
        return ChannelKind.SERVICE
    return ChannelKind.BROADCAST


def _segments(channel: str) -> list[str] | None:
    if not channel.startswith("/") or len(channel) < 2:
        return None
    return channel[1:].split("/")


def is_valid_name(channel: str) -> bool:
    """True for a concrete channel name (no wildcard)."""
    segments = _segments(channel)
    return segments is not None and all(_SEGMENT.fullmatch(segment) for segment in segments)


def is_valid_pattern(channel: str) -> bool:
    """True for a concrete name or a name whose last segment is ``*`` or ``**``."""
    segments = _segments(channel)
    if segments is None:
        return False
    *head, last = segments
    if last in ("*", "**"):
        return all(_SEGMENT.fullmatch(segment) for segment in head)
    return is_valid_name(channel)


def matches(pattern: str, channel: str) -> bool:
    """Whether the concrete ``channel`` is covered by ``pattern`` (itself, ``/*`` or ``/**``)."""
    if pattern == channel:
        return True
    if pattern.endswith("/**"):
        prefix = pattern[:-2]
        return channel.startswith(prefix) and len(channel) > len(prefix)
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        rest = channel[len(prefix) :]
        return channel.startswith(prefix) and bool(rest) and "/" not in rest
    return False


def covers(allowed: str, requested: str) -> bool:
    """Whether subscribing to ``requested`` (a name or pattern) stays within ``allowed``."""
    if allowed == requested or matches(allowed, requested):
        return True
    # A requested wildcard is covered when its prefix lies under an allowed "/**".
    if allowed.endswith("/**") and requested.endswith(("/*", "/**")):
        prefix = allowed[:-2]
        return requested.startswith(prefix) and len(requested) > len(prefix)
    return False
