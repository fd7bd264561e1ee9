"""Settings every phone shares, its line's settings, and the ``NAME=HOST:PORT`` node entries.

SIP timers (T1, answer delay) are deployment values scaled by the lab's time-scale; media values
(RTP timeout, gap threshold) are never scaled: 20 ms packetisation and "no gap longer than 1 s"
are properties of speech, not of the DR rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from emulator.common.addresses import Endpoint, parse_endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.transaction import TimerConfig


@dataclass(frozen=True)
class NodeEntry:
    """A SIP node a phone talks to, by name (``sip1=127.0.1.1:5060``)."""

    name: str
    endpoint: Endpoint

    @classmethod
    def parse(cls, text: str) -> NodeEntry:
        """``sip1=127.0.1.1:5060`` (the name is what logs, status and reports show)."""
        name, sep, address = text.partition("=")
        if not sep or not name:
            raise ValueError(f"{text!r} is not NAME=HOST:PORT")
        return cls(name, parse_endpoint(address))


@dataclass(frozen=True, kw_only=True)
class AnswerSettings:
    """How a line answers calls and measures their media."""

    rtp_host: str = "127.0.0.1"
    scale: TimeScale = field(default_factory=TimeScale)
    auto_answer: bool = True
    answer_delay: float = 0.0  # deployment seconds between ringing and auto-answer
    rtp_timeout: float = 5.0  # media seconds without RTP before the call counts as lost
    gap_threshold: float = 1.0  # media seconds: a longer gap means "not talking"
    max_calls: int = 4

    def __post_init__(self) -> None:
        if min(self.rtp_timeout, self.gap_threshold) <= 0:
            raise ValueError("rtp timeout and gap threshold must be > 0")
        if self.rtp_timeout <= self.gap_threshold:
            # A call ended for silence must also read "not talking": the timeout exceeds the gap.
            raise ValueError("rtp timeout must be longer than the gap threshold")
        if self.answer_delay < 0 or self.max_calls < 1:
            raise ValueError("answer delay must be >= 0 and max calls >= 1")


@dataclass(frozen=True, kw_only=True)
class LineConfig(AnswerSettings):
    user: str  # our Contact user, and the DN field of the line's logs
    nodes: tuple[NodeEntry, ...] = ()  # the nodes whose requests we may get (report names)

    def node_named(self, name: str) -> NodeEntry | None:
        return next((node for node in self.nodes if node.name == name), None)


@dataclass(frozen=True, kw_only=True)
class PhoneSettings(AnswerSettings):
    """What the softphone and the PSTN gateway both are: a named SIP UA with a phone line."""

    name: str
    dc: str = ""
    sip: Endpoint = field(default_factory=lambda: Endpoint("127.0.0.1", 0))
    t1: float = 0.5  # RFC 3261 T1, deployment seconds (timer F = 64*T1 detects a dead node)

    def __post_init__(self) -> None:
        if self.t1 <= 0:
            raise ValueError("t1 must be > 0")
        super().__post_init__()

    def line(self) -> LineConfig:
        return self.line_for(self.name, ())

    def line_for(self, user: str, nodes: tuple[NodeEntry, ...]) -> LineConfig:
        answering = {spec.name: getattr(self, spec.name) for spec in fields(AnswerSettings)}
        return LineConfig(user=user, nodes=nodes, **answering)

    @property
    def timers(self) -> TimerConfig:
        """T1 is scaled: a dead node is a DR event, detected within 64*T1 (timer F)."""
        return self.scale.scaled(TimerConfig(t1=self.t1, t2=8 * self.t1, t4=10 * self.t1))
