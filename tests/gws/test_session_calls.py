"""The session calls a desktop makes at start-up, in the shapes the Workspace clients read, and
the Workspace error shape for every channel the lab does not serve (never an HTML page)."""

from __future__ import annotations

from typing import Any

API = "/workspace/v3"


async def test_configuration_carries_not_ready_reasons_business_attributes_and_transactions(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    status, body = await desk.call("GET", f"{API}/configuration")
    assert status == 200 and body["status"]["code"] == 0, body
    # Without ?types the Workspace API's default set: actionCodes, agentGroups, settings.
    assert set(body["data"]) == {"actionCodes", "agentGroups", "settings"}
    for code in body["data"]["actionCodes"]:
        assert {"name", "code", "type", "subCodes", "userProperties"} <= set(code)
    assert [c["code"] for c in body["data"]["actionCodes"] if c["type"] == "NotReady"]
    status, body = await desk.call(
        "GET", f"{API}/configuration?types=businessAttributes,workspaceTransactions"
    )
    assert set(body["data"]) == {"businessAttributes", "transactions"}
    [attribute] = body["data"]["businessAttributes"]
    assert isinstance(attribute["id"], int) and attribute["values"]
    assert {"id", "name", "displayName", "description", "default"} <= set(attribute["values"][0])
    assert {"name", "alias", "userProperties"} <= set(body["data"]["transactions"][0])
    status, one = await desk.call(
        "GET", f"{API}/configuration/business-attribute/{attribute['id']}"
    )
    assert status == 200 and one["data"] == attribute
    for path, code, fragment in (
        ("configuration?types=bogus", 400, "unknown configuration types"),
        ("configuration/business-attribute/999", 404, "no business attribute"),
        ("configuration/business-attribute/x", 400, "not a number"),
    ):
        status, body = await desk.call("GET", f"{API}/{path}")
        assert (status, body["status"]["code"]) == (code, code), body
        assert fragment in body["status"]["message"]


async def test_initialization_complete_carries_the_same_configuration(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.desktop()
    await desk.initialize(await desk.token("agent1", "agent1"))
    await desk.cometd_start()
    complete = await desk.expect(lambda m: m["channel"] == "/workspace/v3/initialization")
    configuration = complete["data"]["data"]["configuration"]
    _, body = await desk.call(
        "GET", f"{API}/configuration?types=actionCodes,businessAttributes,workspaceTransactions"
    )
    for key, value in body["data"].items():
        assert configuration[key] == value, key


async def test_place_dns_userinfo_and_keep_alive(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    status, body = await desk.call("GET", f"{API}/configuration/places/Place_7001/dns")
    assert status == 200, body
    [device] = body["data"]["devices"]
    assert (device["number"], device["switchName"]) == ("7001", "sip1")
    assert "agentState" in device
    status, body = await desk.call("GET", f"{API}/configuration/places/Nowhere/dns")
    assert status == 404 and "unknown place" in body["status"]["message"]
    status, body = await desk.call("GET", f"{API}/userinfo")
    assert status == 200 and body["data"]["user"]["userName"] == "agent1"
    services = body["data"]["user"]["activeSession"]["services"]
    assert services == [{"serviceName": "VOICE", "serviceState": "AVAILABLE"}]
    status, body = await desk.call("GET", f"{API}/auth-keep-alive")
    assert (status, body["status"]["code"]) == (200, 0)


async def test_targets_search_finds_the_lab_agents_for_a_transfer_dialog(lab_factory: Any) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    await lab.logged_on("agent2")
    status, body = await desk.call("GET", f"{API}/targets?searchTerm=agent&types=agent")
    assert status == 200, body
    targets = {t["userName"]: t for t in body["data"]["targets"]}
    assert set(targets) == {"agent1", "agent2"} and body["data"]["totalMatches"] == 2
    two = targets["agent2"]
    assert (two["type"], two["number"], two["switchName"]) == ("agent", "7002", "sip1")
    # By DN number, exactly; limited; one by its id.
    status, body = await desk.call("GET", f"{API}/targets?searchTerm=7002&matchType=exact")
    assert [t["userName"] for t in body["data"]["targets"]] == ["agent2"]
    status, body = await desk.call("GET", f"{API}/targets?searchTerm=agent&limit=1")
    assert (len(body["data"]["targets"]), body["data"]["totalMatches"]) == (1, 2)
    status, body = await desk.call("GET", f"{API}/targets/agent/{two['DBID']}")
    assert status == 200 and body["data"]["target"]["userName"] == "agent2"
    # Recently used targets: added, then listed first.
    status, body = await desk.call("POST", f"{API}/targets/recents/add", {"data": {"target": two}})
    assert status == 200, body
    status, body = await desk.call("GET", f"{API}/targets/recents")
    assert [t["userName"] for t in body["data"]["targets"]] == ["agent2"]
    for method, path, code, fragment in (
        ("GET", "targets", 400, "searchTerm"),
        ("GET", "targets?searchTerm=a&limit=-1", 400, "not a non-negative number"),
        ("GET", "targets/skill/1", 404, "only 'agent'"),
        ("GET", "targets/agent/424242", 404, "no agent target"),
        ("POST", "targets/recents/add", 400, "data.target"),
    ):
        status, body = await desk.call(method, f"{API}/{path}", {} if method == "POST" else None)
        assert (status, body["status"]["code"]) == (code, code), (path, body)
        assert fragment in body["status"]["message"], (path, body)


async def test_channels_the_lab_does_not_model_are_answered_in_the_workspace_error_shape(
    lab_factory: Any,
) -> None:
    lab = await lab_factory()
    desk = await lab.logged_on("agent1")
    for method, path, fragment in (
        ("POST", "media/chat/interactions/i1/accept", "chat"),
        ("POST", "media/email/interactions/create", "email"),
        ("POST", "media/workitem/ready", "open media"),
        ("POST", "ucs/contacts/search", "Universal Contact Server"),
        ("POST", "workbins/get-workbins", "workbins"),
        ("POST", "media-management/get-snapshot", "media management"),
        ("GET", "reporting/subscriptions", "reporting"),
        ("POST", "supervisor/voice/listen", "supervisor"),
        ("GET", "targets/personal-favorites", "personal favorites"),
    ):
        status, body = await desk.call(method, f"{API}/{path}", {} if method == "POST" else None)
        assert (status, body["status"]["code"]) == (501, 501), (path, body)
        assert (
            fragment in body["status"]["message"]
            and "voice channel only" in (body["status"]["message"])
        ), (path, body)
    status, body = await desk.call("GET", f"{API}/no/such/thing")
    assert status == 404 and "no such resource" in body["status"]["message"]
    status, _ = await desk.call("GET", f"{API}/current-session")
    assert status == 200
