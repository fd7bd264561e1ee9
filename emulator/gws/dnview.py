"""What a GWS node knows of one DN: agent state, service state and the DN's calls (sans-I/O).

This is GWS's view, fed by T-Lib events; the SIP node owns the truth. The view is node-wide (one
per registered DN, shared by every session on that DN) because GWS has one T-Lib connection and
receives each event once. The Workspace names of states live here; how T-Lib events change the
view and which Workspace messages they produce is the table in ``voice_map``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class WorkspaceAgentState(StrEnum):
    """``dn.agentState`` as the Workspace API reports it."""

    LOGGED_OUT = "LoggedOut"
    LOGGED_IN = "LoggedIn"
    READY = "Ready"
    NOT_READY = "NotReady"
    OUT_OF_SERVICE = "OutOfService"


class WorkspaceCallState(StrEnum):
    """``call.state`` as the Workspace API reports it."""

    DIALING = "Dialing"
    RINGING = "Ringing"
    ESTABLISHED = "Established"
    HELD = "Held"
    RELEASED = "Released"


class DnRole(StrEnum):
    """The DN's part in a call (T-Lib's ``ThisDNRole`` names): it placed the call, or was called."""

    ORIGINATION = "RoleOrigination"
    DESTINATION = "RoleDestination"


# DN capabilities by reported agent state: the voice requests that make sense from there.
DN_CAPABILITIES: dict[WorkspaceAgentState, tuple[str, ...]] = {
    WorkspaceAgentState.LOGGED_OUT: ("login", "make-call"),
    WorkspaceAgentState.LOGGED_IN: ("ready", "not-ready", "logout", "make-call"),
    WorkspaceAgentState.READY: ("not-ready", "logout", "make-call"),
    WorkspaceAgentState.NOT_READY: ("ready", "not-ready", "logout", "make-call"),
    WorkspaceAgentState.OUT_OF_SERVICE: (),
}

# Call capabilities by call state (the paths of ``voice/calls/{id}/...``).
CALL_CAPABILITIES: dict[WorkspaceCallState, tuple[str, ...]] = {
    WorkspaceCallState.DIALING: ("release",),
    WorkspaceCallState.RINGING: ("answer", "release"),
    WorkspaceCallState.ESTABLISHED: ("release", "hold"),
    WorkspaceCallState.HELD: ("retrieve", "release"),
    WorkspaceCallState.RELEASED: (),
}


@dataclass(frozen=True)
class CallView:
    conn_id: str
    state: WorkspaceCallState
    other_dn: str
    call_type: str
    call_node: str
    # Who called whom: set by the call's first event on the DN and kept for the call's life (an
    # answered call still has its caller). It gives the Workspace ``ani``/``dnis`` and the
    # participant's ``role``.
    role: DnRole


@dataclass
class DnView:
    number: str
    agent_id: str = ""
    agent_state: WorkspaceAgentState = WorkspaceAgentState.LOGGED_OUT
    agent_work_mode: str = "Unknown"
    in_service: bool = True
    link_up: bool = True
    registered: bool = False
    calls: dict[str, CallView] = field(default_factory=dict)

    @property
    def reported_state(self) -> WorkspaceAgentState:
        """OutOfService whenever the DN or GWS's link to its SIP node is out of service."""
        if not (self.in_service and self.link_up):
            return WorkspaceAgentState.OUT_OF_SERVICE
        return self.agent_state

    @property
    def dn_status(self) -> str:
        """``dn.dnStatus``: the DN is out of service while GWS cannot reach its SIP node either."""
        return "InService" if self.in_service and self.link_up else "OutOfService"

    @property
    def logged_in(self) -> bool:
        return self.agent_state is not WorkspaceAgentState.LOGGED_OUT
