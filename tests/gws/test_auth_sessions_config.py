"""Lab auth, session bookkeeping and configuration, without sockets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from emulator.gws.auth import TokenAuthority
from emulator.gws.config import ConfigError, UserDirectory
from emulator.gws.errors import AuthError, Unauthorized
from emulator.gws.sessions import SessionRegistry

USERS = UserDirectory.from_options(None, ())
PASSWORD_GRANT = {"grant_type": "password", "username": "agent1", "password": "agent1"}


def test_default_users_are_the_two_lab_agents() -> None:
    agent1, agent2 = USERS.get("agent1"), USERS.get("agent2")
    assert agent1 is not None and agent1.dn == "7001" and agent1.default_place == "Place_7001"
    assert agent2 is not None and agent2.dn == "7002"
    assert USERS.dn_of_place("Place_7002") == "7002"


def test_users_come_from_a_file_and_options(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps(
            {"users": [{"username": "a3", "password": "p", "dn": "7003", "employeeId": "E3"}]}
        )
    )
    users = UserDirectory.from_options(path, ("a4:p4:7004",))
    a3, a4 = users.get("a3"), users.get("a4")
    assert a3 is not None and a3.employee_id == "E3" and a3.agent_login == "a3"
    assert a4 is not None and a4.dn == "7004"
    assert users.get("agent1") is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "not valid JSON"),
        ('[{"username": "x"}]', "'password'"),
        (
            '[{"username": "x", "password": "p", "dn": "1"}, {"username": "x", "password": "p", '
            '"dn": "2"}]',
            "configured twice",
        ),
        (
            '[{"username": "x", "password": "p", "dn": "1"}, {"username": "y", "password": "p", '
            '"dn": "1"}]',
            "DN 1 is given to both",
        ),
        ("3", "expected a list"),
    ],
)
def test_bad_users_files_are_refused_with_a_reason(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        UserDirectory.from_options(path, ())


def test_bad_user_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="NAME:PASSWORD:DN"):
        UserDirectory.from_options(None, ("agent1:agent1",))


def test_token_from_one_node_is_accepted_by_another_with_the_same_secret() -> None:
    gws1 = TokenAuthority(USERS, "lab", 60)
    gws2 = TokenAuthority(USERS, "lab", 60)
    grant = gws1.grant(PASSWORD_GRANT, None, now=1000.0)
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 60
    user = gws2.authenticate(f"Bearer {grant['access_token']}", now=1001.0)
    assert user.username == "agent1"
    with pytest.raises(Unauthorized, match="expired"):
        gws2.authenticate(f"Bearer {grant['access_token']}", now=1061.0)


def test_refresh_token_grants_a_new_access_token_but_is_no_bearer_token() -> None:
    authority = TokenAuthority(USERS, "lab", 60)
    grant = authority.grant(PASSWORD_GRANT, None, now=0.0)
    with pytest.raises(Unauthorized, match="refresh token"):
        authority.authenticate(f"Bearer {grant['refresh_token']}", now=1.0)
    refreshed = authority.grant(
        {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}, None, now=100.0
    )
    assert authority.authenticate(f"Bearer {refreshed['access_token']}", now=101.0)
    with pytest.raises(AuthError, match="not a refresh token"):
        authority.grant(
            {"grant_type": "refresh_token", "refresh_token": grant["access_token"]}, None, 1.0
        )


def test_client_credentials_in_basic_header_are_accepted() -> None:
    authority = TokenAuthority(USERS, "lab", 60)
    basic = "Basic " + base64.b64encode(b"external_api_client:secret").decode()
    assert authority.grant(PASSWORD_GRANT, basic, 0.0)["access_token"]
    with pytest.raises(AuthError) as caught:
        authority.grant(PASSWORD_GRANT, "Basic " + base64.b64encode(b"nocolon").decode(), 0.0)
    assert caught.value.error == "invalid_client" and caught.value.http_status == 401


def test_tenant_prefixed_user_names_are_accepted() -> None:
    authority = TokenAuthority(USERS, "lab", 60)
    grant = authority.grant({**PASSWORD_GRANT, "username": "Environment\\agent1"}, None, 0.0)
    assert authority.authenticate(f"Bearer {grant['access_token']}", 1.0).username == "agent1"


def test_session_expires_only_after_its_cometd_clients_are_gone_for_the_timeout() -> None:
    registry = SessionRegistry()
    user = USERS.get("agent1")
    assert user is not None
    session = registry.create(user, now=0.0)
    assert registry.expired(now=5.0, timeout=10.0) == []
    registry.attach(session, "client-a", now=5.0)
    assert registry.expired(now=100.0, timeout=10.0) == []
    registry.detach("client-a", gone_since=100.0)
    registry.touch(session, now=104.0)  # REST activity counts as a sign of life
    assert registry.expired(now=113.0, timeout=10.0) == []
    assert registry.expired(now=115.0, timeout=10.0) == [session]
    assert registry.next_deadline(10.0) == 114.0


def test_unknown_or_missing_session_ids_are_refused_precisely() -> None:
    registry = SessionRegistry()
    with pytest.raises(Unauthorized, match="missing WORKSPACE_SESSIONID"):
        registry.get(None)
    with pytest.raises(Unauthorized, match="another GWS node"):
        registry.get("nope")
