"""What the toxics of one stream do to the bytes of one connection: chunks in, timed actions out.

This is the sans-I/O heart of the relay (no sockets, no asyncio; time is passed in as loop-clock
seconds). ``ToxicPipe.feed`` takes a chunk read at ``at`` and the link's current toxics and returns
the actions the I/O layer must carry out in order: deliver these bytes at that time, end the
stream, close or reset the whole connection. Semantics follow Toxiproxy's toxics (toxics/*.go):

- toxics of the pipe's stream apply in the order they were added, each to the output of the one
  before (a chain); whether a toxic applies to this connection at all is drawn once from
  ``toxicity`` when the pipe first meets it (and again when the toxic is updated);
- latency delays each chunk by latency +/- jitter from when it was read (pipelined, not
  cumulative); bandwidth spaces chunks so the rate is not exceeded, in slices of at most
  100 ms worth; slicer cuts chunks with Toxiproxy's recursive halving, ``delay`` us apart;
- limit_data passes ``bytes`` bytes then closes; timeout drops everything and closes after its
  timeout (see ``next_deadline``); reset_peer drops everything and resets ``timeout`` ms after the
  first data; slow_close holds the end of the stream.

Unlike Toxiproxy, an end of stream is passed on as a half-close (``EndOfStream``), not a close of
both directions, so a client that shuts down its sending side still gets its answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from emulator.links.toxics import (
    Bandwidth,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Stream,
    Timeout,
    ToxicSpec,
)


@dataclass(frozen=True, slots=True)
class Deliver:
    at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfStream:
    at: float


@dataclass(frozen=True, slots=True)
class Close:
    """Close the whole connection gracefully (FIN both ways)."""

    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the whole connection (RST both ways)."""

    at: float
    reason: str


Action = Deliver | EndOfStream | Close | Reset
Terminal = Close | Reset


@dataclass
class _ToxicState:
    spec: ToxicSpec
    applied: bool
    first_seen: float
    next_free: float = 0.0
    transmitted: int = 0
    tripped: bool = False


class ToxicPipe:
    """The per-connection, per-direction state of a link's toxic chain."""

    def __init__(self, stream: Stream, rng: random.Random) -> None:
        self.stream = stream
        self._rng = rng
        self._states: dict[str, _ToxicState] = {}
        self._ended = False

    def feed(self, toxics: Iterable[ToxicSpec], data: bytes, at: float) -> list[Action]:
        if self._ended:
            return []
        pieces: list[tuple[float, bytes]] = [(at, data)]
        terminal: Terminal | None = None
        for toxic in self._active(toxics, at):
            state = self._states[toxic.name]
            attributes = toxic.attributes
            if isinstance(attributes, Latency):
                delay = _latency_seconds(attributes, self._rng)
                pieces = [(start + delay, chunk) for start, chunk in pieces]
            elif isinstance(attributes, Bandwidth):
                pieces = _throttle(pieces, attributes.rate, state)
            elif isinstance(attributes, Slicer):
                pieces = self._slice(pieces, attributes, state)
            elif isinstance(attributes, LimitData):
                pieces = _limit(pieces, attributes.bytes, state)
                if state.transmitted >= attributes.bytes and terminal is None:
                    terminal = Close(at, f"limit_data {toxic.name}")
            elif isinstance(attributes, Timeout):
                pieces = []
            elif isinstance(attributes, ResetPeer):
                pieces = []
                if not state.tripped:
                    state.tripped = True
                    terminal = Reset(at + attributes.timeout / 1000, f"reset_peer {toxic.name}")
        actions: list[Action] = [Deliver(start, chunk) for start, chunk in pieces if chunk]
        if terminal is not None:
            self._ended = True
            last = max((action.at for action in actions), default=terminal.at)
            actions.append(type(terminal)(max(last, terminal.at), terminal.reason))
        return actions

    def finish(self, toxics: Iterable[ToxicSpec], at: float) -> list[Action]:
        """The source ended: pass the end of stream on, after any slow_close delay."""
        if self._ended:
            return []
        self._ended = True
        delay = sum(
            toxic.attributes.delay / 1000
            for toxic in self._active(toxics, at)
            if isinstance(toxic.attributes, SlowClose)
        )
        return [EndOfStream(at + delay)]

    def next_deadline(self, toxics: Iterable[ToxicSpec], now: float) -> tuple[float, str] | None:
        """When an applied ``timeout`` toxic closes this connection, counted from first sight."""
        deadlines = [
            (self._states[toxic.name].first_seen + toxic.attributes.timeout / 1000, toxic.name)
            for toxic in self._active(toxics, now)
            if isinstance(toxic.attributes, Timeout) and toxic.attributes.timeout > 0
        ]
        return min(deadlines) if deadlines else None

    def applied(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.applied

    def forget(self, name: str) -> None:
        self._states.pop(name, None)

    def _active(self, toxics: Iterable[ToxicSpec], now: float) -> list[ToxicSpec]:
        active = []
        for toxic in toxics:
            if toxic.stream is not self.stream:
                continue
            state = self._states.get(toxic.name)
            if state is None or state.spec != toxic:
                applied = toxic.toxicity >= 1.0 or self._rng.random() < toxic.toxicity
                if state is None:
                    state = _ToxicState(toxic, applied, first_seen=now)
                    self._states[toxic.name] = state
                else:
                    state.spec, state.applied = toxic, applied
            if state.applied:
                active.append(toxic)
        return active

    def _slice(
        self, pieces: list[tuple[float, bytes]], slicer: Slicer, state: _ToxicState
    ) -> list[tuple[float, bytes]]:
        gap = slicer.delay / 1_000_000
        out = []
        for start, chunk in pieces:
            bounds = slice_bounds(len(chunk), slicer, self._rng)
            for left, right in zip(bounds[::2], bounds[1::2], strict=True):
                when = max(start, state.next_free)
                out.append((when, chunk[left:right]))
                state.next_free = when + gap
        return out


def slice_bounds(length: int, slicer: Slicer, rng: random.Random) -> list[int]:
    """Toxiproxy's ``SlicerToxic.chunk``: halve until a part is within average +/- variation."""
    bounds: list[int] = []
    pending = [(0, length)]
    while pending:
        start, end = pending.pop()
        if (end - start) - slicer.average_size <= slicer.size_variation:
            bounds += [start, end]
            continue
        middle = start + (end - start) // 2
        if slicer.size_variation > 0:
            middle += rng.randrange(slicer.size_variation * 2) - slicer.size_variation
        pending += [(middle, end), (start, middle)]
    return bounds


def _latency_seconds(latency: Latency, rng: random.Random) -> float:
    delay = latency.latency
    if latency.jitter > 0:
        delay += rng.randrange(latency.jitter * 2) - latency.jitter
    return max(delay, 0) / 1000


def _throttle(
    pieces: list[tuple[float, bytes]], rate_kb: int, state: _ToxicState
) -> list[tuple[float, bytes]]:
    bytes_per_second = rate_kb * 1000
    step = rate_kb * 100  # Toxiproxy writes at most 100 ms worth at a time
    out = []
    for start, chunk in pieces:
        for offset in range(0, len(chunk), step):
            part = chunk[offset : offset + step]
            done = max(start, state.next_free) + len(part) / bytes_per_second
            state.next_free = done
            out.append((done, part))
    return out


def _limit(
    pieces: list[tuple[float, bytes]], limit: int, state: _ToxicState
) -> list[tuple[float, bytes]]:
    out = []
    for start, chunk in pieces:
        remaining = max(limit - state.transmitted, 0)
        kept = chunk[:remaining]
        state.transmitted += len(kept)
        if kept:
            out.append((start, kept))
    return out
