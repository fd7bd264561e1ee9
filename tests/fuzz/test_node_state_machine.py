"""A SIP Cluster node under random sequences of desktop requests, customer calls, far-end
hang-ups, timers and lost desktops (Hypothesis stateful testing, the node sans-I/O).

Invariants checked after every step, each citing the rule it follows from:
- every T-Lib request gets exactly one answer carrying its ReferenceID, an event or an
  EventError (a desktop waits for that answer: none may be lost or doubled);
- nothing but the documented refusals (``RequestRejected``, answered as EventError) escapes;
- the owner's call list of a DN and the call node's calls agree: a DN lists a call exactly while
  its party on the call is live ("Calls live on a call node"; the owner reports them);
- a running ACW timer belongs to an agent in AfterCallWork: the ACW after a released call ends by
  its timer, and any state request or logout cancels it (a manual ACW, RequestAgentNotReady with
  AfterCallWork, has no timer by design: ``OwnerRole``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.states import PartyInput
from emulator.sipcluster.tc_messages import TcMessage
from emulator.tlib.enums import AgentState, AgentWorkMode, CallState
from emulator.tlib.errors import RequestRejected
from emulator.tlib.messages import (
    Event,
    Request,
    RequestAgentLogin,
    RequestAgentLogout,
    RequestAgentNotReady,
    RequestAgentReady,
    RequestAnswerCall,
    RequestAttachUserData,
    RequestClearCall,
    RequestHoldCall,
    RequestMakeCall,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestRetrieveCall,
    RequestSendDTMF,
    RequestSendEvent,
    RequestSetDNDOn,
    RequestUnregisterAddress,
)

DNS = ("7001", "7002", "9999")  # 9999 lies outside the node's DN range
ANY = Endpoint("127.0.0.1", 0)


class Recorder:
    """The node's I/O layer, recorded: what it sends each desktop, and its running timers."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, Event]] = []
        self.timers: dict[str, float] = {}

    def to_client(self, client: int, event: Event) -> None:
        self.sent.append((client, event))

    def relay_to_client(
        self, client: int, event: Mapping[str, Any], reference_id: int | None
    ) -> None:
        raise AssertionError("a node without peers relays nothing")

    def to_peer(self, peer: str, message: TcMessage) -> bool:
        return False

    def start_timer(self, key: str, delay: float) -> None:
        self.timers[key] = delay

    def cancel_timer(self, key: str) -> None:
        self.timers.pop(key, None)

    def timer_running(self, key: str) -> bool:
        return key in self.timers


def _call_request(kind: str, conn_id: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"conn_id": conn_id}
    if kind == "dtmf":
        extra["dtmf_digits"] = "1#"
    if kind == "attach":
        extra["user_data"] = {"A": "1"}
    return extra


CALL_REQUESTS: dict[str, type[Request]] = {
    "answer": RequestAnswerCall,
    "hold": RequestHoldCall,
    "retrieve": RequestRetrieveCall,
    "release": RequestReleaseCall,
    "clear": RequestClearCall,
    "dtmf": RequestSendDTMF,
    "attach": RequestAttachUserData,
}


class NodeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.io = Recorder()
        config = NodeConfig("sip1", "DC1", ANY, ANY, ANY)
        self.node = ClusterNode(config, self.io, JsonLog("sip1", "DC1", io.StringIO()))
        self.clients = [1, 2]
        self.next_client = itertools.count(3)
        self.references = itertools.count(1)

    @initialize()
    def two_agents_at_their_desktops(self) -> None:
        """Desktop 1 has 7001 and desktop 2 has 7002, both logged in: most steps then act on a
        DN that is registered and owned (the random ones still unregister, log out, ...)."""
        for client, dn in zip(self.clients, ("7001", "7002"), strict=True):
            self._send(client, RequestRegisterAddress(next(self.references), dn))
            login = RequestAgentLogin(next(self.references), dn, agent_id=f"agent-{dn}")
            self._send(client, login)

    # -- what happens to the node ------------------------------------------------------------

    def _send(self, client: int, request: Request) -> None:
        before = len(self.io.sent)
        self.node.client_request(client, request)
        answers = [
            event
            for to, event in self.io.sent[before:]
            if to == client and event.reference_id == request.reference_id
        ]
        assert len(answers) == 1, (request, answers)

    def _conn_ids(self) -> list[str]:
        return sorted(self.node.calls) or ["0000dead"]

    @rule(client=st.integers(0, 9), dn=st.sampled_from(DNS), data=st.data())
    def desktop_request(self, client: int, dn: str, data: st.DataObject) -> None:
        client = self.clients[client % len(self.clients)]
        kind = data.draw(
            st.sampled_from(
                [
                    "register",
                    "unregister",
                    "login",
                    "ready",
                    "not-ready",
                    "acw",
                    "logout",
                    "query",
                    "make-call",
                    "dnd",
                    "user-event",
                    *CALL_REQUESTS,
                ]
            )
        )
        ref = next(self.references)
        request: Request
        if kind in CALL_REQUESTS:
            conn_id = data.draw(st.sampled_from(self._conn_ids()))
            request = CALL_REQUESTS[kind](ref, dn, **_call_request(kind, conn_id))
        elif kind == "register":
            request = RequestRegisterAddress(ref, dn)
        elif kind == "unregister":
            request = RequestUnregisterAddress(ref, dn)
        elif kind == "login":
            request = RequestAgentLogin(ref, dn, agent_id=f"agent-{dn}")
        elif kind == "ready":
            request = RequestAgentReady(ref, dn)
        elif kind in ("not-ready", "acw"):
            mode = AgentWorkMode.AFTER_CALL_WORK if kind == "acw" else AgentWorkMode.UNKNOWN
            request = RequestAgentNotReady(ref, dn, agent_work_mode=mode)
        elif kind == "logout":
            request = RequestAgentLogout(ref, dn, agent_id=f"agent-{dn}")
        elif kind == "make-call":
            request = RequestMakeCall(ref, dn, other_dn=data.draw(st.sampled_from(DNS)))
        elif kind == "dnd":
            request = RequestSetDNDOn(ref, dn)
        elif kind == "user-event":
            request = RequestSendEvent(ref, dn, user_data={"K": "v"})
        else:
            request = RequestQueryAddress(ref, dn)
        self._send(client, request)

    @precondition(lambda self: bool(self.node.calls))
    @rule(data=st.data(), kind=st.sampled_from(sorted(CALL_REQUESTS)))
    def call_control(self, data: st.DataObject, kind: str) -> None:
        """A desktop of one of a live call's DNs acts on that call."""
        call = self.node.calls[data.draw(st.sampled_from(sorted(self.node.calls)))]
        dn = data.draw(st.sampled_from([p.address for p in call.parties if p.is_dn]))
        desktops = sorted(self.node.local_regs.get(dn, ())) or self.clients
        client = data.draw(st.sampled_from(desktops))
        request = CALL_REQUESTS[kind](
            next(self.references), dn, **_call_request(kind, call.conn_id)
        )
        self._send(client, request)

    @rule(dn=st.sampled_from(DNS))
    def customer_calls(self, dn: str) -> None:
        try:
            self.node.inbound_call("+15551230000", dn)
        except ValueError:
            assert dn not in self.node.config.dns

    @precondition(lambda self: bool(self.node.calls))
    @rule(data=st.data(), action=st.sampled_from([PartyInput.FAR_END_ANSWER, PartyInput.RELEASE]))
    def far_end(self, data: st.DataObject, action: PartyInput) -> None:
        call = self.node.calls[data.draw(st.sampled_from(sorted(self.node.calls)))]
        party = data.draw(st.sampled_from(call.parties))
        # A far end may not be able to do that now (answer an established call): refused.
        with contextlib.suppress(RequestRejected):
            self.node.party_action(call.conn_id, party.address, action)

    @precondition(lambda self: bool(self.io.timers))
    @rule(data=st.data())
    def a_timer_fires(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.io.timers)))
        del self.io.timers[key]
        self.node.on_timer(key)

    @rule(client=st.integers(0, 9))
    def a_desktop_is_lost(self, client: int) -> None:
        lost = self.clients.pop(client % len(self.clients))
        self.node.client_gone(lost, "reset")
        self.clients.append(next(self.next_client))

    # -- what must always hold ---------------------------------------------------------------

    @invariant()
    def owner_call_lists_match_the_calls(self) -> None:
        for dn, owned in self.node.owner.owned.items():
            for conn_id in owned.calls:
                call = self.node.calls.get(conn_id)
                party = call.party(dn) if call else None
                assert party is not None and party.state is not CallState.RELEASED, (dn, conn_id)
        for conn_id, call in self.node.calls.items():
            for party in call.parties:
                owned = self.node.owner.owned.get(party.address)
                if party.is_dn and owned is not None and party.state is not CallState.RELEASED:
                    assert conn_id in owned.calls, (party.address, conn_id)

    @invariant()
    def an_acw_timer_runs_only_in_after_call_work(self) -> None:
        for dn, owned in self.node.owner.owned.items():
            if self.io.timer_running(f"acw:{dn}"):
                assert owned.agent_state is AgentState.AFTER_CALL_WORK, (dn, owned.agent_state)


# Examples, and steps in each, come from the profile (tests/fuzz/conftest.py).
test_a_node_keeps_its_invariants_under_random_requests_and_faults = NodeMachine.TestCase
