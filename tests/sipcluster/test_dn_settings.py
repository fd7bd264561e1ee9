"""The DN's settings (DND, call forwarding) over T-Lib: kept by the DN's owner, answered to the
requester, told to every desktop of the DN, reported again on registration; bad requests get an
EventError that names the problem and change nothing for anyone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from emulator.tlib.errors import ErrorCode
from emulator.tlib.messages import (
    EventName,
    RequestCancelCallForward,
    RequestQueryAddress,
    RequestSetCallForward,
    RequestSetDNDOff,
    RequestSetDNDOn,
)
from tests.sipcluster.conftest import Cluster
from tests.sipcluster.test_cluster_rules import owner_desk, register

ClusterFactory = Callable[..., Awaitable[Cluster]]


async def test_dnd_is_answered_told_to_every_desktop_of_the_dn_and_kept_by_the_owner(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    owner = await owner_desk(cluster, "sip3", "7001")
    remote, _ = await register(cluster, "sip1", "7001")  # reaches the owner over the TC-layer
    owner.drain()

    on = await remote.send(RequestSetDNDOn, "7001")
    assert on.name is EventName.EVENT_DND_ON and on.this_dn == "7001"
    seen = await owner.expect(EventName.EVENT_DND_ON)
    assert seen.reference_id is None  # only the requester's copy carries its ReferenceID
    info = await owner.send(RequestQueryAddress, "7001")
    assert info.get("DND") == "On"
    assert cluster.owned("7001")["DND"] == "On"  # the owner's control endpoint

    off = await owner.send(RequestSetDNDOff, "7001")
    assert off.name is EventName.EVENT_DND_OFF
    await remote.expect(EventName.EVENT_DND_OFF)
    assert (await remote.send(RequestQueryAddress, "7001")).get("DND") == "Off"


async def test_call_forward_is_set_reported_on_registration_and_cancelled(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    owner = await owner_desk(cluster, "sip3", "7001")
    forward = await owner.send(RequestSetCallForward, "7001", other_dn="+15550009999")
    assert forward.name is EventName.EVENT_FORWARD_SET
    assert forward.get("OtherDN") == "+15550009999"

    _, registered = await register(cluster, "sip1", "7001")  # a desktop that comes later
    assert registered.get("ForwardTo") == "+15550009999"

    cancel = await owner.send(RequestCancelCallForward, "7001")
    assert cancel.name is EventName.EVENT_FORWARD_CANCEL
    assert (await owner.send(RequestQueryAddress, "7001")).get("ForwardTo") == ""


async def test_bad_dn_setting_requests_get_an_error_naming_the_problem_and_change_nothing(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory(("sip1", "sip3"))
    desk = await owner_desk(cluster, "sip3", "7001")
    other = await owner_desk(cluster, "sip3", "7002")
    await desk.send(RequestSetCallForward, "7001", other_dn="+15550001111")
    other.drain()

    to_itself = await desk.send(RequestSetCallForward, "7001", other_dn="7001")
    assert to_itself.name is EventName.EVENT_ERROR
    assert to_itself.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE
    assert "cannot forward to itself" in to_itself.get("ErrorMessage")

    missing = await desk.send(RequestSetCallForward, "7001", other_dn=None)
    assert missing.name is EventName.EVENT_ERROR
    assert missing.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE
    assert "'OtherDN' is missing" in missing.get("ErrorMessage")

    empty = await desk.send(RequestSetCallForward, "7001", other_dn="")
    assert empty.get("ErrorCode") == ErrorCode.INVALID_ATTRIBUTE
    assert "'OtherDN' must be a non-empty string" in empty.get("ErrorMessage")

    unknown = await desk.send(RequestSetDNDOn, "9999")
    assert unknown.get("ErrorCode") == ErrorCode.NO_SUCH_DN

    unregistered = await desk.send(RequestSetDNDOn, "7003")
    assert unregistered.get("ErrorCode") == ErrorCode.DN_NOT_REGISTERED

    # Nothing changed: the forward set before stays, the other DN heard nothing.
    info = await desk.send(RequestQueryAddress, "7001")
    assert (info.get("ForwardTo"), info.get("DND")) == ("+15550001111", "Off")
    assert other.drain() == []
    assert (await other.send(RequestQueryAddress, "7002")).get("DND") == "Off"
