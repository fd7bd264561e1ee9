"""Each SIP Cluster rule of DESIGN §2.2 (seed: "GWS Disaster Recovery Scenarios") shown with the
T-Lib events a desktop sees, on a real in-process cluster with cuttable TC links."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from emulator.sipcluster.states import PartyInput
from emulator.tlib.enums import AgentWorkMode
from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    Event,
    EventName,
    RequestAgentLogin,
    RequestAgentNotReady,
    RequestAgentReady,
    RequestAnswerCall,
    RequestHoldCall,
    RequestMakeCall,
    RequestQueryAddress,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestRetrieveCall,
    RequestUnregisterAddress,
)
from tests.sipcluster.conftest import FAST_TIMERS, Cluster, Desk
from tests.support import eventually

ClusterFactory = Callable[..., Awaitable[Cluster]]

ACW = FAST_TIMERS.after_call_work_period
MOVE_DELAY = FAST_TIMERS.ownership_move_delay
# Scheduling slack on a loaded 2-core machine: generous above, tight below.
LATE = 1.5
EARLY = 0.1


def now() -> float:
    return asyncio.get_running_loop().time()


async def register(cluster: Cluster, node: str, dn: str) -> tuple[Desk, Event]:
    desk = await cluster.desktop(node)
    registered = await desk.send(RequestRegisterAddress, dn)
    assert registered.name is EventName.EVENT_REGISTERED, registered
    return desk, registered


async def owner_desk(cluster: Cluster, node: str, dn: str) -> Desk:
    """A desktop whose RequestRegisterAddress makes ``node`` the owner of PSTN ``dn``, once every
    node agrees."""
    desk, registered = await register(cluster, node, dn)
    assert registered.get("Owner") == node
    await eventually(lambda: cluster.owned_everywhere_by(dn, node), timeout=5)
    return desk


async def login(desk: Desk, dn: str, agent: str) -> None:
    event = await desk.send(RequestAgentLogin, dn, agent_id=agent)
    assert event.name is EventName.EVENT_AGENT_LOGIN, event


async def answered_call(cluster: Cluster, call_node: str, dn: str, desk: Desk) -> str:
    """An inbound customer call hosted on ``call_node``, answered from ``desk``."""
    conn_id = cluster.nodes[call_node].node.inbound_call("+15551230001", dn)
    ringing = await desk.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    assert ringing.get("CallNode") == call_node
    established = await desk.send(RequestAnswerCall, dn, conn_id=conn_id)
    assert established.name is EventName.EVENT_ESTABLISHED, established
    return conn_id


async def query(desk: Desk, dn: str) -> Event:
    info = await desk.send(RequestQueryAddress, dn)
    assert info.name is EventName.EVENT_ADDRESS_INFO, info
    return info


def conn_ids(info: Event) -> list[str]:
    return [call["ConnID"] for call in info.get("Calls", [])]


# -- ownership of a PSTN DN follows the desktop's registration ----------------------------------


async def test_pstn_ownership_follows_the_first_register_address(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory()
    _, registered = await register(cluster, "sip3", "7001")
    assert registered.get("Owner") == "sip3"
    assert registered.get("OwnerEpoch") == 1
    assert registered.get("PhoneType") == "PSTN"
    await eventually(lambda: cluster.owned_everywhere_by("7001", "sip3", epoch=1), timeout=5)
    assert all(cluster.state(n)["ownership"]["7001"]["owner"] == "sip3" for n in cluster.nodes)

    _, second = await register(cluster, "sip1", "7001")
    assert second.get("Owner") == "sip3"
    assert cluster.owned_everywhere_by("7001", "sip3", epoch=1)


# -- login during a call, ACW -------------------------------------------------------------------


async def test_login_is_rejected_while_the_dn_has_a_call_and_allowed_after_release(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    await owner_desk(cluster, "sip3", "7001")
    desk, _ = await register(cluster, "sip1", "7001")  # desktop node sip1, owner sip3
    conn_id = await answered_call(cluster, "sip1", "7001", desk)

    rejected = await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert rejected.name is EventName.EVENT_ERROR
    assert rejected.get("ErrorCode") == ErrorCode.CALL_IN_PROGRESS
    assert rejected.get("ErrorCode") == 245
    assert conn_id in rejected.get("ErrorMessage")
    assert (await query(desk, "7001")).get("AgentState") == "LoggedOut"

    released = await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    assert released.name is EventName.EVENT_RELEASED
    await login(desk, "7001", "agent1")
    info = await query(desk, "7001")
    assert info.get("AgentID") == "agent1"
    assert info.get("Calls") == []


async def test_after_call_work_follows_a_released_call_for_the_acw_period(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    owner = await owner_desk(cluster, "sip1", "7001")
    desk, _ = await register(cluster, "sip3", "7001")
    await login(desk, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    desk.drain()
    owner.drain()

    await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    acw = await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    acw_started = now()
    assert acw.get("AgentID") == "agent1"
    # Every desktop of the DN sees it, not only the one that released.
    await owner.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    assert (await query(desk, "7001")).get("AgentState") == "AfterCallWork"

    await desk.expect(EventName.EVENT_AGENT_READY)
    elapsed = now() - acw_started
    assert ACW - EARLY <= elapsed <= ACW + LATE, elapsed
    assert (await query(desk, "7001")).get("AgentState") == "Ready"


@pytest.mark.parametrize(
    ("request_type", "event_name", "final_state"),
    [
        (RequestAgentReady, EventName.EVENT_AGENT_READY, "Ready"),
        (RequestAgentNotReady, EventName.EVENT_AGENT_NOT_READY, "NotReady"),
    ],
)
async def test_ready_or_not_ready_during_acw_ends_it(
    cluster_factory: ClusterFactory,
    request_type: type[RequestAgentReady] | type[RequestAgentNotReady],
    event_name: EventName,
    final_state: str,
) -> None:
    cluster = await cluster_factory(("sip1",))
    desk = await owner_desk(cluster, "sip1", "7001")
    await login(desk, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")

    answer = await desk.send(request_type, "7001")
    assert answer.name is event_name
    assert answer.get("AgentWorkMode") != "AfterCallWork"
    desk.drain()
    # The ACW period passes with no timer-driven change any more.
    await desk.absent(EventName.EVENT_AGENT_READY, within=ACW + 0.3)
    await desk.absent(EventName.EVENT_AGENT_NOT_READY, within=0.01)
    assert (await query(desk, "7001")).get("AgentState") == final_state


async def test_the_agent_logging_in_again_during_acw_keeps_acw_and_its_timer(
    cluster_factory: ClusterFactory,
) -> None:
    # S1.15: agent2's desktop comes back through DC2 while 7002 is in ACW.
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip1", "7001")
    await login(desk, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    await desk.send(RequestReleaseCall, "7001", conn_id=conn_id)
    await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    acw_started = now()

    other, _ = await register(cluster, "sip3", "7001")
    again = await other.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert again.name is EventName.EVENT_AGENT_LOGIN
    assert (await query(other, "7001")).get("AgentState") == "AfterCallWork"
    await other.expect(EventName.EVENT_AGENT_READY)
    elapsed = now() - acw_started
    assert ACW - EARLY <= elapsed <= ACW + LATE, elapsed


# -- logout-on-disconnect ----------------------------------------------------------------------


async def test_closing_the_desktop_socket_logs_the_agent_out_and_keeps_the_call(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip2"))
    watcher = await owner_desk(cluster, "sip1", "7001")
    desk, _ = await register(cluster, "sip1", "7001")
    await login(desk, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip2", "7001", desk)
    watcher.drain()

    await desk.close()
    logout = await watcher.expect(EventName.EVENT_AGENT_LOGOUT)
    assert logout.get("Reason") == "LogoutOnDisconnect"
    assert logout.get("AgentID") == "agent1"
    info = await query(watcher, "7001")
    assert info.get("AgentState") == "LoggedOut"
    assert conn_ids(info) == [conn_id]
    assert info.get("Calls")[0]["CallState"] == "Established"
    assert cluster.state("sip2")["calls"][0]["ConnID"] == conn_id


async def test_cutting_the_tc_link_between_desktop_node_and_owner_logs_the_agent_out(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip2", "sip3"))
    watcher = await owner_desk(cluster, "sip1", "7001")  # owner sip1
    desk, _ = await register(cluster, "sip3", "7001")  # desktop node sip3
    await login(desk, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip2", "7001", desk)
    watcher.drain()

    cluster.links["sip1-sip3"].cut("reset")
    logout = await watcher.expect(EventName.EVENT_AGENT_LOGOUT)
    assert logout.get("Reason") == "LogoutOnDisconnect"
    assert logout.get("AgentID") == "agent1"
    info = await query(watcher, "7001")
    assert info.get("AgentState") == "LoggedOut"
    assert conn_ids(info) == [conn_id]
    assert cluster.owned("7001")["AgentID"] is None


async def lose_the_owner(cluster: Cluster, owner: str, desktop_node: str, link: str) -> Desk:
    """agent1 logged in through ``desktop_node`` on a DN owned by ``owner``; ``link`` cut; the
    desktop sees the agent logged out and the DN out of service."""
    await owner_desk(cluster, owner, "7001")
    desk, _ = await register(cluster, desktop_node, "7001")
    await login(desk, "7001", "agent1")
    desk.drain()

    cluster.links[link].cut("reset")
    logout = await desk.expect(EventName.EVENT_AGENT_LOGOUT)
    assert logout.get("AgentID") == "agent1"
    assert logout.get("Reason") == "OwnerUnreachable"
    out = await desk.expect(EventName.EVENT_DN_OUT_OF_SERVICE)
    assert out.this_dn == "7001"
    assert owner in out.get("Reason")
    assert cluster.state(desktop_node)["desktops"]["7001"]["DNStatus"] == "OutOfService"

    refused = await desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert refused.name is EventName.EVENT_ERROR
    assert refused.get("ErrorCode") == ErrorCode.OWNER_UNREACHABLE
    assert "7001" in refused.get("ErrorMessage")
    return desk


async def test_desktop_node_that_loses_the_owner_puts_the_dn_out_of_service_until_heal(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await lose_the_owner(cluster, owner="sip3", desktop_node="sip1", link="sip1-sip3")

    cluster.links["sip1-sip3"].heal()
    back = await desk.expect(EventName.EVENT_DN_BACK_IN_SERVICE, timeout=8)
    assert back.this_dn == "7001"
    assert back.get("Owner") == "sip3"
    assert cluster.state("sip1")["desktops"]["7001"]["DNStatus"] == "InService"
    await login(desk, "7001", "agent1")
    assert cluster.owned_everywhere_by("7001", "sip3", epoch=1)


async def test_dn_comes_back_in_service_when_the_desktop_node_is_the_accepting_side(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    # sip1 dials sip3 (names sort so); the desktop node sip3 resyncs right after its Hello.
    desk = await lose_the_owner(cluster, owner="sip1", desktop_node="sip3", link="sip1-sip3")

    cluster.links["sip1-sip3"].heal()
    await eventually(lambda: cluster.peer_state("sip3", "sip1") == "up", timeout=5)
    back = await desk.expect(EventName.EVENT_DN_BACK_IN_SERVICE, timeout=2)
    assert back.get("Owner") == "sip1"
    await login(desk, "7001", "agent1")


# -- ownership moves of a PSTN DN -------------------------------------------------------------


async def test_pstn_desktop_reregistering_on_the_same_node_does_not_move_ownership(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    old = await owner_desk(cluster, "sip1", "7001")
    await login(old, "7001", "agent1")
    conn_id = await answered_call(cluster, "sip1", "7001", old)

    new, registered = await register(cluster, "sip1", "7001")  # the WWE now on gws2 -> sip1
    assert conn_ids(registered) == [conn_id]  # S1.6: the existing call is reported
    unregistered = await old.send(RequestUnregisterAddress, "7001")
    assert unregistered.name is EventName.EVENT_UNREGISTERED
    await new.send(RequestReleaseCall, "7001", conn_id=conn_id)
    assert cluster.owned("7001")["MovePhase"] == "Staying"

    await new.absent(EventName.EVENT_AGENT_LOGOUT, Reason="OwnershipMove", within=MOVE_DELAY + 0.3)
    assert cluster.owned_everywhere_by("7001", "sip1", epoch=1)
    await login(new, "7001", "agent1")


@pytest.mark.parametrize("old_desktop_leaves_by", ["unregister", "disconnect"])
async def test_pstn_desktop_in_the_other_dc_moves_ownership_after_the_delay_logging_out_first(
    cluster_factory: ClusterFactory, old_desktop_leaves_by: str
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    old = await owner_desk(cluster, "sip1", "7002")
    await login(old, "7002", "agent2")
    if old_desktop_leaves_by == "unregister":
        await old.send(RequestUnregisterAddress, "7002")
    else:
        await old.close()
    await eventually(lambda: cluster.owned("7002")["Desktops"] == [], timeout=5)

    new, registered = await register(cluster, "sip3", "7002")
    registered_at = now()
    assert registered.get("Owner") == "sip1"
    assert cluster.owned("7002")["MovePhase"] == "Delaying"
    # Logging on before the move is allowed; the move will log the agent out (S1.12).
    await login(new, "7002", "agent2")
    assert now() - registered_at < MOVE_DELAY
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)

    logout = await new.expect(EventName.EVENT_AGENT_LOGOUT, timeout=MOVE_DELAY + 5)
    logged_out_at = now()
    assert logout.get("Reason") == "OwnershipMove"
    assert logout.get("AgentID") == "agent2"
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=5)
    moved_at = now()
    assert MOVE_DELAY - EARLY <= logged_out_at - registered_at <= MOVE_DELAY + LATE
    assert logged_out_at <= moved_at

    await login(new, "7002", "agent2")
    info = await query(new, "7002")
    assert info.get("Owner") == "sip3"
    assert info.get("OwnerEpoch") == 2
    assert info.get("AgentID") == "agent2"


async def test_no_move_while_a_call_then_acw_is_on_the_dn(
    cluster_factory: ClusterFactory,
) -> None:
    """S1.10/S1.11 with the agent kept logged in (logout-on-disconnect off) so that ACW follows
    the call: the unregister starts the move logic, the move waits for call, ACW and delay."""
    cluster = await cluster_factory(("sip1", "sip3"), logout_on_disconnect=False)
    old = await owner_desk(cluster, "sip1", "7002")
    await login(old, "7002", "agent2")
    conn_id = await answered_call(cluster, "sip1", "7002", old)
    new, _ = await register(cluster, "sip3", "7002")
    assert cluster.owned("7002")["MovePhase"] == "Staying"  # the old desktop is still there

    await old.send(RequestUnregisterAddress, "7002")
    await eventually(
        lambda: cluster.owned("7002")["MovePhase"] == "WaitingForCallAndACW", timeout=5
    )
    await new.absent(EventName.EVENT_AGENT_LOGOUT, Reason="OwnershipMove", within=MOVE_DELAY + 0.3)
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)

    new.drain()
    released = await new.send(RequestReleaseCall, "7002", conn_id=conn_id)
    assert released.name is EventName.EVENT_RELEASED
    released_at = now()
    await new.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    assert cluster.owned("7002")["MovePhase"] == "WaitingForCallAndACW"
    await new.expect(EventName.EVENT_AGENT_READY, timeout=ACW + 5)
    acw_over_at = now()
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)

    logout = await new.expect(EventName.EVENT_AGENT_LOGOUT, timeout=MOVE_DELAY + 5)
    assert logout.get("Reason") == "OwnershipMove"
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=5)
    moved_at = now()
    assert moved_at - acw_over_at >= MOVE_DELAY - EARLY
    assert moved_at - released_at >= ACW + MOVE_DELAY - EARLY


async def test_unregister_from_the_last_desktop_during_a_call_moves_after_the_call(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    old = await owner_desk(cluster, "sip1", "7002")
    await login(old, "7002", "agent2")
    conn_id = await answered_call(cluster, "sip1", "7002", old)
    new, _ = await register(cluster, "sip3", "7002")
    new.drain()

    # S1.10: "It happens independently of call or ACW state."
    unregistered = await old.send(RequestUnregisterAddress, "7002")
    assert unregistered.name is EventName.EVENT_UNREGISTERED
    await new.expect(EventName.EVENT_AGENT_LOGOUT, AgentID="agent2")
    await eventually(
        lambda: cluster.owned("7002")["MovePhase"] == "WaitingForCallAndACW", timeout=5
    )
    await new.absent(EventName.EVENT_AGENT_LOGOUT, Reason="OwnershipMove", within=MOVE_DELAY + 0.3)
    info = await query(new, "7002")
    assert info.get("Owner") == "sip1"
    assert conn_ids(info) == [conn_id]

    await new.send(RequestReleaseCall, "7002", conn_id=conn_id)
    released_at = now()
    assert cluster.owned("7002")["MovePhase"] == "Delaying"
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=8)
    assert now() - released_at >= MOVE_DELAY - EARLY


async def test_old_desktop_that_neither_unregisters_nor_disconnects_keeps_ownership(
    cluster_factory: ClusterFactory,
) -> None:
    """S1.14: "If GWS1@DC1 doesn't submit TUnregisterAddress(DN2) and doesn't disconnect from
    SIP Server, then ownership is not transferred." """
    cluster = await cluster_factory(("sip1", "sip3"))
    old = await owner_desk(cluster, "sip1", "7002")
    new, registered = await register(cluster, "sip3", "7002")
    assert registered.get("Owner") == "sip1"
    assert cluster.owned("7002")["MovePhase"] == "Staying"
    await login(new, "7002", "agent2")

    await new.absent(EventName.EVENT_AGENT_LOGOUT, Reason="OwnershipMove", within=MOVE_DELAY + 0.4)
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)
    assert (await query(old, "7002")).get("AgentID") == "agent2"


async def moved_to_sip3(cluster: Cluster) -> Desk:
    """7002 moved from sip1 to sip3 (S1.11); agent2 logged in again through sip3."""
    old = await owner_desk(cluster, "sip1", "7002")
    new, _ = await register(cluster, "sip3", "7002")
    await old.send(RequestUnregisterAddress, "7002")
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=8)
    await login(new, "7002", "agent2")
    return new


async def test_after_a_move_the_desktop_on_the_new_owner_is_offered_new_calls(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await moved_to_sip3(cluster)
    conn_id = cluster.nodes["sip3"].node.inbound_call("+15551230002", "7002")
    await desk.expect(EventName.EVENT_RINGING, timeout=2, ConnID=conn_id)


async def test_after_a_move_a_desktop_elsewhere_does_not_pull_the_dn_back(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    await moved_to_sip3(cluster)
    # Another desktop on sip1 (a supervisor's, or the old GWS re-registering) must not pull the
    # DN back to DC1 while the agent's desktop is registered through the owner sip3.
    await register(cluster, "sip1", "7002")  # answered by the owner once it has evaluated
    assert cluster.owned("7002")["MovePhase"] == "Staying"


# -- softphone DN: ownership follows the phone's REGISTER ---------------------------------------


async def softphone_agent(cluster: Cluster) -> Desk:
    """agent2 on a softphone registered at sip1 (owner sip1), desktop on sip1, logged in."""
    cluster.nodes["sip1"].node.phone_registered("7002", True)
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip1"), timeout=5)
    desk, registered = await register(cluster, "sip1", "7002")
    assert registered.get("PhoneType") == "Softphone"
    await login(desk, "7002", "agent2")
    return desk


async def test_softphone_registering_elsewhere_with_no_call_moves_ownership_at_once(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await softphone_agent(cluster)
    desk.drain()

    registered_at = now()
    cluster.nodes["sip3"].node.phone_registered("7002", True)
    logout = await desk.expect(EventName.EVENT_AGENT_LOGOUT)
    assert logout.get("Reason") == "OwnershipMove"
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=5)
    assert now() - registered_at < MOVE_DELAY  # no move delay for a softphone

    await login(desk, "7002", "agent2")  # S4.7: "Agent has to log on to any DC."
    info = await query(desk, "7002")
    assert (info.get("Owner"), info.get("AgentID")) == ("sip3", "agent2")


async def test_softphone_move_leaves_the_new_owner_knowing_where_the_phone_is(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    await softphone_agent(cluster)
    cluster.nodes["sip3"].node.phone_registered("7002", True)
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=5)
    assert cluster.owned("7002")["PhoneNode"] == "sip3"


async def test_softphone_registering_elsewhere_during_a_call_moves_after_call_and_acw(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await softphone_agent(cluster)
    conn_id = await answered_call(cluster, "sip1", "7002", desk)

    cluster.nodes["sip3"].node.phone_registered("7002", True)
    await eventually(lambda: cluster.owned("7002")["PhoneNode"] == "sip3", timeout=5)
    assert cluster.owned("7002")["MovePhase"] == "WaitingForCallAndACW"
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)
    desk.drain()

    await desk.send(RequestReleaseCall, "7002", conn_id=conn_id)
    released_at = now()
    await desk.expect(EventName.EVENT_AGENT_NOT_READY, AgentWorkMode="AfterCallWork")
    assert cluster.owned_everywhere_by("7002", "sip1", epoch=1)
    logout = await desk.expect(EventName.EVENT_AGENT_LOGOUT, timeout=ACW + 5)
    assert logout.get("Reason") == "OwnershipMove"
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip3", epoch=2), timeout=5)
    assert now() - released_at >= ACW - EARLY


# -- calls ---------------------------------------------------------------------------------


async def test_internal_call_between_dns_of_different_owners_hold_retrieve_release(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    caller = await owner_desk(cluster, "sip1", "7001")
    callee = await owner_desk(cluster, "sip3", "7002")
    await login(caller, "7001", "agent1")
    await login(callee, "7002", "agent2")

    dialing = await caller.send(RequestMakeCall, "7001", other_dn="7002")
    assert dialing.name is EventName.EVENT_DIALING, dialing
    conn_id = dialing.get("ConnID")
    assert dialing.get("OtherDN") == "7002"
    assert dialing.get("CallType") == "Internal"
    ringing = await callee.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    assert (ringing.get("OtherDN"), ringing.get("CallType")) == ("7001", "Internal")
    call_node = ringing.get("CallNode")
    assert call_node == dialing.get("CallNode") == "sip1"

    answered = await callee.send(RequestAnswerCall, "7002", conn_id=conn_id)
    assert answered.name is EventName.EVENT_ESTABLISHED
    established = await caller.expect(EventName.EVENT_ESTABLISHED, ConnID=conn_id)
    assert established.get("CallState") == "Established"

    held = await caller.send(RequestHoldCall, "7001", conn_id=conn_id)
    assert (held.name, held.get("CallState")) == (EventName.EVENT_HELD, "Held")
    retrieved = await caller.send(RequestRetrieveCall, "7001", conn_id=conn_id)
    assert (retrieved.name, retrieved.get("CallState")) == (
        EventName.EVENT_RETRIEVED,
        "Established",
    )
    held = await callee.send(RequestHoldCall, "7002", conn_id=conn_id)
    assert held.name is EventName.EVENT_HELD
    retrieved = await callee.send(RequestRetrieveCall, "7002", conn_id=conn_id)
    assert retrieved.name is EventName.EVENT_RETRIEVED

    released = await callee.send(RequestReleaseCall, "7002", conn_id=conn_id)
    assert released.name is EventName.EVENT_RELEASED
    await caller.expect(EventName.EVENT_RELEASED, ConnID=conn_id)
    assert cluster.state("sip1")["calls"] == []
    assert (await query(caller, "7001")).get("Calls") == []
    assert (await query(callee, "7002")).get("Calls") == []


async def test_call_on_a_wrong_state_is_answered_with_an_error_naming_it(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip1", "7001")
    conn_id = cluster.nodes["sip3"].node.inbound_call("+15551230001", "7001")
    await desk.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    retrieve = await desk.send(RequestRetrieveCall, "7001", conn_id=conn_id)
    assert retrieve.name is EventName.EVENT_ERROR
    assert retrieve.get("ErrorCode") == ErrorCode.INVALID_CALL_STATE
    assert "Ringing" in retrieve.get("ErrorMessage")
    unknown = await desk.send(RequestHoldCall, "7001", conn_id="00000000deadbeef")
    assert unknown.get("ErrorCode") == ErrorCode.INVALID_CONN_ID
    assert "00000000deadbeef" in unknown.get("ErrorMessage")


async def test_call_hosted_on_a_chosen_node_reaches_a_desktop_through_the_owner(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip2", "sip3"))
    await owner_desk(cluster, "sip3", "7001")  # owner sip3
    desk, _ = await register(cluster, "sip1", "7001")  # desktop node sip1
    conn_id = cluster.nodes["sip2"].node.inbound_call("+15551230001", "7001")  # call node sip2

    ringing = await desk.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    assert ringing.get("CallNode") == "sip2"
    assert ringing.get("CallType") == "Inbound"
    assert ringing.get("OtherDN") == "+15551230001"
    await desk.send(RequestAnswerCall, "7001", conn_id=conn_id)
    assert cluster.state("sip3")["owned"]["7001"]["Calls"][0]["CallNode"] == "sip2"
    assert [c["ConnID"] for c in cluster.state("sip2")["calls"]] == [conn_id]
    assert cluster.state("sip1")["calls"] == []

    # The customer hangs up at the call node: the event flows sip2 -> sip3 -> sip1.
    cluster.nodes["sip2"].node.party_action(conn_id, "+15551230001", PartyInput.RELEASE)
    released = await desk.expect(EventName.EVENT_RELEASED, ConnID=conn_id)
    assert released.get("CallNode") == "sip2"


async def test_agent_login_with_auto_in_is_ready_at_once(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory(("sip1",))
    desk = await owner_desk(cluster, "sip1", "7001")
    login_event = await desk.send(
        RequestAgentLogin, "7001", agent_id="agent1", agent_work_mode=AgentWorkMode.AUTO_IN
    )
    assert login_event.name is EventName.EVENT_AGENT_LOGIN
    await desk.expect(EventName.EVENT_AGENT_READY)
    assert (await query(desk, "7001")).get("AgentState") == "Ready"
