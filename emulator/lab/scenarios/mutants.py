"""The mutation matrix: each rule a verdict relies on, broken on purpose, and the outcomes that
must then fail.

A verdict that passes with its rule broken proves nothing. Each ``Mutant`` breaks one rule of
the guide (or one timer) with a fault-injection knob of the service that keeps it —
``--break-rule NAME`` of the SIP nodes and proxies, an option the guide gives a value for
(``--ownership-move-delay``), or the desktops' ``wwe=--give-up-after`` — runs the scenario that
depends on it, and is *caught* when exactly the outcomes listed fail: those that depend on the
rule, and no other (an outcome failing for another reason would hide a vacuous check elsewhere).
``drlab scenario mutants`` prints the matrix and exits 1 if a mutant is missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from emulator.lab.scenarios.runner import ScenarioResult

SIP_NODES = ("sip1", "sip2", "sip3", "sip4")
PROXIES = ("proxy-dc1", "proxy-dc2")


def _on(services: Sequence[str], *args: str) -> dict[str, tuple[str, ...]]:
    return {service: tuple(args) for service in services}


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str  # what the guide says, that the mutant breaks
    scenario: str
    args: Mapping[str, tuple[str, ...]]  # service -> arguments added to its command
    fails: frozenset[str]  # the outcomes that must fail, and only they


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "move-delay",
        "SIP Server waits for 30 seconds, logs the agent out, and moves the ownership",
        "s2-gws-sip-link",
        # 14 lab s: far outside 30 s ± tolerance, yet long enough that agent2's login after
        # Call2's ACW reaches sip1 before the move. A move at once would race that login, and
        # a login at sip3 after the move has no OwnershipMove logout for S2.8 to see.
        _on(SIP_NODES, "--ownership-move-delay=14"),
        frozenset({"S2.7"}),
    ),
    Mutant(
        "move-only-when-idle",
        "SIP Cluster waits until call and ACW is over and moves the ownership",
        "s1-wwe-reconnect",
        _on(SIP_NODES, "--break-rule=move-only-when-idle"),
        frozenset({"S1.11", "S1.12"}),
    ),
    Mutant(
        "move-only-when-idle-acw",
        "SIP Cluster waits until call and ACW is over and moves the ownership (ACW only)",
        "s1-acw-unregister",
        _on(SIP_NODES, "--break-rule=move-only-when-idle"),
        frozenset({"S1.15"}),
    ),
    Mutant(
        "logout-before-move",
        "SIP Server logs Agent 2 out before moving the ownership",
        "s2-gws-sip-link",
        _on(SIP_NODES, "--break-rule=logout-before-move"),
        frozenset({"S2.7", "S2.8"}),
    ),
    Mutant(
        "logout-on-disconnect",
        "SIP Server logs out an agent (logout-on-disconnect = true), but the call is preserved",
        "s2-gws-sip-link",
        _on(SIP_NODES, "--no-logout-on-disconnect"),
        # Still logged in after the call, agent1 cannot log on again (S2.6). agent2 logs off
        # its page before going to DC2, so its move (S2.7) no longer depends on this rule.
        frozenset({"S2.2", "S2.6", "S2.8"}),
    ),
    Mutant(
        "login-rejected-on-call",
        "TAgentLogin(DN1): rejected because there is a call in progress",
        "s2-gws-sip-link",
        _on(SIP_NODES, "--break-rule=login-rejected-on-call"),
        # The desktops that moved by themselves are logged in during the call (S2.10, S2.5),
        # and cannot log on again after it (S2.6, S2.7, S2.8).
        frozenset({"S2.5", "S2.6", "S2.7", "S2.8", "S2.10"}),
    ),
    Mutant(
        "out-of-service-on-lost-owner",
        "SIP Server 1 has lost connection to the DN owner: the DN is set to OutOfService",
        "s3-tc-partition",
        _on(SIP_NODES, "--break-rule=out-of-service-on-lost-owner"),
        frozenset({"S3.7", "S3.13"}),
    ),
    Mutant(
        "softphone-moves-at-once",
        "SIP Server 1 logs out an agent and immediately moves the ownership",
        "s4-softphone-dc1",
        _on(SIP_NODES, "--break-rule=softphone-moves-at-once"),
        frozenset({"S4.3"}),
    ),
    Mutant(
        "refresh-kept-until-expiry",
        "If the connection is restored when existing registration has not expired, then DN"
        " stays in service",
        "s4-path-returns",
        {"softphone2": ("--break-rule=refresh-kept-until-expiry",)},
        frozenset({"S4.6"}),
    ),
    Mutant(
        "unregister-on-session-end",
        "GWS1 submits TUnregisterAddress(DN2) ... independently of call or ACW state",
        "s1-wwe-reconnect",
        {"gws1": ("--no-unregister-on-timeout",)},
        # The unregister also logs agent1 out (it logged in through gws1): without it agent1
        # stays logged in, so S1.7's "not logged in" and S1.8's log-in fail too.
        frozenset({"S1.7", "S1.8", "S1.9", "S1.10", "S1.11", "S1.12"}),
    ),
    Mutant(
        "give-up-after-60s",
        "If not recovered after 1 minute, 'Unable to establish connection...'",
        "s1-wwe-reconnect",
        {"wwe": ("--give-up-after=20",)},
        frozenset({"S1.3"}),
    ),
    Mutant(
        "wwe-handoff",
        "WWE reconnects to the available GWS node when call is still in progress",
        "s2-gws-sip-link",
        {"wwe": ("--no-handoff",)},
        # agent1 stays on gws1, whose voice service is gone: it never logs on again (S2.6, S2.8).
        frozenset({"S2.4", "S2.5", "S2.6", "S2.8", "S2.10"}),
    ),
    Mutant(
        "sticky-repin",
        "If GWS1 is down, NGINX drops the sticky session and opens a new session to GWS2",
        "s1-gws-killed",
        _on(PROXIES, "--break-rule=sticky-repin"),
        frozenset({"S1.16"}),
    ),
    Mutant(
        "release-unreachable-call",
        "Agent 1 can submit TReleaseCall from WWE to avoid getting a stuck call on a desktop",
        "s3-tc-partition",
        _on(SIP_NODES, "--break-rule=release-unreachable-call"),
        frozenset({"S3.3"}),
    ),
)


@dataclass(frozen=True)
class MutantVerdict:
    mutant: Mutant
    failed: frozenset[str]
    error: str | None

    @property
    def caught(self) -> bool:
        return self.error is None and self.failed == self.mutant.fails

    def describe(self) -> str:
        if self.error is not None:
            return f"run failed: {self.error}"
        missed = sorted(self.mutant.fails - self.failed)
        extra = sorted(self.failed - self.mutant.fails)
        parts = [f"failed {' '.join(sorted(self.failed)) or 'nothing'}"]
        if missed:
            parts.append(f"MISSED: {' '.join(missed)} passed with the rule broken")
        if extra:
            parts.append(f"also failed: {' '.join(extra)}")
        return "; ".join(parts)


def judge(mutant: Mutant, result: ScenarioResult) -> MutantVerdict:
    failed = frozenset(o.id for o in result.outcomes if o.status != "pass")
    return MutantVerdict(mutant, failed, result.error)


def matrix_lines(verdicts: Sequence[MutantVerdict]) -> list[str]:
    lines = [f"{'rule broken':<30} {'scenario':<18} {'must fail':<22} verdict"]
    for v in verdicts:
        fails = " ".join(sorted(v.mutant.fails))
        mark = "caught" if v.caught else "MISSED"
        lines.append(f"{v.mutant.name:<30} {v.mutant.scenario:<18} {fails:<22} {mark}")
        lines.append(f"{'':<30} {v.describe()}")
    caught = sum(v.caught for v in verdicts)
    lines.append(f"{caught}/{len(verdicts)} mutants caught")
    return lines
