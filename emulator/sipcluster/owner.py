"""The owner's side of a SIP Cluster node: agent state, desktops, call references and moves.

"Each DN has exactly one owner node in the cluster view." The owner answers every agent request
for its DNs, fans each event out to the desktop nodes of the DN, runs ACW, logout-on-disconnect
and the ownership move (rules in ``rules.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sipcluster import rules
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.effects import Effects
from emulator.sipcluster.rules import Agent, CallRef, Desktop, OwnedDn
from emulator.sipcluster.states import (
    AgentInput,
    MoveInput,
    MovePhase,
    TransitionError,
    agent_next,
    move_next,
)
from emulator.sipcluster.tc_messages import DeskEvent, OwnerRecord, PartyInfo, Requester
from emulator.tlib.enums import AgentState, AgentWorkMode, DNStatus
from emulator.tlib.errors import ErrorCode, RequestRejected
from emulator.tlib.messages import (
    CallRequest as TLibCallRequest,
)
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    RequestAgentLogin,
    RequestAgentLogout,
    RequestAgentNotReady,
    RequestAgentReady,
    RequestCancelCallForward,
    RequestMakeCall,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestSendEvent,
    RequestSetCallForward,
    RequestSetDNDOff,
    RequestSetDNDOn,
    RequestUnregisterAddress,
    encode,
    error_event,
)

Deliver = Callable[[str, Event, Requester | None, bool], None]


class OwnerRole:
    def __init__(
        self,
        config: NodeConfig,
        effects: Effects,
        log: JsonLog,
        reachable: Callable[[str], bool],
        deliver_local: Deliver,
    ) -> None:
        self.config = config
        self.name = config.name
        self.effects = effects
        self.log = log
        self.reachable = reachable
        self.deliver_local = deliver_local
        self.owned: dict[str, OwnedDn] = {}
        self.on_move: Callable[[OwnedDn, str], None] = lambda dn, target: None
        self.on_call_request: Callable[[CallRef, str, TLibCallRequest, Requester], None] = (
            lambda *args: None
        )
        self.on_make_call: Callable[[str, str, Requester, Mapping[str, Any]], object] = (
            lambda *args: None
        )

    # -- delivery -------------------------------------------------------------------------

    def reply(self, dn: str, event: Event, requester: Requester) -> None:
        self._send(requester.node, dn, event, requester, only_requester=True)

    def fanout(self, owned: OwnedDn, event: Event, requester: Requester | None = None) -> None:
        """Send ``event`` to every desktop node that has a desktop registered on the DN."""
        nodes = dict.fromkeys(desktop.node for desktop in owned.desktops)
        if requester is not None and requester.node not in nodes:
            nodes[requester.node] = None
        for node in nodes:
            self._send(node, owned.dn, event, requester, only_requester=False)
        self.log.event(
            "tlib.event",
            message=str(event.name),
            DN=owned.dn,
            AgentID=event.get("AgentID"),
            ConnID=event.get("ConnID"),
        )

    def _send(
        self, node: str, dn: str, event: Event, requester: Requester | None, only_requester: bool
    ) -> None:
        if node == self.name:
            self.deliver_local(dn, event, requester, only_requester)
        else:
            self.effects.to_peer(node, DeskEvent(dn, encode(event), requester, only_requester))

    def snapshot(self, owned: OwnedDn) -> dict[str, Any]:
        agent = owned.agent
        return {
            "AgentID": agent.agent_id if agent else None,
            "AgentState": str(owned.agent_state),
            "AgentWorkMode": str(agent.work_mode if agent else AgentWorkMode.UNKNOWN),
            "DNStatus": str(DNStatus.IN_SERVICE),
            "Owner": self.name,
            "OwnerEpoch": owned.epoch,
            "PhoneType": str(owned.phone),
            "DND": "On" if owned.dnd else "Off",
            "ForwardTo": owned.forward_to,
            "Calls": [
                {
                    "ConnID": ref.conn_id,
                    "CallState": str(ref.state),
                    "OtherDN": ref.other_dn,
                    "CallType": str(ref.call_type),
                    "CallNode": ref.call_node,
                    **({"UserData": ref.user_data} if ref.user_data else {}),
                }
                for ref in rules.visible_calls(owned, self.reachable)
            ],
        }

    def _agent_event(self, owned: OwnedDn, name: EventName, **extra: Any) -> Event:
        agent = owned.agent
        attributes: dict[str, Any] = {
            "AgentID": agent.agent_id if agent else extra.pop("AgentID", None),
            "AgentWorkMode": str(agent.work_mode) if agent else None,
            **extra,
        }
        return Event(
            name,
            this_dn=owned.dn,
            attributes={k: v for k, v in attributes.items() if v is not None},
        )

    # -- requests -------------------------------------------------------------------------

    def request(self, dn: str, requester: Requester, request: Request, resync: bool) -> None:
        owned = self.owned[dn]
        try:
            self._request(owned, requester, request, resync)
        except RequestRejected as exc:
            self.reply(dn, error_event(exc.code, exc.message, this_dn=dn), requester)
        except TransitionError as exc:
            message = f"{request.NAME} on DN {dn}: {exc}"
            error = error_event(ErrorCode.INVALID_AGENT_STATE, message, this_dn=dn)
            self.reply(dn, error, requester)

    def _request(
        self, owned: OwnedDn, requester: Requester, request: Request, resync: bool
    ) -> None:
        if isinstance(request, RequestQueryAddress):  # first: the one a desktop polls with
            info = Event(EventName.EVENT_ADDRESS_INFO, owned.dn, None, self.snapshot(owned))
            self.reply(owned.dn, info, requester)
            return
        desktop = Desktop(requester.node, requester.client)
        if isinstance(request, RequestRegisterAddress):
            if desktop in owned.desktops:
                owned.desktops.remove(desktop)
            owned.desktops.append(desktop)
            name = EventName.EVENT_DN_BACK_IN_SERVICE if resync else EventName.EVENT_REGISTERED
            self.reply(owned.dn, Event(name, owned.dn, None, self.snapshot(owned)), requester)
            self.evaluate_move(owned)
        elif isinstance(request, RequestUnregisterAddress):
            self.desktop_gone(owned, desktop, "Unregister")
            self.reply(owned.dn, Event(EventName.EVENT_UNREGISTERED, owned.dn), requester)
        elif isinstance(request, RequestAgentLogin):
            self._login(owned, request, desktop, requester)
        elif isinstance(request, RequestAgentLogout):
            self.logout(owned, "Request", requester)
        elif isinstance(request, RequestAgentReady):
            self._set_state(owned, AgentInput.READY, request.agent_work_mode, requester)
        elif isinstance(request, RequestAgentNotReady):
            acw = request.agent_work_mode is AgentWorkMode.AFTER_CALL_WORK
            event = AgentInput.NOT_READY_ACW if acw else AgentInput.NOT_READY
            self._set_state(owned, event, request.agent_work_mode, requester)
        elif isinstance(request, TLibCallRequest):
            self._call_request(owned, request, requester)
        elif isinstance(request, RequestMakeCall):
            self.on_make_call(owned.dn, request.other_dn, requester, request.user_data)
        elif isinstance(request, RequestSetDNDOn | RequestSetDNDOff):
            owned.dnd = isinstance(request, RequestSetDNDOn)
            name = EventName.EVENT_DND_ON if owned.dnd else EventName.EVENT_DND_OFF
            self.fanout(owned, Event(name, owned.dn), requester)
        elif isinstance(request, RequestSetCallForward):
            rules.check_forward_target(owned, request.other_dn)
            owned.forward_to = request.other_dn
            attributes = {"OtherDN": owned.forward_to}
            forward = Event(EventName.EVENT_FORWARD_SET, owned.dn, None, attributes)
            self.fanout(owned, forward, requester)
        elif isinstance(request, RequestCancelCallForward):
            owned.forward_to = ""
            self.fanout(owned, Event(EventName.EVENT_FORWARD_CANCEL, owned.dn), requester)
        elif isinstance(request, RequestSendEvent):
            # TSendUserEvent: told to every desktop of the DN, the requester's copy answering.
            told: dict[str, Any] = {"UserData": request.user_data}
            if request.call_uuid:
                told["CallUuid"] = request.call_uuid
            self.fanout(owned, Event(EventName.EVENT_USER_EVENT, owned.dn, None, told), requester)

    def _login(
        self, owned: OwnedDn, request: RequestAgentLogin, desktop: Desktop, requester: Requester
    ) -> None:
        rules.check_login_allowed(owned, request.agent_id, self.reachable, self.config.broken)
        if owned.agent is not None:
            # Choice: the agent already logged in on the DN logging in again (a desktop that
            # came back through another node, S1.15) keeps its state: ACW runs on with its
            # timer, and a pending ownership move still waits for its end ("waits until call
            # and ACW is over"). Only the desktop it logged in through is new.
            owned.agent.login_desktop = desktop
            self.fanout(owned, self._agent_event(owned, EventName.EVENT_AGENT_LOGIN), requester)
            return
        auto_in = request.agent_work_mode is AgentWorkMode.AUTO_IN
        event_in = AgentInput.LOGIN_AUTO_IN if auto_in else AgentInput.LOGIN
        state = agent_next(owned.agent_state, event_in)
        owned.agent = Agent(request.agent_id, state, request.agent_work_mode, desktop)
        self.effects.cancel_timer(f"acw:{owned.dn}")
        self.fanout(owned, self._agent_event(owned, EventName.EVENT_AGENT_LOGIN), requester)
        if state is AgentState.READY:
            self.fanout(owned, self._agent_event(owned, EventName.EVENT_AGENT_READY))

    def _set_state(
        self,
        owned: OwnedDn,
        event_in: AgentInput,
        work_mode: AgentWorkMode,
        requester: Requester | None,
    ) -> None:
        if owned.agent is None:
            raise RequestRejected(
                ErrorCode.AGENT_NOT_LOGGED_IN, f"no agent is logged in on DN {owned.dn}"
            )
        owned.agent.state = agent_next(owned.agent.state, event_in)
        owned.agent.work_mode = work_mode
        if owned.agent.state is not AgentState.AFTER_CALL_WORK or requester is not None:
            # A manual ACW has no timer; only the one after a released call ends by itself.
            self.effects.cancel_timer(f"acw:{owned.dn}")
        ready = owned.agent.state is AgentState.READY
        name = EventName.EVENT_AGENT_READY if ready else EventName.EVENT_AGENT_NOT_READY
        self.fanout(owned, self._agent_event(owned, name), requester)
        self.evaluate_move(owned)

    def logout(self, owned: OwnedDn, reason: str, requester: Requester | None = None) -> None:
        if owned.agent is None:
            if requester is not None:
                raise RequestRejected(
                    ErrorCode.AGENT_NOT_LOGGED_IN, f"no agent is logged in on DN {owned.dn}"
                )
            return
        event = self._agent_event(owned, EventName.EVENT_AGENT_LOGOUT, Reason=reason)
        owned.agent = None
        self.effects.cancel_timer(f"acw:{owned.dn}")
        self.log.event("agent.logout", DN=owned.dn, AgentID=event.get("AgentID"), reason=reason)
        self.fanout(owned, event, requester)
        self.evaluate_move(owned)

    def desktop_gone(self, owned: OwnedDn, desktop: Desktop, reason: str) -> None:
        if desktop in owned.desktops:
            owned.desktops.remove(desktop)
        if rules.logout_on_disconnect(
            owned, lambda d: d == desktop, self.config.logout_on_disconnect
        ):
            self.logout(owned, "LogoutOnDisconnect" if reason != "Unregister" else reason)
        self.evaluate_move(owned)

    def node_lost(self, node: str) -> None:
        """The TC link to ``node`` is down: its desktops are gone, its calls unreachable."""
        for owned in list(self.owned.values()):
            lost = [desktop for desktop in owned.desktops if desktop.node == node]
            owned.desktops = [desktop for desktop in owned.desktops if desktop.node != node]
            if rules.logout_on_disconnect(
                owned, lambda d: d.node == node, self.config.logout_on_disconnect
            ):
                self.logout(owned, "LogoutOnDisconnect")
            if lost or any(ref.call_node == node for ref in owned.calls.values()):
                self.evaluate_move(owned)

    # -- calls ----------------------------------------------------------------------------

    def _call_request(self, owned: OwnedDn, request: TLibCallRequest, requester: Requester) -> None:
        ref = owned.calls.get(request.conn_id)
        if ref is None:
            raise RequestRejected(
                ErrorCode.INVALID_CONN_ID,
                f"{request.NAME}: DN {owned.dn} has no call with ConnID {request.conn_id}",
            )
        if not self.reachable(ref.call_node):
            if isinstance(request, RequestReleaseCall) and rules.release_clears_unreachable_call(
                self.config.broken
            ):
                # "Agent 1 can submit TReleaseCall from WWE to avoid getting a stuck call".
                self.call_event(owned.dn, _released(owned.dn, ref), None, requester)
                return
            raise RequestRejected(
                ErrorCode.CALL_NODE_UNREACHABLE,
                f"{request.NAME}: call {ref.conn_id} lives on {ref.call_node}, "
                f"which is unreachable over the TC-layer",
            )
        self.on_call_request(ref, owned.dn, request, requester)

    def call_event(
        self,
        dn: str,
        event: Event,
        party: PartyInfo | None,
        requester: Requester | None,
        *,
        announce_known: bool = False,
    ) -> None:
        """A call event for one of our DNs, from its call node (or cleared by us)."""
        owned = self.owned[dn]
        if event.name is EventName.EVENT_ERROR:
            if requester is not None:
                self.reply(dn, event, requester)
            return
        conn_id = str(event.get("ConnID"))
        known = owned.calls.get(conn_id)
        if (
            event.get("Restored")
            and not announce_known
            and known is not None
            and party is not None
            and (known.state, known.call_node, known.user_data)
            == (party.state, party.call_node, party.user_data)
        ):
            return  # already known as it is: nothing to tell the desktops
        if party is None:
            owned.calls.pop(conn_id, None)
        else:
            owned.calls[conn_id] = CallRef(
                party.conn_id,
                party.call_node,
                party.state,
                party.other_dn,
                party.call_type,
                party.user_data,
            )
        self.fanout(owned, event, requester)
        if party is None:
            self._call_ended(owned)
        else:
            self.evaluate_move(owned)

    def _call_ended(self, owned: OwnedDn) -> None:
        """ "Call is released and ACW is over": ACW lasts after-call-work-period, or until the
        agent goes Ready/NotReady; then the agent is Ready."""
        if owned.agent is None or owned.calls:
            self.evaluate_move(owned)
            return
        owned.agent.state = agent_next(owned.agent.state, AgentInput.CALL_ENDED)
        owned.agent.work_mode = AgentWorkMode.AFTER_CALL_WORK
        self.fanout(owned, self._agent_event(owned, EventName.EVENT_AGENT_NOT_READY))
        self.effects.start_timer(f"acw:{owned.dn}", self.config.timers.after_call_work_period)
        self.evaluate_move(owned)

    def acw_over(self, dn: str) -> None:
        owned = self.owned.get(dn)
        if owned is None or owned.agent_state is not AgentState.AFTER_CALL_WORK:
            return
        self._set_state(owned, AgentInput.ACW_TIMEOUT, AgentWorkMode.MANUAL_IN, None)

    # -- ownership moves ------------------------------------------------------------------

    def evaluate_move(self, owned: OwnedDn) -> None:
        if owned.dn not in self.owned:
            return
        target = rules.move_target(self.name, owned, self.reachable)
        if target is None:
            verdict = MoveInput.MOVE_NOT_WANTED
        elif rules.move_blocked(owned, self.reachable, self.config.broken):
            verdict = MoveInput.MOVE_BLOCKED
        else:
            verdict = MoveInput.MOVE_ELIGIBLE
        phase = move_next(owned.move_phase, verdict)
        key = f"move:{owned.dn}"
        if phase is not MovePhase.DELAYING:
            self.effects.cancel_timer(key)
        if phase is not owned.move_phase:
            self.log.event("ownership.move." + phase.value, DN=owned.dn, target=target)
        owned.move_phase = phase
        if target is None or phase is not MovePhase.DELAYING:
            return
        if not rules.move_waits_for_delay(owned.phone, self.config.broken):
            self.move(owned, target)
        elif not self.effects.timer_running(key):
            self.effects.start_timer(key, self.config.timers.ownership_move_delay)

    def move_delay_over(self, dn: str) -> None:
        owned = self.owned.get(dn)
        if owned is None or owned.move_phase is not MovePhase.DELAYING:
            return
        target = rules.move_target(self.name, owned, self.reachable)
        if target is not None and not rules.move_blocked(owned, self.reachable, self.config.broken):
            self.move(owned, target)
        else:
            self.evaluate_move(owned)

    def move(self, owned: OwnedDn, target: str) -> None:
        """Log the agent out, then hand the DN to ``target`` with the next epoch."""
        if rules.logs_out_before_move(self.config.broken):
            self.logout(owned, "OwnershipMove")
        if owned.dn not in self.owned:
            return
        self.on_move(owned, target)

    def adopt(self, record: OwnerRecord) -> None:
        """This node becomes the owner of ``record.dn``."""
        self.owned[record.dn] = OwnedDn(record.dn, record.epoch, record.phone)

    def relinquish(self, dn: str, reason: str) -> None:
        owned = self.owned.get(dn)
        if owned is None:
            return
        if owned.agent is not None:
            # The agent is still logged in when the DN leaves: an ownership conflict resolved
            # against this node, or a move that did not log it out first (a broken rule, which
            # the chaos checker flags). Not a rule's logout: ``agent.dropped``.
            event = self._agent_event(owned, EventName.EVENT_AGENT_LOGOUT, Reason=reason)
            self.log.event("agent.dropped", DN=dn, AgentID=event.get("AgentID"), reason=reason)
            owned.agent = None
            self.fanout(owned, event)
        self.effects.cancel_timer(f"acw:{dn}")
        self.effects.cancel_timer(f"move:{dn}")
        del self.owned[dn]


def _released(dn: str, ref: CallRef) -> Event:
    return Event(
        EventName.EVENT_RELEASED,
        this_dn=dn,
        attributes={
            "ConnID": ref.conn_id,
            "OtherDN": ref.other_dn,
            "CallType": str(ref.call_type),
            "CallState": "Released",
            "CallNode": ref.call_node,
            "Reason": "CallNodeUnreachable",
        },
    )
