"""Call control beyond answer/hold/retrieve/release, over T-Lib: RequestClearCall ends the call
for every party, RequestSendDTMF sends digits on a talking party's call (EventDtmfSent), and
RequestSendEvent tells every desktop of a DN an EventUserEvent. Each crosses the TC-layer where
the call or the DN lives elsewhere; bad requests get an EventError naming the problem, with
nothing changed and other DNs undisturbed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from emulator.common.jsonlog import flush_all
from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    EventName,
    RequestAnswerCall,
    RequestClearCall,
    RequestHoldCall,
    RequestMakeCall,
    RequestSendDTMF,
    RequestSendEvent,
)
from tests.sipcluster.conftest import Cluster, Desk
from tests.sipcluster.test_cluster_rules import (
    answered_call,
    conn_ids,
    owner_desk,
    query,
    register,
)
from tests.support import eventually

ClusterFactory = Callable[..., Awaitable[Cluster]]


async def internal_call(cluster: Cluster) -> tuple[Desk, Desk, str]:
    """7001 (owned by sip1) calls 7002 (owned by sip3); the call lives on sip1, answered."""
    caller = await owner_desk(cluster, "sip1", "7001")
    callee = await owner_desk(cluster, "sip3", "7002")
    dialing = await caller.send(RequestMakeCall, "7001", other_dn="7002")
    conn_id = str(dialing.get("ConnID"))
    await callee.expect(EventName.EVENT_RINGING, ConnID=conn_id)
    await callee.send(RequestAnswerCall, "7002", conn_id=conn_id)
    await caller.expect(EventName.EVENT_ESTABLISHED, ConnID=conn_id)
    caller.drain()
    callee.drain()
    return caller, callee, conn_id


def logged(cluster: Cluster, node: str, event: str) -> list[dict[str, object]]:
    flush_all()
    lines = [json.loads(line) for line in cluster.logs[node].getvalue().splitlines() if line]
    return [line for line in lines if line.get("event") == event]


async def test_clear_from_the_far_owner_ends_the_call_for_both_parties(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    caller, callee, conn_id = await internal_call(cluster)
    # 7002's owner is sip3: the request crosses the TC-layer to the call node sip1.
    cleared = await callee.send(RequestClearCall, "7002", conn_id=conn_id)
    assert cleared.name is EventName.EVENT_RELEASED, cleared
    released = await caller.expect(EventName.EVENT_RELEASED, ConnID=conn_id)
    assert released.reference_id is None
    await eventually(lambda: conn_id not in cluster.nodes["sip1"].node.calls, timeout=5)
    assert conn_ids(await query(caller, "7001")) == conn_ids(await query(callee, "7002")) == []


async def test_dtmf_is_sent_by_the_call_node_and_confirmed_to_the_sender_only(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    caller, callee, conn_id = await internal_call(cluster)
    sent = await callee.send(RequestSendDTMF, "7002", conn_id=conn_id, dtmf_digits="12#*A")
    assert sent.name is EventName.EVENT_DTMF_SENT, sent
    assert (sent.get("ConnID"), sent.get("DTMFDigits"), sent.get("CallNode")) == (
        conn_id,
        "12#*A",
        "sip1",
    )
    (line,) = logged(cluster, "sip1", "call.dtmf")
    assert (line["DN"], line["to"], line["digits"]) == ("7002", "7001", "12#*A")
    await caller.absent(EventName.EVENT_DTMF_SENT, within=0.3)


async def test_bad_dtmf_requests_are_refused_with_what_is_wrong(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip3", "7001")
    other = await owner_desk(cluster, "sip3", "7002")
    conn_id = await answered_call(cluster, "sip1", "7001", desk)
    other.drain()
    cases = [
        ({"dtmf_digits": "12x"}, ErrorCode.INVALID_ATTRIBUTE, "must be 1 to 32 DTMF digits"),
        ({"dtmf_digits": "1" * 33}, ErrorCode.INVALID_ATTRIBUTE, "must be 1 to 32 DTMF digits"),
        ({"dtmf_digits": None}, ErrorCode.INVALID_ATTRIBUTE, "'DTMFDigits' is missing"),
        ({"dtmf_digits": 5}, ErrorCode.INVALID_ATTRIBUTE, "must be a non-empty string"),
    ]
    for attributes, code, problem in cases:
        error = await desk.send(RequestSendDTMF, "7001", conn_id=conn_id, **attributes)
        assert error.name is EventName.EVENT_ERROR, (attributes, error)
        assert (error.get("ErrorCode"), problem in error.get("ErrorMessage")) == (code, True), error
    unknown = await desk.send(RequestSendDTMF, "7001", conn_id="0000dead", dtmf_digits="1")
    assert unknown.get("ErrorCode") == ErrorCode.INVALID_CONN_ID

    await desk.send(RequestHoldCall, "7001", conn_id=conn_id)
    held = await desk.send(RequestSendDTMF, "7001", conn_id=conn_id, dtmf_digits="1")
    assert held.get("ErrorCode") == ErrorCode.INVALID_CALL_STATE, held
    assert "is Held, not Established" in held.get("ErrorMessage")

    cluster.partition("sip1-sip3")
    await eventually(lambda: "sip1" not in cluster.nodes["sip3"].node.peers_up, timeout=5)
    cut = await desk.send(RequestSendDTMF, "7001", conn_id=conn_id, dtmf_digits="1")
    assert cut.get("ErrorCode") == ErrorCode.CALL_NODE_UNREACHABLE, cut
    assert logged(cluster, "sip1", "call.dtmf") == []
    assert other.drain() == []


async def test_user_event_reaches_every_desktop_of_the_dn_and_no_other(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip1", "7001")
    # A second desktop of 7001 through sip3 (a supervisor's, or WWE moved to DC2).
    second, _ = await register(cluster, "sip3", "7001")
    other = await owner_desk(cluster, "sip1", "7002")
    for each in (desk, second, other):
        each.drain()
    pairs = {"Campaign": "Spring", "Attempt": 2, "Mwi": {"Mailbox": "7001"}}
    told = await second.send(RequestSendEvent, "7001", user_data=pairs, call_uuid="CU-1")
    assert told.name is EventName.EVENT_USER_EVENT, told
    assert (told.get("UserData"), told.get("CallUuid")) == (pairs, "CU-1")
    seen = await desk.expect(EventName.EVENT_USER_EVENT)
    assert seen.get("UserData") == pairs and seen.reference_id is None
    await other.absent(EventName.EVENT_USER_EVENT, within=0.3)

    for attributes, problem in (
        ({"user_data": None}, "mandatory attribute 'UserData' is missing"),
        ({"user_data": ["Campaign"]}, "must be an object of key-value pairs"),
        ({"user_data": {"A": 1.5}}, "value of 'A' must be a string, an integer"),
    ):
        error = await desk.send(RequestSendEvent, "7001", **attributes)
        assert error.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE, (attributes, error)
        assert problem in error.get("ErrorMessage"), error
    # The second desktop heard its own answer, and nothing of the refused requests.
    assert [e.name for e in second.drain()] == [EventName.EVENT_USER_EVENT]
