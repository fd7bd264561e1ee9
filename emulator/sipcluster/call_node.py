"""The call-node role of a SIP Cluster node: the calls it hosts and their events (DESIGN §2.2).

"Calls live on a call node (the node where the call arrived); a call never moves." The call node
applies each party's action to its call (``calls.apply``), publishes the resulting T-Lib events to
the DN's owner (here or over the TC-layer), answers the owner's call requests, and re-announces
its live calls to a DN's new or returned owner. ``ClusterNode`` plays this role alongside the
desktop-node and owner roles; sans-I/O like it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.calls import (
    STATE_EVENTS,
    Call,
    ConnIdFactory,
    Party,
    apply,
    changed_user_data,
)
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.effects import Effects
from emulator.sipcluster.owner import OwnerRole
from emulator.sipcluster.rules import CallRef
from emulator.sipcluster.states import PartyInput, TransitionError
from emulator.sipcluster.tc_messages import CallEvent, CallRequest, PartyInfo, Requester
from emulator.tlib.enums import CallState, CallType
from emulator.tlib.errors import ErrorCode, RequestRejected
from emulator.tlib.messages import (
    USER_DATA_REQUESTS,
    Event,
    EventName,
    RequestAnswerCall,
    RequestClearCall,
    RequestHoldCall,
    RequestReleaseCall,
    RequestRetrieveCall,
    RequestSendDTMF,
    encode,
    error_event,
)
from emulator.tlib.messages import (
    CallRequest as TLibCallRequest,
)

# A hook of the SIP side around a party's action: (call, party, action, requester).
PartyHook = Callable[[Call, Party, PartyInput, Requester | None], None]


def no_hook(*args: object) -> None:
    return None


_ACTIONS: dict[type[TLibCallRequest], PartyInput] = {
    RequestAnswerCall: PartyInput.ANSWER,
    RequestHoldCall: PartyInput.HOLD,
    RequestRetrieveCall: PartyInput.RETRIEVE,
    RequestReleaseCall: PartyInput.RELEASE,
    # Choice: TClearCall ends the call for every party; the lab's calls have two parties, so
    # clearing is what releasing does (both legs end), told to each party as EventReleased.
    RequestClearCall: PartyInput.RELEASE,
}
_USER_DATA_ACTIONS = frozenset(cls.NAME for cls in USER_DATA_REQUESTS)


class CallNodeRole:
    """The calls this node hosts; mixed into ``ClusterNode``, which sets the attributes below."""

    name: str
    config: NodeConfig
    effects: Effects
    log: JsonLog
    owner: OwnerRole
    calls: dict[str, Call]
    new_conn_id: ConnIdFactory
    before_party_action: PartyHook
    after_party_action: PartyHook
    # Call requests sent to another call node and not answered yet: peer -> requester -> what
    # was asked (DN, ConnID, request name).
    calls_in_flight: dict[str, dict[Requester, tuple[str, str, str]]]

    def owner_of(self, dn: str) -> str | None:
        raise NotImplementedError  # the node's view of ownership (``ClusterNode``)

    def hosted_parties(self) -> tuple[PartyInfo, ...]:
        """The live DN parties of the calls hosted here (what a TcHello reports)."""
        return tuple(
            call.info(party)
            for call in self.calls.values()
            for party in call.parties
            if party.is_dn and party.state is not CallState.RELEASED
        )

    def _announce_calls(self, dn: str) -> None:
        """Tell a DN's new owner about the calls this node hosts for it (a call never moves,
        its owner may)."""
        for call in list(self.calls.values()):
            party = call.party(dn)
            if party is not None and party.is_dn and party.state is not CallState.RELEASED:
                self._to_dn_owner(dn, restored_event(call.info(party)), call.info(party), None)

    def make_call(
        self,
        dn: str,
        destination: str,
        requester: Requester | None,
        user_data: Mapping[str, Any] | None = None,
    ) -> str:
        """A call from ``dn`` made here, on its owner ("a consultation call lives on the node
        where it was made"), with ``user_data`` attached from its first event."""
        internal = destination in self.config.dns
        call_type = CallType.INTERNAL if internal else CallType.OUTBOUND
        call = Call(
            self.new_conn_id(),
            self.name,
            call_type,
            (Party(dn, True, CallState.DIALING), Party(destination, internal, CallState.RINGING)),
            dict(user_data or {}),
        )
        self.calls[call.conn_id] = call
        self.log.event(
            "call.created", ConnID=call.conn_id, DN=dn, other=destination, call_type=str(call_type)
        )
        self._publish(call, call.parties[0], EventName.EVENT_DIALING, requester)
        self._publish(call, call.parties[1], EventName.EVENT_RINGING, None)
        return call.conn_id

    def inbound_call(self, caller: str, dn: str) -> str:
        """A customer's call arriving at this node (from the PSTN gateway) for ``dn``."""
        if dn not in self.config.dns:
            raise ValueError(f"unknown DN {dn}")
        call = Call(
            self.new_conn_id(),
            self.name,
            CallType.INBOUND,
            (Party(caller, False, CallState.DIALING), Party(dn, True, CallState.RINGING)),
        )
        self.calls[call.conn_id] = call
        self.log.event(
            "call.created", ConnID=call.conn_id, DN=dn, other=caller, call_type="Inbound"
        )
        self._publish(call, call.parties[1], EventName.EVENT_RINGING, None)
        return call.conn_id

    def party_action(
        self, conn_id: str, address: str, action: PartyInput, requester: Requester | None = None
    ) -> None:
        """Apply a party's action (a desktop's request, or the far end's answer/hang-up)."""
        call = self.calls.get(conn_id)
        party = call.party(address) if call else None
        if call is None or party is None:
            raise RequestRejected(
                ErrorCode.INVALID_CONN_ID, f"no call {conn_id} with party {address} on {self.name}"
            )
        self.before_party_action(call, party, action, requester)
        try:
            changes = apply(call, party, action)
        except TransitionError as exc:
            raise RequestRejected(
                ErrorCode.INVALID_CALL_STATE, f"call {conn_id}, party {address}: {exc}"
            ) from None
        self.log.event("call.action", ConnID=conn_id, party=address, action=str(action))
        if all(p.state is CallState.RELEASED for p in call.parties):
            del self.calls[conn_id]
        for changed, name in changes:
            self._publish(call, changed, name, requester if changed is party else None)
        self.after_party_action(call, party, action, requester)

    def _publish(
        self, call: Call, party: Party, name: EventName, requester: Requester | None
    ) -> None:
        if not party.is_dn:
            return
        info = call.info(party)
        attributes = _call_attributes(info)
        if call.user_data:
            attributes["UserData"] = call.user_data
        event = Event(name, party.address, attributes=attributes)
        live = None if party.state is CallState.RELEASED else info
        self._to_dn_owner(party.address, event, live, requester)

    def _to_dn_owner(
        self, dn: str, event: Event, party: PartyInfo | None, requester: Requester | None
    ) -> None:
        owner = self.owner_of(dn)
        if owner == self.name:
            self.owner.call_event(dn, event, party, requester)
        elif owner is None or not self.effects.to_peer(
            owner, CallEvent(dn, encode(event), party, requester)
        ):
            # The call goes on; its events cannot reach the DN's owner (TC-layer down).
            self.log.warning(
                "call.event_undeliverable",
                DN=dn,
                owner=owner,
                message=str(event.name),
                ConnID=event.get("ConnID"),
            )

    def _forward_call_request(
        self, ref: CallRef, dn: str, request: TLibCallRequest, requester: Requester
    ) -> None:
        if isinstance(request, USER_DATA_REQUESTS):
            pairs = getattr(request, "user_data", None)
            key = getattr(request, "key", None)
            message = CallRequest(ref.conn_id, dn, request.NAME, requester, pairs, key)
        elif isinstance(request, RequestSendDTMF):
            message = CallRequest(
                ref.conn_id, dn, request.NAME, requester, digits=request.dtmf_digits
            )
        else:
            message = CallRequest(ref.conn_id, dn, _ACTIONS[type(request)].value, requester)
        if ref.call_node == self.name:
            self.call_request(message)
            return
        in_flight = self.calls_in_flight.setdefault(ref.call_node, {})
        in_flight[requester] = (dn, ref.conn_id, request.NAME)
        if not self.effects.to_peer(ref.call_node, message):
            self.call_node_lost(ref.call_node)

    def call_answered(self, peer: str, requester: Requester | None, conn_id: str) -> None:
        """An event from call node ``peer``: it answers the request of ``requester``, and any
        other event of the call says the node is working through its requests."""
        in_flight = self.calls_in_flight.get(peer)
        if not in_flight:
            return
        if requester is not None:
            in_flight.pop(requester, None)
        for waiting in [r for r, (_, call, _) in in_flight.items() if call == conn_id]:
            del in_flight[waiting]

    def call_node_lost(self, peer: str) -> None:
        """The TC link to ``peer`` is gone: the call requests it never answered (written into a
        link that was already dead) get EventError 1701, as one sent after the loss would;
        none is left waiting for an answer that cannot come."""
        for requester, (dn, conn_id, name) in self.calls_in_flight.pop(peer, {}).items():
            error = error_event(
                ErrorCode.CALL_NODE_UNREACHABLE,
                f"{name}: call {conn_id} lives on {peer}, which is unreachable over the TC-layer",
                this_dn=dn,
            )
            if dn in self.owner.owned:
                self.owner.call_event(dn, error, None, requester)

    def call_request(self, message: CallRequest) -> None:
        try:
            if message.action in _USER_DATA_ACTIONS:
                self.user_data_action(message)
                return
            if message.action == RequestSendDTMF.NAME:
                self.dtmf_action(message)
                return
            self.party_action(
                message.conn_id, message.dn, PartyInput(message.action), message.requester
            )
        except RequestRejected as exc:
            error = error_event(exc.code, exc.message, this_dn=message.dn)
            self._to_dn_owner(message.dn, error, None, message.requester)

    def _live_party(self, message: CallRequest) -> tuple[Call, Party]:
        call = self.calls.get(message.conn_id)
        party = call.party(message.dn) if call else None
        if call is None or party is None or party.state is CallState.RELEASED:
            raise RequestRejected(
                ErrorCode.INVALID_CONN_ID,
                f"{message.action}: no live call {message.conn_id} with party {message.dn} "
                f"on {self.name}",
            )
        return call, party

    def dtmf_action(self, message: CallRequest) -> None:
        """RequestSendDTMF on a call hosted here: the party must be talking (Established); the
        call node sends the digits toward the other party and answers EventDtmfSent.

        Choice: the digits are logged (``call.dtmf``) and confirmed, not yet played into the
        call's RTP as RFC 4733 events: the lab's phones do not decode them."""
        call, party = self._live_party(message)
        if party.state is not CallState.ESTABLISHED:
            raise RequestRejected(
                ErrorCode.INVALID_CALL_STATE,
                f"{message.action}: party {message.dn} of call {call.conn_id} is "
                f"{party.state}, not Established",
            )
        other = call.other(party)
        self.log.event(
            "call.dtmf", ConnID=call.conn_id, DN=party.address, to=other.address,
            digits=message.digits,
        )  # fmt: skip
        info = call.info(party)
        attributes = {**_call_attributes(info), "DTMFDigits": message.digits}
        event = Event(EventName.EVENT_DTMF_SENT, party.address, attributes=attributes)
        self._to_dn_owner(party.address, event, info, message.requester)

    def user_data_action(self, message: CallRequest) -> None:
        """A user-data request on a call hosted here: the data changes on the call, and every
        live DN party of the call hears EventAttachedDataChanged with all of it (the
        requester's copy answering its request)."""
        call, party = self._live_party(message)
        call.user_data = changed_user_data(
            call.user_data, message.action, message.user_data, message.key
        )
        self.log.event(
            "call.user_data", ConnID=call.conn_id, request=message.action, keys=list(call.user_data)
        )
        for each in call.parties:
            if each.is_dn and each.state is not CallState.RELEASED:
                info = call.info(each)
                event = Event(
                    EventName.EVENT_ATTACHED_DATA_CHANGED,
                    each.address,
                    attributes={**_call_attributes(info), "UserData": call.user_data},
                )
                requester = message.requester if each is party else None
                self._to_dn_owner(each.address, event, info, requester)


def _call_attributes(party: PartyInfo) -> dict[str, Any]:
    return {
        "ConnID": party.conn_id,
        "OtherDN": party.other_dn,
        "CallType": str(party.call_type),
        "CallState": str(party.state),
        "CallNode": party.call_node,
    }


def restored_event(party: PartyInfo) -> Event:
    """The event re-announcing a live call to its DN's owner after a heal or an owner change."""
    attributes: dict[str, Any] = {**_call_attributes(party), "Restored": True}
    if party.user_data:
        attributes["UserData"] = party.user_data
    return Event(STATE_EVENTS[party.state], party.dn, attributes=attributes)
