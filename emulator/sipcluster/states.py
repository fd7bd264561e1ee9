"""Every state machine of a SIP Cluster node, each as an enum and a transition table.

Agent state lives on the DN's owner, party (call) state on the call node, DN service state on each
desktop node, and the ownership phase of a DN on its owner. An input that a table does not list
for the current state raises ``TransitionError`` naming both, which the node answers with
``EventError`` — nothing is changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import TypeVar

from emulator.sipcluster.errors import ClusterError
from emulator.tlib.enums import AgentState, CallState, DNStatus


class TransitionError(ClusterError):
    def __init__(self, machine: str, state: Enum, event: Enum) -> None:
        super().__init__(f"{machine}: '{event.value}' is not allowed in state '{state.value}'")
        self.machine = machine
        self.state = state
        self.event = event


class AgentInput(StrEnum):
    LOGIN = "RequestAgentLogin"
    LOGIN_AUTO_IN = "RequestAgentLogin(AutoIn)"
    LOGOUT = "RequestAgentLogout"
    READY = "RequestAgentReady"
    NOT_READY = "RequestAgentNotReady"
    NOT_READY_ACW = "RequestAgentNotReady(AfterCallWork)"
    CALL_ENDED = "CallEnded"
    ACW_TIMEOUT = "AfterCallWorkTimeout"


_LOGGED_IN = (AgentState.NOT_READY, AgentState.READY, AgentState.AFTER_CALL_WORK)

AGENT_TRANSITIONS: Mapping[tuple[AgentState, AgentInput], AgentState] = {
    (AgentState.LOGGED_OUT, AgentInput.LOGIN): AgentState.NOT_READY,
    (AgentState.LOGGED_OUT, AgentInput.LOGIN_AUTO_IN): AgentState.READY,
    (AgentState.LOGGED_OUT, AgentInput.CALL_ENDED): AgentState.LOGGED_OUT,
    # A second login of the same agent (a new desktop) keeps the state it finds.
    **{(state, AgentInput.LOGIN): state for state in _LOGGED_IN},
    **{(state, AgentInput.LOGIN_AUTO_IN): state for state in _LOGGED_IN},
    **{(state, AgentInput.LOGOUT): AgentState.LOGGED_OUT for state in _LOGGED_IN},
    **{(state, AgentInput.READY): AgentState.READY for state in _LOGGED_IN},
    **{(state, AgentInput.NOT_READY): AgentState.NOT_READY for state in _LOGGED_IN},
    **{(state, AgentInput.NOT_READY_ACW): AgentState.AFTER_CALL_WORK for state in _LOGGED_IN},
    **{(state, AgentInput.CALL_ENDED): AgentState.AFTER_CALL_WORK for state in _LOGGED_IN},
    (AgentState.AFTER_CALL_WORK, AgentInput.ACW_TIMEOUT): AgentState.READY,
}


class PartyInput(StrEnum):
    ANSWER = "RequestAnswerCall"
    FAR_END_ANSWER = "FarEndAnswered"
    HOLD = "RequestHoldCall"
    RETRIEVE = "RequestRetrieveCall"
    RELEASE = "RequestReleaseCall"


_LIVE = (CallState.DIALING, CallState.RINGING, CallState.ESTABLISHED, CallState.HELD)

PARTY_TRANSITIONS: Mapping[tuple[CallState, PartyInput], CallState] = {
    (CallState.RINGING, PartyInput.ANSWER): CallState.ESTABLISHED,
    (CallState.RINGING, PartyInput.FAR_END_ANSWER): CallState.ESTABLISHED,
    (CallState.DIALING, PartyInput.FAR_END_ANSWER): CallState.ESTABLISHED,
    (CallState.ESTABLISHED, PartyInput.HOLD): CallState.HELD,
    (CallState.HELD, PartyInput.RETRIEVE): CallState.ESTABLISHED,
    **{(state, PartyInput.RELEASE): CallState.RELEASED for state in _LIVE},
}


class ServiceInput(StrEnum):
    OWNER_LOST = "OwnerUnreachable"
    OWNER_BACK = "OwnerReachable"


DN_SERVICE_TRANSITIONS: Mapping[tuple[DNStatus, ServiceInput], DNStatus] = {
    (DNStatus.IN_SERVICE, ServiceInput.OWNER_LOST): DNStatus.OUT_OF_SERVICE,
    (DNStatus.OUT_OF_SERVICE, ServiceInput.OWNER_LOST): DNStatus.OUT_OF_SERVICE,
    (DNStatus.OUT_OF_SERVICE, ServiceInput.OWNER_BACK): DNStatus.IN_SERVICE,
    (DNStatus.IN_SERVICE, ServiceInput.OWNER_BACK): DNStatus.IN_SERVICE,
}


class MovePhase(StrEnum):
    """Where the owner of a DN stands in moving it to another node."""

    STAYING = "Staying"
    WAITING_FOR_CALL_AND_ACW = "WaitingForCallAndACW"
    DELAYING = "Delaying"


class MoveInput(StrEnum):
    MOVE_NOT_WANTED = "MoveNotWanted"
    MOVE_BLOCKED = "MoveBlocked"
    MOVE_ELIGIBLE = "MoveEligible"


MOVE_TRANSITIONS: Mapping[tuple[MovePhase, MoveInput], MovePhase] = {
    **{(phase, MoveInput.MOVE_NOT_WANTED): MovePhase.STAYING for phase in MovePhase},
    **{(phase, MoveInput.MOVE_BLOCKED): MovePhase.WAITING_FOR_CALL_AND_ACW for phase in MovePhase},
    **{(phase, MoveInput.MOVE_ELIGIBLE): MovePhase.DELAYING for phase in MovePhase},
}


S = TypeVar("S", bound=Enum)
E = TypeVar("E", bound=Enum)


def _next(machine: str, table: Mapping[tuple[S, E], S], state: S, event: E) -> S:
    try:
        return table[state, event]
    except KeyError:
        raise TransitionError(machine, state, event) from None


def agent_next(state: AgentState, event: AgentInput) -> AgentState:
    return _next("agent", AGENT_TRANSITIONS, state, event)


def party_next(state: CallState, event: PartyInput) -> CallState:
    return _next("call party", PARTY_TRANSITIONS, state, event)


def service_next(state: DNStatus, event: ServiceInput) -> DNStatus:
    return _next("DN service", DN_SERVICE_TRANSITIONS, state, event)


def move_next(phase: MovePhase, event: MoveInput) -> MovePhase:
    return _next("ownership move", MOVE_TRANSITIONS, phase, event)
