"""Softphone configuration: who it is, where it registers, and its timers.

SIP timers (T1, registration expiry, retry interval, answer delay) are deployment values scaled
by the lab's time-scale; media values (RTP timeout, gap threshold) are never scaled, because 20 ms
packetisation and "no gap longer than 1 s" are properties of speech, not of the DR rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from clients.phoneline.config import LineConfig, PhoneSettings
from clients.softphone.registration_core import RegistrarEntry


@dataclass(frozen=True, kw_only=True)
class SoftphoneConfig(PhoneSettings):
    dn: str
    registrars: tuple[RegistrarEntry, ...]
    expires: int = 60  # requested registration expiry, deployment seconds
    refresh_ratio: float = 0.5  # refresh when this fraction of the granted expiry has passed
    retry_interval: float = 10.0  # pause after every registrar of the list failed, deployment s
    # Give up on one REGISTER sooner than timer F (deployment seconds), as phones' "registration
    # failover timeout" settings do; None keeps timer F.
    register_timeout: float | None = None
    # Fault-injection knob (``--break-rule refresh-kept-until-expiry``, for the scenario
    # mutation matrix): a failed refresh fails over at once instead of retrying until expiry.
    break_refresh_kept_until_expiry: bool = False

    def __post_init__(self) -> None:
        if not self.registrars:
            raise ValueError("at least one --registrar is needed")
        if not self.dn:
            raise ValueError("the DN must not be empty")
        if self.expires < 1:
            raise ValueError("expires must be >= 1 s")
        if not 0 < self.refresh_ratio < 1:
            raise ValueError("refresh ratio must be between 0 and 1")
        if self.retry_interval <= 0:
            raise ValueError("retry interval must be > 0")
        if self.register_timeout is not None and self.register_timeout <= 0:
            raise ValueError("register timeout must be > 0")
        super().__post_init__()

    def line(self) -> LineConfig:
        return self.line_for(self.dn, self.registrars)

    @property
    def register_deadline(self) -> float:
        """Scaled seconds one REGISTER may take before the registrar counts as failed."""
        timers = self.timers
        if self.register_timeout is None:
            return timers.timeout
        return min(timers.timeout, self.scale(self.register_timeout))
