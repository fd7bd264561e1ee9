"""A call's user data over T-Lib: it lives with the call on its call node, every DN party of the
call hears EventAttachedDataChanged, a desktop that registers later reads it in the call list,
and bad requests get an EventError naming the problem with nothing changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    EventName,
    RequestAnswerCall,
    RequestAttachUserData,
    RequestDeletePair,
    RequestDeleteUserData,
    RequestMakeCall,
    RequestQueryAddress,
    RequestUpdateUserData,
)
from tests.sipcluster.conftest import Cluster
from tests.sipcluster.test_cluster_rules import answered_call, owner_desk, register
from tests.support import eventually

ClusterFactory = Callable[..., Awaitable[Cluster]]


async def test_user_data_lives_on_the_call_node_and_reaches_both_parties(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    caller = await owner_desk(cluster, "sip1", "7001")
    callee = await owner_desk(cluster, "sip3", "7002")
    dialing = await caller.send(RequestMakeCall, "7001", other_dn="7002")
    conn_id = dialing.get("ConnID")
    assert dialing.get("CallNode") == "sip1"
    await callee.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    await callee.send(RequestAnswerCall, "7002", conn_id=conn_id)
    caller.drain()

    # The callee's owner is sip3: its request crosses the TC-layer to the call node sip1.
    pairs = {"Account": "42", "Priority": 3, "Order": {"Id": "A-1"}}
    attached = await callee.send(RequestAttachUserData, "7002", conn_id=conn_id, user_data=pairs)
    assert attached.name is EventName.EVENT_ATTACHED_DATA_CHANGED, attached
    assert attached.get("UserData") == pairs
    seen = await caller.expect(EventName.EVENT_ATTACHED_DATA_CHANGED, ConnID=conn_id)
    assert seen.get("UserData") == pairs and seen.reference_id is None
    assert cluster.nodes["sip1"].node.calls[conn_id].user_data == pairs

    updated = await caller.send(
        RequestUpdateUserData, "7001", conn_id=conn_id, user_data={"Priority": 5, "Lang": "fr"}
    )
    assert updated.get("UserData") == {**pairs, "Priority": 5, "Lang": "fr"}
    deleted = await callee.send(RequestDeletePair, "7002", conn_id=conn_id, key="Order")
    assert deleted.get("UserData") == {"Account": "42", "Priority": 5, "Lang": "fr"}

    # A desktop that registers later (as after a failover) reads it in the DN's call list.
    _, registered = await register(cluster, "sip1", "7002")
    (call,) = registered.get("Calls")
    assert call["UserData"] == {"Account": "42", "Priority": 5, "Lang": "fr"}

    cleared = await caller.send(RequestDeleteUserData, "7001", conn_id=conn_id)
    assert cleared.get("UserData") == {}
    info = await caller.send(RequestQueryAddress, "7001")
    assert "UserData" not in info.get("Calls")[0]


async def test_bad_user_data_requests_get_an_error_naming_the_problem_and_change_nothing(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip3", "7001")
    other = await owner_desk(cluster, "sip3", "7002")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    await desk.send(RequestAttachUserData, "7001", conn_id=conn_id, user_data={"Account": "42"})
    other.drain()

    cases = [
        ({"user_data": "Account=42"}, "must be an object of key-value pairs"),
        ({"user_data": {"Account": True}}, "value of 'Account' must be a string, an integer"),
        ({"user_data": {"Order": {"Lines": [1]}}}, "value of 'Order.Lines'"),
        ({"user_data": None}, "mandatory attribute 'UserData' is missing"),
    ]
    for attributes, problem in cases:
        error = await desk.send(RequestAttachUserData, "7001", conn_id=conn_id, **attributes)
        assert error.name is EventName.EVENT_ERROR, (attributes, error)
        assert error.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE
        assert problem in error.get("ErrorMessage"), error

    absent = await desk.send(RequestDeletePair, "7001", conn_id=conn_id, key="Nope")
    assert absent.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE
    assert "no user data key 'Nope'" in absent.get("ErrorMessage")

    unknown = await desk.send(RequestAttachUserData, "7001", conn_id="0000dead", user_data={})
    assert unknown.get("ErrorCode") == ErrorCode.INVALID_CONN_ID

    # Nothing changed, and the other DN heard nothing.
    assert cluster.nodes["sip1"].node.calls[conn_id].user_data == {"Account": "42"}
    assert other.drain() == []


async def test_user_data_of_a_call_whose_call_node_is_cut_off_fails_with_1701(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip3", "7001")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    cluster.partition("sip1-sip3")
    await eventually(lambda: "sip1" not in cluster.nodes["sip3"].node.peers_up, timeout=5)
    error = await desk.send(RequestAttachUserData, "7001", conn_id=conn_id, user_data={"A": "1"})
    assert error.get("ErrorCode") == ErrorCode.CALL_NODE_UNREACHABLE, error
    assert cluster.nodes["sip1"].node.calls[conn_id].user_data == {}


async def test_make_call_with_user_data_carries_it_to_the_callee_on_another_node(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    caller = await owner_desk(cluster, "sip1", "7001")
    callee = await owner_desk(cluster, "sip3", "7002")
    pairs = {"Case": "C-7", "Order": {"Id": "A-1"}}
    dialing = await caller.send(RequestMakeCall, "7001", other_dn="7002", user_data=pairs)
    assert dialing.name is EventName.EVENT_DIALING and dialing.get("UserData") == pairs
    ringing = await callee.expect(EventName.EVENT_RINGING, ConnID=dialing.get("ConnID"))
    assert ringing.get("UserData") == pairs  # across the TC-layer, from its first event
    bad = await caller.send(RequestMakeCall, "7001", other_dn="7002", user_data={"A": [1]})
    assert bad.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE, bad
