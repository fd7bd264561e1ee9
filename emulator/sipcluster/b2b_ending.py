"""How a B2BUA call on the call node ends, and what the cluster and the control API see of it.

Every ending is an event of the call's table (``b2b_calls``): the leg that did not end it gets a
BYE when it is established (RFC 3261 §15), a CANCEL while our INVITE is pending (§9.1), or the
final response its INVITE still awaits (487 after a CANCEL, 603 when a desktop releases a
ringing call, 480 on no answer, 503 at shutdown, else the agent's failure); the media relay's
per-direction report is kept; and the call's party is released in the cluster (EventReleased,
then ACW at the owner) unless the cluster itself released it. A leg whose media had started and
then stays silent for ``rtp_timeout`` ends the call as lost (``media-timeout``).

The cluster hooks: RequestReleaseCall from a desktop ends both legs; RequestAnswerCall for a
call ringing a phone is refused — the agent answers on the phone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_cancel
from emulator.sip.errors import SipError
from emulator.sipcluster.b2b_calls import (
    AgentLeg,
    B2bCall,
    B2bEvent,
    B2bStateError,
    agent_call_id,
)
from emulator.sipcluster.calls import Call, Party
from emulator.sipcluster.media import MediaPort, Side
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_config import SipConfig
from emulator.sipcluster.states import PartyInput
from emulator.sipcluster.tc_messages import Requester
from emulator.tlib.errors import ErrorCode, RequestRejected

Spawn = Callable[[Coroutine[Any, Any, None]], None]
HISTORY = 100

# What the customer hears when the call ends before the agent answered.
_UNANSWERED_STATUS = {
    B2bEvent.CUSTOMER_CANCEL: 487,
    B2bEvent.CLUSTER_RELEASE: 603,
    B2bEvent.RING_TIMEOUT: 480,
    B2bEvent.SHUTDOWN: 503,
}


class CallEnding:
    def __init__(
        self, node: ClusterNode, config: SipConfig, media: MediaPort, log: JsonLog, spawn: Spawn
    ) -> None:
        self.node = node
        self.config = config
        self.media = media
        self.log = log
        self.spawn = spawn
        self.calls: dict[str, B2bCall] = {}
        self.ended: deque[B2bCall] = deque(maxlen=HISTORY)
        self._legs: dict[str, tuple[B2bCall, Side]] = {}  # SIP Call-ID -> call and its leg
        self._ring_timers: dict[str, asyncio.TimerHandle] = {}
        self._applying = False
        self.counters = {"total": 0, "answered": 0, "rejected": 0, "lost": 0}
        node.before_party_action = self._before_party_action
        node.after_party_action = self._after_party_action

    # -- ending ---------------------------------------------------------------------------

    def _event(self, call: B2bCall, event: B2bEvent) -> bool:
        """Apply a non-ending event (or a timer's ending one); False when the table refuses."""
        if event is B2bEvent.RING_TIMEOUT:
            self._ring_timers.pop(call.conn_id, None)
            self._end(call, event)
            return call.ended
        try:
            call.apply(event, self.media.now())
        except B2bStateError as error:
            self.log.warning("sip.call.unexpected", ConnID=call.conn_id, error=str(error))
            return False
        return True

    def _end(self, call: B2bCall, event: B2bEvent, *, status: int | None = None) -> None:
        now = self.media.now()
        try:
            call.apply(event, now)
        except B2bStateError:
            return  # already ended, or not an ending in this state
        self._cancel_ring_timer(call)
        customer = call.customer
        if not customer.invite.answered:
            customer.invite.respond(status or _UNANSWERED_STATUS.get(event, 480))
        elif customer.dialog is not None and event is not B2bEvent.CUSTOMER_BYE:
            self.spawn(self._send_bye(call, Side.CUSTOMER))
        agent = call.agent
        if agent is not None and event is not B2bEvent.AGENT_BYE:
            if agent.dialog is not None:
                self.spawn(self._send_bye(call, Side.AGENT))
            elif agent.invite is not None and agent.status is None and not agent.cancelled:
                agent.cancelled = True
                self.spawn(self._cancel_agent(call, agent))
        call.media = self.media.table.close_call(call.conn_id, now)
        if event is not B2bEvent.CLUSTER_RELEASE:
            self._cluster(call, call.caller, PartyInput.RELEASE)
        del self.calls[call.conn_id]
        self.ended.append(call)
        lost = event in (B2bEvent.MEDIA_TIMEOUT, B2bEvent.ACK_TIMEOUT)
        self.counters["lost"] += lost
        self.log.event(
            "sip.call.ended",
            level="warning" if lost else "info",
            ConnID=call.conn_id,
            DN=call.dn,
            end_reason=str(call.end_reason),
            lost=lost,
            media=call.media or None,
        )
        # Keep the Call-IDs a while: a retransmitted BYE is absorbed by its transaction, a
        # late BYE or re-INVITE is answered 481 (the call ended).
        asyncio.get_running_loop().call_later(
            self.config.timers.timeout, self._forget, call, agent_call_id(call)
        )

    def _forget(self, call: B2bCall, agent_call_id: str | None) -> None:
        for call_id in (call.customer.invite.request.call_id, agent_call_id):
            if call_id is not None and self._legs.get(call_id, (None,))[0] is call:
                del self._legs[call_id]

    def _cancel_ring_timer(self, call: B2bCall) -> None:
        handle = self._ring_timers.pop(call.conn_id, None)
        if handle is not None:
            handle.cancel()

    async def _send_bye(self, call: B2bCall, side: Side) -> None:
        if side is Side.CUSTOMER:
            ua, dest, dialog = call.customer.invite.ua, call.customer.dest, call.customer.dialog
        else:
            assert call.agent is not None
            ua, dest, dialog = call.agent.ua, call.agent.dest, call.agent.dialog
        if dialog is None:
            return
        dialog, bye = dialog.request("BYE", via=ua.via())
        try:
            response = await ua.request(bye, dest)
        except SipError as error:
            self.log.warning(
                "sip.bye.failed", ConnID=call.conn_id, leg=str(side), reason=str(error)
            )
            return
        self.log.event("sip.bye", ConnID=call.conn_id, leg=str(side), status=response.status)

    async def _cancel_agent(self, call: B2bCall, agent: AgentLeg) -> None:
        assert agent.invite is not None
        try:
            await agent.ua.request(make_cancel(agent.invite), agent.dest)
        except SipError as error:
            self.log.warning("sip.cancel.failed", ConnID=call.conn_id, reason=str(error))

    def end_all(self, event: B2bEvent = B2bEvent.SHUTDOWN) -> None:
        for call in list(self.calls.values()):
            self._end(call, event)

    def watch_media(self) -> None:
        """End answered calls whose media stopped on one leg for ``rtp_timeout``."""
        now = self.media.now()
        for call in list(self.calls.values()):
            if not call.answered:
                continue
            side = self.media.table.silent_call(call.conn_id, now, self.config.rtp_timeout)
            if side is not None:
                self.log.warning("sip.call.media_lost", ConnID=call.conn_id, silent=str(side))
                self._end(call, B2bEvent.MEDIA_TIMEOUT)

    # -- the cluster's side ---------------------------------------------------------------

    def _cluster(self, call: B2bCall, party: str, action: PartyInput) -> bool:
        """Apply a phone's action to the cluster's call; False when the cluster refuses it."""
        self._applying = True
        try:
            self.node.party_action(call.conn_id, party, action)
        except RequestRejected as error:
            self.log.warning("sip.call.cluster_refused", ConnID=call.conn_id, error=error.message)
            return False
        finally:
            self._applying = False
        return True

    def _before_party_action(
        self, call: Call, party: Party, action: PartyInput, requester: Requester | None
    ) -> None:
        if self._applying or call.conn_id not in self.calls:
            return
        if action in (PartyInput.ANSWER, PartyInput.FAR_END_ANSWER):
            raise RequestRejected(
                ErrorCode.INVALID_CALL_STATE,
                f"call {call.conn_id} rings a phone over SIP: {party.address} answers it on "
                f"the phone, not from the desktop",
            )

    def _after_party_action(
        self, call: Call, party: Party, action: PartyInput, requester: Requester | None
    ) -> None:
        b2b = self.calls.get(call.conn_id)
        if not self._applying and b2b is not None and action is PartyInput.RELEASE:
            self._end(b2b, B2bEvent.CLUSTER_RELEASE)

    def state(self) -> list[dict[str, Any]]:
        now = self.media.now()
        calls = [*self.ended, *self.calls.values()]
        return [self._report(call, now) for call in calls]

    def _report(self, call: B2bCall, now: float) -> dict[str, Any]:
        agent = call.agent
        media = call.media if call.ended else self.media.table.call_report(call.conn_id, now)
        return {
            "ConnID": call.conn_id,
            "DN": call.dn,
            "caller": call.caller,
            "state": str(call.state),
            "end_reason": str(call.end_reason) if call.end_reason else None,
            "customer": str(call.customer.dest),
            "agent": {"kind": agent.target, "dest": str(agent.dest), "status": agent.status}
            if agent is not None
            else None,
            "media": media,
        }
