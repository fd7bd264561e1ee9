"""The SIP Cluster rules of the seed (DESIGN §2.2), each in one named function.

Each docstring quotes the line of "GWS Disaster Recovery Scenarios" it implements. The node
(``node.py``) calls these; it never re-decides a rule inline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from emulator.sipcluster.states import MovePhase
from emulator.tlib.enums import AgentState, AgentWorkMode, CallState, CallType, PhoneType
from emulator.tlib.errors import ErrorCode, RequestRejected


class Rule(StrEnum):
    """The rules a fault-injection knob can break: ``--break-rule NAME`` on a node, for the
    scenario mutation matrix (``drlab scenario mutants``), which shows that the outcomes
    depending on a rule fail without it. Never broken by default; a node that breaks one says
    so in its log at start (``rules.broken``)."""

    MOVE_ONLY_WHEN_IDLE = "move-only-when-idle"
    LOGOUT_BEFORE_MOVE = "logout-before-move"
    LOGIN_REJECTED_ON_CALL = "login-rejected-on-call"
    OUT_OF_SERVICE_ON_LOST_OWNER = "out-of-service-on-lost-owner"
    SOFTPHONE_MOVES_AT_ONCE = "softphone-moves-at-once"
    RELEASE_UNREACHABLE_CALL = "release-unreachable-call"


Broken = frozenset[Rule]
NONE_BROKEN: Broken = frozenset()


@dataclass(frozen=True)
class Desktop:
    """A desktop's registration of a DN: the node it reached the cluster through, and its
    connection on that node."""

    node: str
    client: int


@dataclass
class Agent:
    agent_id: str
    state: AgentState
    work_mode: AgentWorkMode
    login_desktop: Desktop


@dataclass
class CallRef:
    """A call of the DN as its owner knows it; the call itself lives on ``call_node``."""

    conn_id: str
    call_node: str
    state: CallState
    other_dn: str
    call_type: CallType
    user_data: Mapping[str, Any] = field(default_factory=dict)  # as the call node last said


@dataclass
class OwnedDn:
    """Everything the owner of a DN holds about it."""

    dn: str
    epoch: int
    phone: PhoneType
    agent: Agent | None = None
    desktops: list[Desktop] = field(default_factory=list)  # in registration order
    calls: dict[str, CallRef] = field(default_factory=dict)
    phone_node: str | None = None  # where the softphone is registered
    move_phase: MovePhase = MovePhase.STAYING
    # The DN's settings (RequestSetDNDOn, RequestSetCallForward), kept by its owner. Choice: an
    # ownership move does not carry them (``OwnerRole.adopt`` starts a fresh record, as the agent
    # is logged out before a move); they do not yet change how the DN's calls are routed.
    dnd: bool = False
    forward_to: str = ""

    @property
    def agent_state(self) -> AgentState:
        return self.agent.state if self.agent else AgentState.LOGGED_OUT


Reachable = Callable[[str], bool]


def visible_calls(dn: OwnedDn, reachable: Reachable) -> list[CallRef]:
    """Calls whose call node the owner can reach. "there is no call reported in the desktop
    because the call is in the disconnected DC": a call on an unreachable node is neither
    reported nor counted as a call in progress."""
    return [ref for ref in dn.calls.values() if reachable(ref.call_node)]


def check_login_allowed(
    dn: OwnedDn, agent_id: str, reachable: Reachable, broken: Broken = NONE_BROKEN
) -> None:
    """ "TAgentLogin(DN1): rejected because there is a call in progress." """
    calls = visible_calls(dn, reachable)
    if calls and Rule.LOGIN_REJECTED_ON_CALL not in broken:
        conn_ids = ", ".join(ref.conn_id for ref in calls)
        raise RequestRejected(
            ErrorCode.CALL_IN_PROGRESS,
            f"agent login rejected on DN {dn.dn}: a call is in progress (ConnID {conn_ids})",
        )
    if dn.agent is not None and dn.agent.agent_id != agent_id:
        raise RequestRejected(
            ErrorCode.AGENT_ALREADY_LOGGED_IN,
            f"agent {dn.agent.agent_id} is already logged in on DN {dn.dn}",
        )


def ownership_follows_registration(phone: PhoneType, owner_reachable: bool) -> bool:
    """Who may take ownership when a desktop registers a DN.

    "SIP Cluster DN ownership for the PSTN agents is established on the SIP Cluster node where
    GWS is connected": a PSTN DN with no owner (or whose owner this node cannot reach, as when
    "Agent 1 can restore 3pcc control over the call by reconnecting to DC2") is claimed by the
    desktop's node. A softphone DN follows its SIP REGISTER only: "Agent 2 can not log on to
    any GWS node in DC1" while its owner in DC2 is unreachable.
    """
    return phone is PhoneType.PSTN and not owner_reachable


def move_target(owner: str, dn: OwnedDn, reachable: Reachable) -> str | None:
    """The node a DN's ownership should move to, or None to stay.

    PSTN DN: "SIP Cluster doesn't move the ownership because new desktop application connects to
    the same SIP Cluster node"; it moves to the node of the newest desktop only once no desktop
    is left on the owner — "If GWS1@DC1 doesn't submit TUnregisterAddress(DN2) and doesn't
    disconnect from SIP Server, then ownership is not transferred." Choice: a desktop on another
    node of the same DC moves ownership too, by the same rule (the guide only shows other DCs).
    Softphone DN: ownership follows the phone's registration.
    """
    if dn.phone is PhoneType.SOFTPHONE:
        if dn.phone_node is not None and dn.phone_node != owner and reachable(dn.phone_node):
            return dn.phone_node
        return None
    if any(desktop.node == owner for desktop in dn.desktops):
        return None
    for desktop in reversed(dn.desktops):
        if reachable(desktop.node):
            return desktop.node
    return None


def move_blocked(dn: OwnedDn, reachable: Reachable, broken: Broken = NONE_BROKEN) -> bool:
    """ "SIP Cluster waits until call and ACW is over and moves the ownership"."""
    if Rule.MOVE_ONLY_WHEN_IDLE in broken:
        return False
    return bool(visible_calls(dn, reachable)) or dn.agent_state is AgentState.AFTER_CALL_WORK


def move_waits_for_delay(phone: PhoneType, broken: Broken = NONE_BROKEN) -> bool:
    """PSTN: "SIP Server waits for 30 seconds, logs the agent out, and moves the ownership."
    Softphone: "SIP Server 1 @ DC1 logs out an agent and immediately moves the ownership." """
    return phone is PhoneType.PSTN or Rule.SOFTPHONE_MOVES_AT_ONCE in broken


def logs_out_before_move(broken: Broken = NONE_BROKEN) -> bool:
    """ "SIP Server logs Agent 2 out before moving the ownership and Agent 2 has to log on
    again." """
    return Rule.LOGOUT_BEFORE_MOVE not in broken


def release_clears_unreachable_call(broken: Broken = NONE_BROKEN) -> bool:
    """ "As soon as actual call is over, Agent 1 can submit TReleaseCall from WWE to avoid getting
    a stuck call on a desktop": a release of a call whose node is unreachable clears it from the
    desktop instead of failing like other call control (EventError 1701)."""
    return Rule.RELEASE_UNREACHABLE_CALL not in broken


def out_of_service_on_lost_owner(broken: Broken = NONE_BROKEN) -> bool:
    """ "SIP Server 1 @ DC1 has lost connection to the DN owner. Agent 2 is logged out and the DN
    is set to OutOfService state." """
    return Rule.OUT_OF_SERVICE_ON_LOST_OWNER not in broken


def logout_on_disconnect(dn: OwnedDn, gone: Callable[[Desktop], bool], enabled: bool) -> bool:
    """ "SIP Server logs out an agent (logout-on-disconnect = true), but the call is preserved":
    the agent is logged out when the desktop connection that logged it in goes away — its T-Lib
    connection closes, or the TC link between its desktop node and the owner is lost."""
    return enabled and dn.agent is not None and gone(dn.agent.login_desktop)


def check_forward_target(dn: OwnedDn, target: str) -> None:
    """RequestSetCallForward: "forward the DN's calls to another number". A DN forwarded to
    itself would loop; it is refused (EventError) and the setting stays as it was. Choice: any
    other number is taken, an external one as well as a DN of the lab, as SIP Server does."""
    if target == dn.dn:
        raise RequestRejected(
            ErrorCode.INVALID_ATTRIBUTE,
            f"RequestSetCallForward: DN {dn.dn} cannot forward to itself",
        )
