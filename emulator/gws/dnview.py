"""What a GWS node knows of one DN: agent state, service state and the DN's calls (sans-I/O).

This is GWS's view, fed by T-Lib events; the SIP node owns the truth. The view is node-wide (one
per registered DN, shared by every session on that DN) because GWS has one T-Lib connection and
receives each event once. The Workspace names of states live here; how T-Lib events change the
view and which Workspace messages they produce is the table in ``voice_map``; which operations
each state allows is ``capabilities``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class WorkspaceAgentState(StrEnum):
    """``dn.agentState`` as the Workspace API reports it."""

    LOGGED_OUT = "LoggedOut"
    LOGGED_IN = "LoggedIn"
    READY = "Ready"
    NOT_READY = "NotReady"
    OUT_OF_SERVICE = "OutOfService"


class WorkspaceCallState(StrEnum):
    """``call.state`` as the Workspace API reports it (the Java client's ``CallState``)."""

    DIALING = "Dialing"
    RINGING = "Ringing"
    ESTABLISHED = "Established"
    HELD = "Held"
    RELEASED = "Released"
    # Marked done by the desktop (``voice/calls/{id}/complete``): GWS forgets the call.
    COMPLETED = "Completed"


class DnRole(StrEnum):
    """The DN's part in a call (T-Lib's ``ThisDNRole`` names): it placed the call, or was called;
    ``RoleNewParty`` is a party added by a conference."""

    ORIGINATION = "RoleOrigination"
    DESTINATION = "RoleDestination"
    NEW_PARTY = "RoleNewParty"


# One user data pair as the Workspace API carries it: key, value (str, int or a nested list).
UserData = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Party:
    """``call.participants[]``: another party of the call and its role."""

    number: str
    role: DnRole


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
    # The held call a consultation was made from (``call.parentConnId``).
    parent_conn_id: str = ""
    # Set on the one notification where a transfer or conference gave the call a new ConnID.
    previous_conn_id: str = ""
    # Every other party; empty means the one ``other_dn`` (a two-party call).
    parties: tuple[Party, ...] = ()
    user_data: UserData = ()

    @property
    def consultation(self) -> bool:
        return bool(self.parent_conn_id)

    @property
    def conference(self) -> bool:
        return len(self.parties) > 1


@dataclass
class DnView:
    number: str
    agent_id: str = ""
    agent_state: WorkspaceAgentState = WorkspaceAgentState.LOGGED_OUT
    agent_work_mode: str = "Unknown"
    # The not-ready reason code of the last RequestAgentNotReady (``dn.reasons``).
    reason_code: str = ""
    dnd: bool = False
    forward_to: str = ""
    in_service: bool = True
    link_up: bool = True
    registered: bool = False
    # The voice service was reported unavailable: report it available on the next snapshot.
    service_lost: bool = False
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

    def live_calls(self) -> list[CallView]:
        """The calls the SIP node still has (a Released call waits here to be marked done)."""
        released = WorkspaceCallState.RELEASED
        return [call for call in self.calls.values() if call.state is not released]
