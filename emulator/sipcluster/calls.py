"""Calls hosted on a node (the call node): parties, their states and the events they produce.

"Calls live on a call node (the node where the call arrived); a call never moves." A call has two
parties, each a cluster DN or an external (PSTN) number. Party transitions come from
``states.PARTY_TRANSITIONS``; what each transition tells each DN party is decided here.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.sipcluster.states import PartyInput, party_next
from emulator.sipcluster.tc_messages import PartyInfo
from emulator.tlib.enums import CallState, CallType
from emulator.tlib.errors import ErrorCode, RequestRejected
from emulator.tlib.messages import (
    EventName,
    RequestAttachUserData,
    RequestDeletePair,
    RequestDeleteUserData,
    RequestUpdateUserData,
)


@dataclass
class Party:
    address: str  # a DN, or an external number
    is_dn: bool
    state: CallState


@dataclass
class Call:
    conn_id: str
    node: str
    call_type: CallType
    parties: tuple[Party, Party]
    # "User data lives with the call on its call node": replaced on each change, never changed
    # in place, so the PartyInfo and events that carry it share it safely.
    user_data: Mapping[str, Any] = field(default_factory=dict)

    def party(self, address: str) -> Party | None:
        return next((p for p in self.parties if p.address == address), None)

    def other(self, party: Party) -> Party:
        return self.parties[1] if party is self.parties[0] else self.parties[0]

    def info(self, party: Party) -> PartyInfo:
        return PartyInfo(
            conn_id=self.conn_id,
            dn=party.address,
            state=party.state,
            other_dn=self.other(party).address,
            call_type=self.call_type,
            call_node=self.node,
            user_data=self.user_data,
        )


class ConnIdFactory:
    """16-hex-digit ConnIDs as Genesys prints them, unique across nodes (node hash + counter)."""

    def __init__(self, node: str) -> None:
        self._prefix = zlib.crc32(node.encode()) & 0xFFFF
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix:04x}{next(self._counter):012x}"


# Which event a DN party receives when its own state changes.
STATE_EVENTS: dict[CallState, EventName] = {
    CallState.DIALING: EventName.EVENT_DIALING,
    CallState.RINGING: EventName.EVENT_RINGING,
    CallState.ESTABLISHED: EventName.EVENT_ESTABLISHED,
    CallState.HELD: EventName.EVENT_HELD,
    CallState.RELEASED: EventName.EVENT_RELEASED,
}


def apply(call: Call, party: Party, action: PartyInput) -> list[tuple[Party, EventName]]:
    """Apply ``action`` by ``party``; return the (party, event) pairs the change produces.

    Answering connects the caller too; releasing ends the call for both parties; hold and
    retrieve concern the requesting party only. Raises ``TransitionError`` with nothing changed.
    """
    new_state = party_next(party.state, action)
    other = call.other(party)
    if action is PartyInput.RELEASE:
        party.state = other.state = CallState.RELEASED
        return [(party, EventName.EVENT_RELEASED), (other, EventName.EVENT_RELEASED)]
    party.state = new_state
    if action in (PartyInput.ANSWER, PartyInput.FAR_END_ANSWER):
        changes = [(party, EventName.EVENT_ESTABLISHED)]
        if other.state in (CallState.DIALING, CallState.RINGING):
            other.state = CallState.ESTABLISHED
            changes.append((other, EventName.EVENT_ESTABLISHED))
        return changes
    if action is PartyInput.RETRIEVE:
        return [(party, EventName.EVENT_RETRIEVED)]
    return [(party, STATE_EVENTS[new_state])]


def changed_user_data(
    current: Mapping[str, Any], request: str, pairs: Mapping[str, Any] | None, key: str | None
) -> dict[str, Any]:
    """The call's user data after a user-data request (``RequestAttachUserData`` ...).

    Choice: the lab keeps one value per key, so attach and update both set each given key (a
    T-Server may keep a second value under a key attached twice); ``RequestDeletePair`` of a key
    the call does not have is refused (EventError) with nothing changed.
    """
    if request in (RequestAttachUserData.NAME, RequestUpdateUserData.NAME):
        return {**current, **(pairs or {})}
    if request == RequestDeletePair.NAME:
        if key not in current:
            raise RequestRejected(
                ErrorCode.INVALID_ATTRIBUTE, f"{request}: the call has no user data key {key!r}"
            )
        return {k: v for k, v in current.items() if k != key}
    if request == RequestDeleteUserData.NAME:
        return {}
    raise ValueError(f"not a user-data request: {request}")
