"""Toxic specifications with Toxiproxy's names, fields and defaults, validated at the JSON edge.

A toxic (Toxiproxy README "Toxics") is ``{name, type, stream, toxicity, attributes}``: ``stream``
is ``upstream`` (client to server) or ``downstream`` (server to client, the default), ``toxicity``
the probability (0..1, default 1) that the toxic applies to a given connection, ``name`` defaults to
``<type>_<stream>``. Attributes are integers as in Toxiproxy (milliseconds unless said otherwise):

- ``latency``: ``latency``, ``jitter`` (delay = latency +/- jitter)
- ``bandwidth``: ``rate`` (KB/s, 1 KB = 1000 bytes)
- ``slicer``: ``average_size``, ``size_variation`` (bytes), ``delay`` (microseconds)
- ``limit_data``: ``bytes`` (close the connection after that many bytes)
- ``timeout``: ``timeout`` (drop everything, close after it; 0 = hold forever)
- ``reset_peer``: ``timeout`` (reset the connection that long after the first data)
- ``slow_close``: ``delay`` (hold the close that long)

Stricter than Toxiproxy, where a missing attribute silently becomes 0: the main attribute of each
type is required, every attribute must be a non-negative integer, unknown attributes are refused,
``rate`` and ``average_size`` must be positive and ``size_variation`` smaller than
``average_size`` (Toxiproxy loops forever otherwise). Each refusal names the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from emulator.links.errors import (
    BAD_BODY,
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    MISSING_FIELD,
    BadRequest,
)
from emulator.links.model import NAME_PATTERN


class Stream(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


class ToxicType(StrEnum):
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLOW_CLOSE = "slow_close"


@dataclass(frozen=True)
class Latency:
    latency: int
    jitter: int = 0


@dataclass(frozen=True)
class Bandwidth:
    rate: int

    def __post_init__(self) -> None:
        if self.rate < 1:
            raise BadRequest("bandwidth attribute 'rate' must be at least 1 (KB/s)")


@dataclass(frozen=True)
class Slicer:
    average_size: int
    size_variation: int = 0
    delay: int = 0

    def __post_init__(self) -> None:
        if self.average_size < 1:
            raise BadRequest("slicer attribute 'average_size' must be at least 1 (bytes)")
        if self.size_variation >= self.average_size:
            raise BadRequest(
                "slicer attribute 'size_variation' must be smaller than 'average_size'"
            )


@dataclass(frozen=True)
class LimitData:
    bytes: int


@dataclass(frozen=True)
class Timeout:
    timeout: int


@dataclass(frozen=True)
class ResetPeer:
    timeout: int


@dataclass(frozen=True)
class SlowClose:
    delay: int


ToxicAttributes = Latency | Bandwidth | Slicer | LimitData | Timeout | ResetPeer | SlowClose

ATTRIBUTES: dict[ToxicType, type[ToxicAttributes]] = {
    ToxicType.LATENCY: Latency,
    ToxicType.BANDWIDTH: Bandwidth,
    ToxicType.SLICER: Slicer,
    ToxicType.LIMIT_DATA: LimitData,
    ToxicType.TIMEOUT: Timeout,
    ToxicType.RESET_PEER: ResetPeer,
    ToxicType.SLOW_CLOSE: SlowClose,
}

# Slicing a datagram would corrupt it: UDP links refuse these toxics.
NOT_FOR_UDP = frozenset({ToxicType.SLICER})


@dataclass(frozen=True)
class ToxicSpec:
    name: str
    type: ToxicType
    stream: Stream
    toxicity: float
    attributes: ToxicAttributes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "stream": str(self.stream),
            "toxicity": self.toxicity,
            "attributes": dataclasses.asdict(self.attributes),
        }


def toxic_request(
    toxic_type: str,
    attributes: Mapping[str, int],
    *,
    name: str | None,
    stream: str,
    toxicity: float,
    ttl: float | None,
) -> dict[str, Any]:
    """The body of ``POST /proxies/{name}/toxics`` (Toxiproxy's shape, plus our ``ttl``)."""
    body: dict[str, Any] = {
        "type": toxic_type,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": dict(attributes),
    }
    if name is not None:
        body["name"] = name
    if ttl is not None:
        body["ttl"] = ttl
    return body


def parse_toxic(body: Any) -> ToxicSpec:
    """A new toxic from a POST body, with Toxiproxy's defaults; raises ``BadRequest``."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"{BAD_BODY}: a toxic must be a JSON object")
    type_text = body.get("type")
    if type_text is None:
        raise BadRequest(f"{MISSING_FIELD}: type")
    try:
        toxic_type = ToxicType(type_text)
    except ValueError:
        valid = ", ".join(t.value for t in ToxicType)
        raise BadRequest(f"{INVALID_TOXIC_TYPE}: {type_text!r} (valid: {valid})") from None
    try:
        stream = Stream(body.get("stream", Stream.DOWNSTREAM))
    except ValueError:
        raise BadRequest(INVALID_STREAM) from None
    name = body.get("name") or f"{toxic_type}_{stream}"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadRequest(
            f"{BAD_BODY}: toxic name {name!r} must be 1-128 characters without '/' or spaces"
        )
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attributes = _attributes(toxic_type, body.get("attributes", {}), base={})
    return ToxicSpec(name, toxic_type, stream, toxicity, attributes)


def update_toxic(existing: ToxicSpec, body: Any) -> ToxicSpec:
    """Toxiproxy's update: given attributes replace, the others and ``toxicity`` are kept."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"{BAD_BODY}: a toxic update must be a JSON object")
    toxicity = _toxicity(body.get("toxicity", existing.toxicity))
    base = dataclasses.asdict(existing.attributes)
    attributes = _attributes(existing.type, body.get("attributes", {}), base=base)
    return dataclasses.replace(existing, toxicity=toxicity, attributes=attributes)


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{BAD_BODY}: 'toxicity' must be a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise BadRequest(f"{BAD_BODY}: 'toxicity' must be between 0 and 1, got {value}")
    return float(value)


def _attributes(toxic_type: ToxicType, given: Any, *, base: dict[str, int]) -> ToxicAttributes:
    if not isinstance(given, Mapping):
        raise BadRequest(f"{BAD_BODY}: 'attributes' must be a JSON object")
    cls = ATTRIBUTES[toxic_type]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise BadRequest(
            f"{BAD_BODY}: unknown attribute {unknown[0]!r} for a {toxic_type} toxic "
            f"(valid: {', '.join(fields)})"
        )
    values = dict(base)
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(
                f"{BAD_BODY}: attribute {key!r} of a {toxic_type} toxic must be an integer"
            )
        if value < 0:
            raise BadRequest(
                f"{BAD_BODY}: attribute {key!r} of a {toxic_type} toxic must be >= 0, got {value}"
            )
        values[key] = value
    for name, field in fields.items():
        if name not in values and field.default is dataclasses.MISSING:
            raise BadRequest(f"{MISSING_FIELD}: attribute {name!r} of a {toxic_type} toxic")
    return cls(**values)
