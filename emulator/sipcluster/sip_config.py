"""Configuration of a node's SIP side: where it listens, and how it reaches phones and the PSTN.

Relay compatibility (DESIGN §3: cutting ``softphone2-dc1`` cuts SIP and RTP together) rests on
three kinds of address, all static so the relay's links can be static too:

- ``sip`` / ``media``: what the node binds (UDP+TCP SIP; one UDP port for every phone-facing RTP
  stream of the node, demultiplexed per call in ``media``).
- ``phone_media`` / ``pstn_media``: the address the node writes into its SDP for that peer, i.e.
  the relay link *phone → this node's media port*. Media the node sends goes back to wherever the
  peer's RTP comes from (symmetric RTP), so no link is needed the other way.
- ``phone_routes`` / ``pstn_route``: where the node sends an INVITE it starts towards a phone or
  the PSTN gateway, i.e. the relay link *this DC → the phone's SIP port*; the phone answers back
  the way the INVITE came (symmetric signalling).

Without them the node uses its own addresses and the phone's Contact (a lab without a relay).
SIP T1 is the RFC's 0.5 s (not a DR timer); the registration expiry and the ring timeout are
deployment seconds scaled by the lab's time-scale; media values are never scaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.transaction import TimerConfig


@dataclass(frozen=True)
class SipConfig:
    sip: Endpoint
    media: Endpoint
    scale: TimeScale = field(default_factory=TimeScale)
    timers: TimerConfig = field(default_factory=TimerConfig)
    tcp: bool = True
    phone_routes: dict[str, Endpoint] = field(default_factory=dict)  # DN -> node->phone link
    phone_media: dict[str, Endpoint] = field(default_factory=dict)  # DN -> phone->node RTP link
    pstn_route: Endpoint | None = None  # node -> PSTN gateway link (agent calls)
    pstn_media: Endpoint | None = None  # PSTN gateway -> node RTP link
    agent_numbers: dict[str, str] = field(default_factory=dict)  # PSTN agent DN -> number
    agent_number_format: str = "agent-{dn}"  # number of a PSTN agent DN without a mapping
    ring_timeout: float = 60.0  # deployment s: an unanswered agent leg is cancelled
    rtp_timeout: float = 5.0  # media s without RTP on a leg that had media: the call is lost
    min_expires: int = 1
    max_expires: int = 7200

    def __post_init__(self) -> None:
        if self.ring_timeout <= 0 or self.rtp_timeout < 0:
            raise ValueError("ring timeout must be > 0 and rtp timeout >= 0 (0: never)")
        if not 1 <= self.min_expires <= self.max_expires:
            raise ValueError("registration expiry bounds must be 1 <= min <= max")
        try:
            self.agent_number_format.format(dn="7001")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"agent number format needs only {{dn}}: {exc}") from None

    def agent_number(self, dn: str) -> str:
        """The PSTN number that rings a PSTN agent's phone (DESIGN: agent1 is a PSTN agent)."""
        return self.agent_numbers.get(dn) or self.agent_number_format.format(dn=dn)


def parse_mapping(text: str, *, what: str) -> tuple[str, str]:
    """``KEY=VALUE`` as the CLI takes ``--phone-route 7002=127.0.12.25:5060``."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise ValueError(f"{what} {text!r} is not KEY=VALUE")
    return key, value
