"""Softphone configuration: who it is, where it registers, and its timers.

SIP timers (T1, registration expiry, retry interval, answer delay) are deployment values scaled
by the lab's time-scale; media values (RTP timeout, gap threshold) are never scaled, because 20 ms
packetisation and "no gap longer than 1 s" are properties of speech, not of the DR rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clients.phoneline.config import LineConfig
from clients.softphone.registration import RegistrarEntry
from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.transaction import TimerConfig


@dataclass(frozen=True)
class SoftphoneConfig:
    name: str
    dn: str
    registrars: tuple[RegistrarEntry, ...]
    dc: str = ""
    sip: Endpoint = field(default_factory=lambda: Endpoint("127.0.0.1", 0))
    rtp_host: str = "127.0.0.1"
    scale: TimeScale = field(default_factory=TimeScale)
    expires: int = 60  # requested registration expiry, deployment seconds
    refresh_ratio: float = 0.5  # refresh when this fraction of the granted expiry has passed
    retry_interval: float = 10.0  # pause after every registrar of the list failed, deployment s
    t1: float = 0.5  # RFC 3261 T1, deployment seconds (timer F = 64*T1 detects a dead registrar)
    # Give up on one REGISTER sooner than timer F (deployment seconds), as phones' "registration
    # failover timeout" settings do; None keeps timer F.
    register_timeout: float | None = None
    auto_answer: bool = True
    answer_delay: float = 0.0  # deployment seconds between ringing and auto-answer
    rtp_timeout: float = 5.0  # media seconds without RTP before the call counts as lost
    gap_threshold: float = 1.0  # media seconds: a longer gap means "not talking"
    max_calls: int = 4

    def __post_init__(self) -> None:
        if not self.registrars:
            raise ValueError("at least one --registrar is needed")
        if not self.dn:
            raise ValueError("the DN must not be empty")
        if self.expires < 1:
            raise ValueError("expires must be >= 1 s")
        if not 0 < self.refresh_ratio < 1:
            raise ValueError("refresh ratio must be between 0 and 1")
        if min(self.t1, self.retry_interval) <= 0:
            raise ValueError("t1 and retry interval must be > 0")
        if self.register_timeout is not None and self.register_timeout <= 0:
            raise ValueError("register timeout must be > 0")
        self.line()  # the line's own checks (media timeouts, answer delay, max calls)

    def line(self) -> LineConfig:
        return LineConfig(
            user=self.dn,
            nodes=self.registrars,
            rtp_host=self.rtp_host,
            scale=self.scale,
            auto_answer=self.auto_answer,
            answer_delay=self.answer_delay,
            rtp_timeout=self.rtp_timeout,
            gap_threshold=self.gap_threshold,
            max_calls=self.max_calls,
        )

    @property
    def register_deadline(self) -> float:
        """Scaled seconds one REGISTER may take before the registrar counts as failed."""
        timers = self.timers
        if self.register_timeout is None:
            return timers.timeout
        return min(timers.timeout, self.scale(self.register_timeout))

    @property
    def timers(self) -> TimerConfig:
        """T1 is scaled: a dead registrar is a DR event, detected within 64*T1 (timer F)."""
        return TimerConfig(t1=self.t1, t2=8 * self.t1, t4=10 * self.t1).scaled(self.scale)
