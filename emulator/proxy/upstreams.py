"""Which upstream a request goes to: health states, cookie stickiness and round-robin (no I/O).

DESIGN §2.3 "Proxy": cookie-sticky per DC; when the pinned node is down or unhealthy the pin is
dropped and a healthy node of the same DC is pinned instead (a new cookie); clients without a pin
are spread round-robin over the healthy nodes. An upstream goes down after ``fall`` failed active
checks or at once on a passive failure (connect refused, reset or timeout while proxying), and
comes back up after ``rise`` successful active checks — NGINX Plus ``health_check`` semantics.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.common.addresses import Endpoint


class UpstreamState(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Upstream:
    name: str
    endpoint: Endpoint


@dataclass(frozen=True)
class Transition:
    upstream: str
    old: UpstreamState
    new: UpstreamState
    reason: str


@dataclass(frozen=True)
class Choice:
    upstream: Upstream
    set_cookie: bool  # the client's pin changes (or it had none): send Set-Cookie
    repinned_from: str | None = None  # the pinned upstream that could not serve


@dataclass
class _Health:
    state: UpstreamState = UpstreamState.UP
    since: float = 0.0
    last_error: str = ""
    passes: int = 0
    fails: int = 0
    checks: int = 0
    requests: int = 0
    new_pins: int = 0
    repins_to: int = 0


@dataclass
class UpstreamPool:
    upstreams: Sequence[Upstream]
    rise: int = 1
    fall: int = 1
    # Fault injection only (``--break-rule sticky-repin``): keep sending a pinned client to its
    # node when that node is down, as a proxy without the rule would.
    keep_dead_pins: bool = False
    _health: dict[str, _Health] = field(default_factory=dict)
    _next: int = 0

    def __post_init__(self) -> None:
        names = [upstream.name for upstream in self.upstreams]
        if not names or len(set(names)) != len(names):
            raise ValueError("upstream names must be given and unique")
        self._health = {name: _Health() for name in names}

    def names(self) -> list[str]:
        return [upstream.name for upstream in self.upstreams]

    def state(self, name: str) -> UpstreamState:
        return self._health[name].state

    def healthy(self) -> list[Upstream]:
        return [u for u in self.upstreams if self._health[u.name].state is UpstreamState.UP]

    def choose(self, pinned: str | None, *, exclude: Iterable[str] = ()) -> Choice | None:
        """The upstream for a request whose stickiness cookie says ``pinned`` (or nothing)."""
        excluded = set(exclude)
        known = pinned is not None and pinned in self._health
        if (
            pinned is not None
            and known
            and pinned not in excluded
            and (self._health[pinned].state is UpstreamState.UP or self.keep_dead_pins)
        ):
            upstream = next(u for u in self.upstreams if u.name == pinned)
            self._health[upstream.name].requests += 1
            return Choice(upstream, set_cookie=False)
        candidates = [u for u in self.healthy() if u.name not in excluded]
        if not candidates:
            return None
        upstream = candidates[self._next % len(candidates)]
        self._next += 1
        health = self._health[upstream.name]
        health.requests += 1
        health.new_pins += 1
        if known:
            health.repins_to += 1
        return Choice(upstream, set_cookie=True, repinned_from=pinned if known else None)

    def _move(self, name: str, new: UpstreamState, reason: str, now: float) -> Transition | None:
        health = self._health[name]
        if health.state is new:
            return None
        old, health.state, health.since = health.state, new, now
        return Transition(name, old, new, reason)

    def record_check(self, name: str, ok: bool, reason: str, now: float) -> Transition | None:
        """An active health check finished; returns the state change it causes, if any."""
        health = self._health[name]
        health.checks += 1
        if ok:
            health.passes, health.fails = health.passes + 1, 0
            if health.passes >= self.rise:
                return self._move(name, UpstreamState.UP, reason, now)
            return None
        health.passes, health.fails = 0, health.fails + 1
        health.last_error = reason
        if health.fails >= self.fall:
            return self._move(name, UpstreamState.DOWN, reason, now)
        return None

    def passive_failure(self, name: str, reason: str, now: float) -> Transition | None:
        """Proxying to ``name`` failed: down at once, until active checks bring it back."""
        health = self._health[name]
        health.passes = 0
        health.last_error = reason
        return self._move(name, UpstreamState.DOWN, f"passive: {reason}", now)

    def describe_down(self) -> str:
        return "; ".join(
            f"{name} {health.state.value}"
            + (f" ({health.last_error})" if health.last_error else "")
            for name, health in self._health.items()
        )

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "name": upstream.name,
                "endpoint": str(upstream.endpoint),
                "state": self._health[upstream.name].state.value,
                "healthy": self._health[upstream.name].state is UpstreamState.UP,
                "since": round(self._health[upstream.name].since, 3),
                "last_error": self._health[upstream.name].last_error or None,
                "checks": self._health[upstream.name].checks,
                "requests": self._health[upstream.name].requests,
                "new_pins": self._health[upstream.name].new_pins,
                "repins_to": self._health[upstream.name].repins_to,
            }
            for upstream in self.upstreams
        ]
