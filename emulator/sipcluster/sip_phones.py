"""The node as registrar for softphone DNs, and where a call node rings an agent's phone.

Registrar (RFC 3261 §10.3, core in ``emulator.sip.registrar_core``): a REGISTER for a DN of the
cluster's range is answered here; a *new* binding makes ``ClusterNode.phone_registered(dn, True)``
(ownership follows the phone, DESIGN §2.2) and the loss of the last binding — unregister or
expiry, Expires scaled by the lab's time-scale — makes ``phone_registered(dn, False)``. When the
cluster hears that the phone registered at another node, this node's binding is stale and is
dropped, so the phone coming back here later is a new registration again.

Ringing an agent (``agent_target``), in order:
1. the phone's latest registration is here: the configured route to the phone, else the flow its
   REGISTER came by (symmetric, as RFC 5626 outbound does);
2. it registered at another node: the route, else the Contact that node announced;
3. the DN is a softphone DN in the cluster view and a route is configured: the route;
4. else it is a PSTN agent: its PSTN number at the PSTN gateway's route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from emulator.common.addresses import Endpoint
from emulator.common.jsonlog import JsonLog
from emulator.sip.errors import SipProtocolError
from emulator.sip.headers import SipUri
from emulator.sip.registrar_core import Binding, Registrar, aor_of
from emulator.sip.ua import IncomingRequest
from emulator.sipcluster.node import ClusterNode
from emulator.sipcluster.sip_config import SipConfig
from emulator.sipcluster.tc_messages import PhoneRegistration
from emulator.tlib.enums import PhoneType


@dataclass(frozen=True)
class AgentTarget:
    """Where and how the call node sends the INVITE that rings an agent."""

    kind: str  # "softphone" or "pstn"
    uri: str  # Request-URI
    dest: Endpoint
    transport: str  # "UDP" or "TCP": the transport of the flow, else UDP


class PhoneDirectory:
    def __init__(self, node: ClusterNode, config: SipConfig, log: JsonLog) -> None:
        self.node = node
        self.config = config
        self.log = log
        self.registrar = Registrar(
            scale=config.scale, min_expires=config.min_expires, max_expires=config.max_expires
        )
        self._transports: dict[str, str] = {}  # DN -> transport its REGISTER came on
        self.registers = 0
        self.rejected = 0
        node.on_phone_registration = self._cluster_heard

    # -- registrar ------------------------------------------------------------------------

    def register(self, incoming: IncomingRequest, now: float) -> None:
        request = incoming.request
        self.registers += 1
        try:
            dn = aor_of(request.to.uri)
        except SipProtocolError:
            dn = ""
        if dn not in self.node.config.dns:
            self.rejected += 1
            incoming.respond(404, f"DN {dn or '?'} is not served by this cluster")
            return
        had_binding = bool(self.registrar.lookup(dn, now))
        outcome = self.registrar.process(request, now, source=incoming.source)
        incoming.send_response(outcome.response)
        self.log.event(
            "sip.register",
            DN=dn,
            status=outcome.response.status,
            contact=[binding.contact for binding in outcome.added] or None,
            source=str(incoming.source),
            removed=len(outcome.removed) or None,
        )
        if outcome.added:
            self._transports[dn] = incoming.ua.transport.name
        if outcome.added and not had_binding:
            self.node.phone_registered(dn, True, outcome.added[-1].contact)
        elif outcome.removed and had_binding and not self.registrar.lookup(dn, now):
            self._transports.pop(dn, None)
            self.node.phone_registered(dn, False)

    def expire(self, now: float) -> None:
        gone = {binding.aor for binding in self.registrar.expire(now)}
        for dn in sorted(gone):
            if not self.registrar.lookup(dn, now):
                self.log.event("sip.register.expired", DN=dn)
                self._transports.pop(dn, None)
                self.node.phone_registered(dn, False)

    def next_expiry(self) -> float | None:
        return self.registrar.next_expiry()

    def _cluster_heard(self, registration: PhoneRegistration) -> None:
        if registration.registered and registration.node != self.node.name:
            dropped = self.registrar.remove(registration.dn)
            if dropped:
                self._transports.pop(registration.dn, None)
                self.log.event(
                    "sip.register.superseded", DN=registration.dn, node=registration.node
                )

    # -- ringing agents -------------------------------------------------------------------

    def agent_target(self, dn: str, now: float) -> AgentTarget | None:
        route = self.config.phone_routes.get(dn)
        latest = self.node.phones.get(dn)
        local = self._local_binding(dn, now)
        if local is not None and (latest is None or latest.node == self.node.name):
            if route is not None:
                return AgentTarget("softphone", local.contact, route, "UDP")
            assert local.source is not None
            transport = self._transports.get(dn, "UDP")
            return AgentTarget("softphone", local.contact, local.source, transport)
        if latest is not None and latest.contact:
            if route is not None:
                return AgentTarget("softphone", latest.contact, route, "UDP")
            return _contact_target(latest.contact)
        record = self.node.view.get(dn)
        if route is not None and record is not None and record.phone is PhoneType.SOFTPHONE:
            return AgentTarget("softphone", f"sip:{dn}@{route}", route, "UDP")
        pstn = self.config.pstn_route
        if pstn is None:
            return None
        number = self.config.agent_number(dn)
        return AgentTarget("pstn", f"sip:{number}@{pstn}", pstn, "UDP")

    def _local_binding(self, dn: str, now: float) -> Binding | None:
        bindings = [b for b in self.registrar.lookup(dn, now) if b.source is not None]
        return max(bindings, key=lambda b: b.refreshed_at, default=None)

    def state(self, now: float) -> list[dict[str, Any]]:
        return [
            {
                "DN": binding.aor,
                "contact": binding.contact,
                "source": str(binding.source) if binding.source else None,
                "transport": self._transports.get(binding.aor),
                "expires_in": math.ceil(max(0.0, binding.expires_at - now) * 1000) / 1000,
                "refreshes": binding.refreshes,
            }
            for binding in self.registrar.all_bindings()
        ]


def _contact_target(contact: str) -> AgentTarget | None:
    try:
        uri = SipUri.parse(contact)
    except SipProtocolError:
        return None
    transport = "TCP" if (uri.param("transport") or "").lower() == "tcp" else "UDP"
    return AgentTarget("softphone", contact, Endpoint(uri.host, uri.port or 5060), transport)
