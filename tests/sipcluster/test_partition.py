"""S3 of the seed — "TC-layer between DC1 and DC2 fails" — on a real four-node cluster whose
DC1-DC2 TC links are cut in the relay, and a silent (black-holed) TC peer detected by heartbeats.

Setup (S3): agent1 PSTN, owner sip1, desktop on sip1, Call1 hosted on sip3@DC2; agent2 softphone
registered at sip4@DC2 (so sip4 owns 7002), desktop on sip1, Call2 hosted on sip2@DC1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from emulator.sipcluster.states import PartyInput
from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    EventName,
    RequestAgentLogin,
    RequestHoldCall,
    RequestRegisterAddress,
    RequestReleaseCall,
    RequestRetrieveCall,
)
from tests.sipcluster.conftest import FAST_TIMERS, Cluster, Desk
from tests.sipcluster.test_cluster_rules import (
    answered_call,
    conn_ids,
    login,
    now,
    owner_desk,
    query,
    register,
)
from tests.support import eventually

ClusterFactory = Callable[..., Awaitable[Cluster]]

DC1, DC2 = ("sip1", "sip2"), ("sip3", "sip4")
DC1_DC2_LINKS = ("sip1-sip3", "sip1-sip4", "sip2-sip3", "sip2-sip4")
CUSTOMER = "+15551230001"


@dataclass
class S3:
    cluster: Cluster
    desk1: Desk  # agent1's desktop (gws1 -> sip1)
    call1: str  # on sip3
    desk2: Desk  # agent2's desktop (gws1 -> sip1)
    call2: str  # on sip2


async def s3_setup(cluster: Cluster) -> S3:
    desk1 = await owner_desk(cluster, "sip1", "7001")
    await login(desk1, "7001", "agent1")
    call1 = await answered_call(cluster, "sip3", "7001", desk1)

    cluster.nodes["sip4"].node.phone_registered("7002", True)
    await eventually(lambda: cluster.owned_everywhere_by("7002", "sip4", epoch=1), timeout=5)
    desk2, registered = await register(cluster, "sip1", "7002")
    assert (registered.get("Owner"), registered.get("PhoneType")) == ("sip4", "Softphone")
    await login(desk2, "7002", "agent2")
    call2 = await answered_call(cluster, "sip2", "7002", desk2)
    desk1.drain()
    desk2.drain()
    return S3(cluster, desk1, call1, desk2, call2)


def dcs_see_each_other(cluster: Cluster, state: str) -> bool:
    return all(
        cluster.peer_state(a, b) == state and cluster.peer_state(b, a) == state
        for a in DC1
        for b in DC2
    )


async def partition(cluster: Cluster) -> None:
    for link in DC1_DC2_LINKS:
        cluster.links[link].cut("reset")
    await eventually(lambda: dcs_see_each_other(cluster, "down"), timeout=5)


async def heal(cluster: Cluster) -> None:
    for link in DC1_DC2_LINKS:
        cluster.links[link].heal()
    await eventually(lambda: dcs_see_each_other(cluster, "up"), timeout=8)


def one_owner_everywhere(cluster: Cluster, dn: str) -> bool:
    views = set(cluster.owners(dn).values())
    return len(views) == 1 and None not in views


def owner_records_agree(cluster: Cluster) -> bool:
    """The epoch rule: each DN has one owner (and epoch) in every node's view, and exactly that
    node holds it as owned."""
    for dn in ("7001", "7002"):
        if not one_owner_everywhere(cluster, dn):
            return False
        view = cluster.owners(dn)["sip1"]
        assert view is not None
        holders = [n for n in cluster.nodes if dn in cluster.state(n)["owned"]]
        if holders != [view[0]]:
            return False
    return True


# -- agent1: call on the other side of the partition ------------------------------------------


async def test_agent1_loses_call_control_and_release_clears_the_call_from_the_desktop(
    cluster_factory: ClusterFactory,
) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster, desk1 = s3.cluster, s3.desk1
    await partition(cluster)

    hold = await desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert hold.name is EventName.EVENT_ERROR
    assert hold.get("ErrorCode") == ErrorCode.CALL_NODE_UNREACHABLE
    assert hold.get("ErrorCode") == 1701
    assert "sip3" in hold.get("ErrorMessage")
    # S3.1: the call goes on where it lives.
    assert [c["ConnID"] for c in cluster.state("sip3")["calls"]] == [s3.call1]

    # S3.2: the customer hangs up on sip3; no call T-Event reaches agent1's desktop.
    cluster.nodes["sip3"].node.party_action(s3.call1, CUSTOMER, PartyInput.RELEASE)
    assert cluster.state("sip3")["calls"] == []
    await desk1.absent(EventName.EVENT_RELEASED, within=0.3)

    # S3.3: "Agent 1 can submit TReleaseCall from WWE to avoid getting a stuck call".
    released = await desk1.send(RequestReleaseCall, "7001", conn_id=s3.call1)
    assert released.name is EventName.EVENT_RELEASED
    assert released.get("Reason") == "CallNodeUnreachable"
    assert released.get("ConnID") == s3.call1
    assert (await query(desk1, "7001")).get("Calls") == []

    await heal(cluster)
    await eventually(lambda: owner_records_agree(cluster), timeout=5)
    assert conn_ids(await query(desk1, "7001")) == []  # nothing stuck, nothing resurrected


async def test_a_call_request_lost_in_a_dying_tc_link_is_answered_with_1701(
    cluster_factory: ClusterFactory,
) -> None:
    # The link goes silent (black hole) before either side knows: the hold is written into it,
    # and when the TC-layer declares sip3 lost the request gets its EventError, not silence.
    s3 = await s3_setup(await cluster_factory())
    cluster, desk1 = s3.cluster, s3.desk1
    for link in DC1_DC2_LINKS:
        cluster.links[link].cut("blackhole")
    hold = await desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert hold.name is EventName.EVENT_ERROR, hold
    assert hold.get("ErrorCode") == ErrorCode.CALL_NODE_UNREACHABLE
    assert "sip3" in hold.get("ErrorMessage")
    assert [c["ConnID"] for c in cluster.state("sip3")["calls"]] == [s3.call1]
    assert cluster.nodes["sip1"].node.calls_in_flight.get("sip3", {}) == {}


async def test_call_control_comes_back_after_heal(cluster_factory: ClusterFactory) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster, desk1 = s3.cluster, s3.desk1
    await partition(cluster)
    hold = await desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert hold.get("ErrorCode") == ErrorCode.CALL_NODE_UNREACHABLE

    await heal(cluster)
    held = await desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert held.name is EventName.EVENT_HELD, held
    retrieved = await desk1.send(RequestRetrieveCall, "7001", conn_id=s3.call1)
    assert retrieved.name is EventName.EVENT_RETRIEVED


async def test_call_cleared_during_the_partition_is_restored_after_heal_if_still_live(
    cluster_factory: ClusterFactory,
) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster, desk1 = s3.cluster, s3.desk1
    await partition(cluster)
    released = await desk1.send(RequestReleaseCall, "7001", conn_id=s3.call1)
    assert released.get("Reason") == "CallNodeUnreachable"
    desk1.drain()

    await heal(cluster)
    restored = await desk1.expect(EventName.EVENT_ESTABLISHED, ConnID=s3.call1)
    assert restored.get("Restored") is True
    assert restored.get("CallNode") == "sip3"
    held = await desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert held.name is EventName.EVENT_HELD, held


async def test_call_that_ended_during_the_partition_is_released_on_the_desktop_after_heal(
    cluster_factory: ClusterFactory,
) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster, desk1 = s3.cluster, s3.desk1
    await partition(cluster)
    cluster.nodes["sip3"].node.party_action(s3.call1, CUSTOMER, PartyInput.RELEASE)

    await heal(cluster)
    released = await desk1.expect(EventName.EVENT_RELEASED, ConnID=s3.call1)
    assert released.get("Reason") == "CallEndedDuringPartition"
    assert (await query(desk1, "7001")).get("Calls") == []


async def test_agent1_regains_3pcc_by_registering_through_dc2(
    cluster_factory: ClusterFactory,
) -> None:
    """S3.5: "Agent 1 can restore 3pcc control over the call by reconnecting to DC2"."""
    s3 = await s3_setup(await cluster_factory())
    cluster = s3.cluster
    await partition(cluster)

    dc2_desk, registered = await register(cluster, "sip3", "7001")
    assert registered.get("Owner") == "sip3"
    assert registered.get("OwnerEpoch") == 2
    [call] = registered.get("Calls")
    assert (call["ConnID"], call["CallNode"], call["CallState"]) == (
        s3.call1,
        "sip3",
        "Established",
    )
    held = await dc2_desk.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert held.name is EventName.EVENT_HELD, held
    retrieved = await dc2_desk.send(RequestRetrieveCall, "7001", conn_id=s3.call1)
    assert retrieved.name is EventName.EVENT_RETRIEVED
    rejected = await dc2_desk.send(RequestAgentLogin, "7001", agent_id="agent1")
    assert rejected.get("ErrorCode") == ErrorCode.CALL_IN_PROGRESS

    # After heal the higher epoch wins everywhere; the DC1 desktop is told and follows it.
    await heal(cluster)
    await eventually(lambda: owner_records_agree(cluster), timeout=5)
    assert cluster.owned_everywhere_by("7001", "sip3", epoch=2)
    logout = await s3.desk1.expect(EventName.EVENT_AGENT_LOGOUT, AgentID="agent1")
    assert logout.get("Reason") == "OwnershipConflict"
    held = await s3.desk1.send(RequestHoldCall, "7001", conn_id=s3.call1)
    assert held.name is EventName.EVENT_HELD, held


# -- agent2: owner on the other side of the partition ------------------------------------------


async def test_agent2_is_out_of_service_in_dc1_and_logs_in_through_dc2_without_the_call(
    cluster_factory: ClusterFactory,
) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster, desk2 = s3.cluster, s3.desk2
    dc2_watcher, _ = await register(cluster, "sip4", "7002")
    dc2_watcher.drain()

    await partition(cluster)
    # S3.7: sip1 lost the owner: agent logged out there, DN out of service.
    logout = await desk2.expect(EventName.EVENT_AGENT_LOGOUT)
    assert (logout.get("AgentID"), logout.get("Reason")) == ("agent2", "OwnerUnreachable")
    await desk2.expect(EventName.EVENT_DN_OUT_OF_SERVICE)
    # S3.8: the owner sip4 logs agent2 out (logout-on-disconnect); the call goes on (S3.6).
    logout = await dc2_watcher.expect(EventName.EVENT_AGENT_LOGOUT)
    assert (logout.get("AgentID"), logout.get("Reason")) == ("agent2", "LogoutOnDisconnect")
    assert cluster.state("sip4")["owned"]["7002"]["AgentState"] == "LoggedOut"
    [call2] = cluster.state("sip2")["calls"]
    assert call2["ConnID"] == s3.call2
    assert {p["state"] for p in call2["parties"]} == {"Established"}

    # S3.9: no GWS of DC1 can log agent2 on (sip1 and sip2 alike).
    refused = await desk2.send(RequestAgentLogin, "7002", agent_id="agent2")
    assert refused.get("ErrorCode") == ErrorCode.OWNER_UNREACHABLE
    for node in DC1:
        desk = await cluster.desktop(node)
        registered = await desk.send(RequestRegisterAddress, "7002")
        assert registered.get("DNStatus") == "OutOfService"
        await desk.expect(EventName.EVENT_DN_OUT_OF_SERVICE)
        refused = await desk.send(RequestAgentLogin, "7002", agent_id="agent2")
        assert refused.name is EventName.EVENT_ERROR
        assert refused.get("ErrorCode") == ErrorCode.OWNER_UNREACHABLE

    # S3.10: through DC2 agent2 logs in, but the desktop shows no call.
    dc2_desk, registered = await register(cluster, "sip3", "7002")
    assert registered.get("Owner") == "sip4"
    assert registered.get("Calls") == []
    await login(dc2_desk, "7002", "agent2")
    assert (await query(dc2_desk, "7002")).get("Calls") == []

    await heal(cluster)
    await desk2.expect(EventName.EVENT_DN_BACK_IN_SERVICE)
    await eventually(lambda: owner_records_agree(cluster), timeout=5)
    assert cluster.owned_everywhere_by("7002", "sip4", epoch=1)
    assert cluster.owned_everywhere_by("7001", "sip1", epoch=1)


async def test_desktop_registered_during_the_partition_is_told_of_the_call_after_heal(
    cluster_factory: ClusterFactory,
) -> None:
    s3 = await s3_setup(await cluster_factory())
    cluster = s3.cluster
    await partition(cluster)
    dc2_desk, registered = await register(cluster, "sip3", "7002")
    assert registered.get("Calls") == []

    await heal(cluster)
    restored = await dc2_desk.expect(EventName.EVENT_ESTABLISHED, timeout=2, ConnID=s3.call2)
    assert restored.get("Restored") is True


# -- a silent peer ------------------------------------------------------------------------------


async def test_black_holed_tc_peer_is_detected_within_interval_plus_timeout(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip3", "7001")
    remote, _ = await register(cluster, "sip1", "7001")

    cut_at = now()
    cluster.links["sip1-sip3"].cut("blackhole")
    await eventually(lambda: cluster.peer_state("sip1", "sip3") == "down", timeout=5)
    detected = now() - cut_at
    await eventually(lambda: cluster.peer_state("sip3", "sip1") == "down", timeout=5)
    both = now() - cut_at
    limit = FAST_TIMERS.tc_interval + FAST_TIMERS.tc_timeout
    # Not a reset: detection needs the heartbeat timeout; and it comes within interval+timeout.
    assert FAST_TIMERS.tc_timeout - 0.1 <= detected <= limit + 0.5, detected
    assert both <= limit + 0.5, both
    await remote.expect(EventName.EVENT_DN_OUT_OF_SERVICE)
    assert (await query(desk, "7001")).get("Owner") == "sip3"


async def test_black_holed_tc_link_comes_back_soon_after_heal(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    await owner_desk(cluster, "sip3", "7001")
    remote, _ = await register(cluster, "sip1", "7001")
    link = cluster.links["sip1-sip3"]
    link.cut("blackhole")
    await remote.expect(EventName.EVENT_DN_OUT_OF_SERVICE)
    # As in a real outage, sip1 redials while the link is still black-holed: its new
    # connection is accepted and what it sends (its TcHello) is swallowed.
    accepted = link.accepted
    await eventually(lambda: link.accepted > accepted, timeout=5)
    dropped = link.dropped
    await eventually(lambda: link.dropped > dropped, timeout=5)

    link.heal()
    # A dialler retries at least every second; a fresh Hello should get through at once.
    limit = FAST_TIMERS.tc_interval + FAST_TIMERS.tc_timeout + 1.0 + 0.5
    await eventually(lambda: cluster.peer_state("sip1", "sip3") == "up", timeout=limit)
    await remote.expect(EventName.EVENT_DN_BACK_IN_SERVICE, timeout=1)
