"""The desktop-node role of a SIP Cluster node: the T-Lib clients connected to it (DESIGN §2.2).

"Desktops reach the cluster through the node their GWS is connected to (the desktop node)."
The desktop node checks each client's request (known DN, registered by this client), passes it
to the DN's owner (here or over the TC-layer) and hands the owner's events to the clients
registered on the DN. A PSTN DN's ownership follows the desktop's ``RequestRegisterAddress``.
"A desktop node that loses the TC link to a DN's owner sends ``EventDNOutOfService`` for that
DN, the agent counts as logged out there, and logins for it through that node fail until the
link returns (``EventDNBackInService``)." ``ClusterNode`` plays this role alongside the owner
and call-node roles; sans-I/O like it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from emulator.common.jsonlog import JsonLog
from emulator.sipcluster import rules
from emulator.sipcluster.config import NodeConfig
from emulator.sipcluster.effects import Effects
from emulator.sipcluster.owner import OwnerRole
from emulator.sipcluster.rules import Desktop
from emulator.sipcluster.states import ServiceInput, service_next
from emulator.sipcluster.tc_messages import (
    ClientGone,
    DeskEvent,
    DeskRequest,
    OwnerRecord,
    Requester,
)
from emulator.tlib.enums import DNStatus, PhoneType
from emulator.tlib.errors import ErrorCode, ProtocolError, RequestRejected
from emulator.tlib.messages import (
    Event,
    EventName,
    Request,
    RequestRegisterAddress,
    RequestUnregisterAddress,
    decode,
    encode,
    error_event,
    event_name,
)


class DesktopNodeRole:
    """This node's T-Lib clients; mixed into ``ClusterNode``, which sets the attributes below."""

    name: str
    config: NodeConfig
    effects: Effects
    log: JsonLog
    owner: OwnerRole
    view: dict[str, OwnerRecord]
    local_regs: dict[str, set[int]]
    client_dns: dict[int, set[str]]
    dn_service: dict[str, DNStatus]
    agent_seen: dict[str, str]

    def reachable(self, node: str) -> bool:
        raise NotImplementedError  # this node, or a peer whose TC link is up (``ClusterNode``)

    def owner_of(self, dn: str) -> str | None:
        raise NotImplementedError  # the node's view of ownership (``ClusterNode``)

    def claim(self, dn: str, phone: PhoneType) -> None:
        raise NotImplementedError  # take ownership of ``dn`` (``ClusterNode``)

    def client_request(self, client: int, request: Request) -> None:
        dn = request.this_dn
        self.log.event(
            "tlib.request",
            message=request.NAME,
            DN=dn,
            client=client,
            ReferenceID=request.reference_id,
            AgentID=getattr(request, "agent_id", None),
            ConnID=getattr(request, "conn_id", None),
        )
        requester = Requester(self.name, client, request.reference_id)
        try:
            if dn not in self.config.dns:
                raise RequestRejected(ErrorCode.NO_SUCH_DN, f"{request.NAME}: unknown DN {dn}")
            if isinstance(request, RequestRegisterAddress):
                self._register(client, request, requester)
                return
            if dn not in self.client_dns[client]:
                raise RequestRejected(
                    ErrorCode.DN_NOT_REGISTERED,
                    f"{request.NAME}: DN {dn} is not registered by this client "
                    f"(send RequestRegisterAddress first)",
                )
            if isinstance(request, RequestUnregisterAddress):
                self._drop_local(client, dn)
            self._to_owner(dn, requester, request)
        except RequestRejected as exc:
            self.effects.to_client(
                client,
                error_event(exc.code, exc.message, this_dn=dn, reference_id=request.reference_id),
            )

    def client_error(self, client: int, error: ProtocolError) -> None:
        self.log.warning("tlib.bad_input", client=client, error=error.message)

    def _register(self, client: int, request: Request, requester: Requester) -> None:
        dn = request.this_dn
        self.local_regs[dn].add(client)
        self.client_dns[client].add(dn)
        record = self.view.get(dn)
        phone = record.phone if record else PhoneType.PSTN
        owner_reachable = record is not None and self.reachable(record.owner)
        if rules.ownership_follows_registration(phone, owner_reachable):
            self.claim(dn, PhoneType.PSTN)
        elif record is not None and not owner_reachable:
            self.dn_service[dn] = DNStatus.OUT_OF_SERVICE
            attrs = {
                "AgentState": "LoggedOut",
                "DNStatus": str(DNStatus.OUT_OF_SERVICE),
                "Owner": record.owner,
                "OwnerEpoch": record.epoch,
                "PhoneType": str(record.phone),
                "Calls": [],
            }
            self.effects.to_client(
                client, Event(EventName.EVENT_REGISTERED, dn, request.reference_id, attrs)
            )
            self.effects.to_client(client, self._out_of_service_event(dn, record.owner))
            return
        self.dn_service[dn] = DNStatus.IN_SERVICE
        self._to_owner(dn, requester, request)

    def _drop_local(self, client: int, dn: str) -> None:
        self.local_regs[dn].discard(client)
        self.client_dns[client].discard(dn)
        if not self.local_regs[dn]:
            del self.local_regs[dn]
            self.dn_service.pop(dn, None)

    def _to_owner(
        self, dn: str, requester: Requester, request: Request, *, resync: bool = False
    ) -> None:
        owner = self.owner_of(dn)
        if owner == self.name:
            self.owner.request(dn, requester, request, resync)
        elif owner is not None and self.effects.to_peer(
            owner, DeskRequest(dn, requester, encode(request), resync)
        ):
            return
        elif not resync:
            raise RequestRejected(
                ErrorCode.OWNER_UNREACHABLE,
                f"{request.NAME}: DN {dn} is out of service here: its owner {owner} "
                f"is unreachable over the TC-layer",
            )

    def _resync(self, dn: str) -> None:
        """Re-register this node's desktops of ``dn`` with its (new or returned) owner."""
        record = self.view.get(dn)
        if record is None:
            return
        for client in sorted(self.local_regs.get(dn, ())):
            request = RequestRegisterAddress(reference_id=0, this_dn=dn)
            self._to_owner(dn, Requester(self.name, client, None), request, resync=True)

    def client_gone(self, client: int, reason: str) -> None:
        """The desktop's T-Lib connection is closed (or declared dead by ADDP)."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for dn in sorted(self.client_dns.pop(client, set())):
            self.local_regs[dn].discard(client)
            if not self.local_regs[dn]:
                del self.local_regs[dn]
                self.dn_service.pop(dn, None)
            owner = self.owner_of(dn)
            if owner is not None:
                by_owner[owner].append(dn)
        self.log.event("tlib.client_gone", client=client, reason=reason)
        for owner, dns in by_owner.items():
            if owner == self.name:
                self._desktop_gone(self.name, client, dns, reason)
            else:
                self.effects.to_peer(owner, ClientGone(self.name, client, tuple(dns), reason))

    def _desktop_gone(
        self, node: str, client: int, dns: list[str] | tuple[str, ...], reason: str
    ) -> None:
        for dn in dns:
            owned = self.owner.owned.get(dn)
            if owned is not None:
                self.owner.desktop_gone(owned, Desktop(node, client), reason)

    def deliver_local(
        self, dn: str, event: Event, requester: Requester | None, only_requester: bool
    ) -> None:
        """Hand an event from the owner to this node's desktops registered on the DN."""
        self._note(dn, event)
        reference = requester.reference_id if requester else None
        if only_requester and requester is not None:
            if event.name is EventName.EVENT_DN_BACK_IN_SERVICE:
                if self.dn_service.get(dn) is not DNStatus.OUT_OF_SERVICE:
                    return
                self.dn_service[dn] = DNStatus.IN_SERVICE
                for client in sorted(self.local_regs.get(dn, ())):
                    self.effects.to_client(client, event)
                return
            self.effects.to_client(requester.client, event.with_reference(reference))
            return
        for client in sorted(self.local_regs.get(dn, ())):
            mine = (
                requester is not None and requester.node == self.name and requester.client == client
            )
            self.effects.to_client(client, event.with_reference(reference if mine else None))

    def _desk_event(self, message: DeskEvent) -> None:
        """An event of a DN's owner for this node's desktops, come over the TC-layer."""
        if self._relay_answer(message):
            return
        event = decode(dict(message.event))
        if isinstance(event, Event):
            self.deliver_local(message.dn, event, message.requester, message.only_requester)

    def _relay_answer(self, message: DeskEvent) -> bool:
        """The owner's answer to one desktop of this node goes out as it came over the TC-layer
        (what ``deliver_local`` would do for it, without rebuilding and re-encoding the event)."""
        requester, wire = message.requester, message.event
        name = event_name(wire.get("message"))
        if (
            not message.only_requester
            or requester is None
            or requester.node != self.name
            or name is None
            or name is EventName.EVENT_DN_BACK_IN_SERVICE
        ):
            return False
        self._note_agent(message.dn, name, wire.get("AgentID"))
        self.effects.relay_to_client(requester.client, wire, requester.reference_id)
        return True

    def _note(self, dn: str, event: Event) -> None:
        self._note_agent(dn, event.name, event.get("AgentID"))

    def _note_agent(self, dn: str, name: EventName, agent: Any) -> None:
        if name in (EventName.EVENT_AGENT_LOGOUT,) or (
            name in (EventName.EVENT_REGISTERED, EventName.EVENT_DN_BACK_IN_SERVICE) and not agent
        ):
            self.agent_seen.pop(dn, None)
        elif isinstance(agent, str) and agent:
            self.agent_seen[dn] = agent

    def _owner_back(self, peer: str) -> None:
        """The TC link to ``peer`` is up: this node's desktops of the DNs it owns register with
        it again, and those that saw the DN out of service get ``EventDNBackInService``."""
        for dn in sorted(self.local_regs):
            if self.owner_of(dn) == peer:
                self._resync(dn)

    def _owner_lost(self, peer: str) -> None:
        """The TC link to ``peer`` is down: the DNs it owns go out of service for this node's
        desktops, and their agents count as logged out here."""
        if not rules.out_of_service_on_lost_owner(self.config.broken):
            return
        for dn in sorted(self.local_regs):
            if self.owner_of(dn) != peer:
                continue
            state = self.dn_service.get(dn, DNStatus.IN_SERVICE)
            self.dn_service[dn] = service_next(state, ServiceInput.OWNER_LOST)
            agent = self.agent_seen.pop(dn, None)
            if agent is not None:
                # This node, not the owner, logs the agent out for its desktops.
                self.log.event("agent.logout", DN=dn, AgentID=agent, reason="OwnerUnreachable")
            for client in sorted(self.local_regs[dn]):
                if agent is not None:
                    self.effects.to_client(
                        client,
                        Event(
                            EventName.EVENT_AGENT_LOGOUT,
                            dn,
                            attributes={"AgentID": agent, "Reason": "OwnerUnreachable"},
                        ),
                    )
                self.effects.to_client(client, self._out_of_service_event(dn, peer))

    def _out_of_service_event(self, dn: str, owner: str) -> Event:
        return Event(
            EventName.EVENT_DN_OUT_OF_SERVICE,
            dn,
            attributes={"Reason": f"owner {owner} unreachable over the TC-layer"},
        )
