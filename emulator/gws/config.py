"""The GWS node's configuration: lab users (who may log in, with which DN) and the node's timers.

Users come from a JSON file (``--users users.json``: a list of objects, or ``{"users": [...]}``)
or from ``--user NAME:PASSWORD:DN`` options; without either the lab's two agents of DESIGN §1 are
configured (agent1/agent1 on DN 7001, agent2/agent2 on DN 7002). Timers are given in
real-deployment seconds and scaled once, here, by the lab's ``TimeScale``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.gws.errors import GwsError


class ConfigError(GwsError, ValueError):
    """The command line or the users file is not usable; the message says which entry and why."""


@dataclass(frozen=True)
class User:
    """A lab user as the Workspace API reports it in ``data.user``."""

    username: str
    password: str
    dn: str
    dbid: int
    employee_id: str
    agent_login: str
    first_name: str
    last_name: str

    @property
    def default_place(self) -> str:
        return f"Place_{self.dn}"

    def to_workspace(self) -> dict[str, Any]:
        return {
            "dbid": self.dbid,
            "userName": self.username,
            "employeeId": self.employee_id,
            "agentLogin": self.agent_login,
            "defaultPlace": self.default_place,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userProperties": [],
        }


DEFAULT_USERS = ("agent1:agent1:7001", "agent2:agent2:7002")


def _user_from_fields(index: int, fields: Mapping[str, Any]) -> User:
    def text(name: str, default: str | None = None) -> str:
        value = fields.get(name, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"user #{index}: field {name!r} must be a non-empty string")
        return value

    username = text("username")
    dbid = fields.get("dbid", 1000 + index)
    if isinstance(dbid, bool) or not isinstance(dbid, int):
        raise ConfigError(f"user #{index}: field 'dbid' must be an integer")
    return User(
        username=username,
        password=text("password"),
        dn=text("dn"),
        dbid=dbid,
        employee_id=text("employeeId", username),
        agent_login=text("agentLogin", username),
        first_name=text("firstName", username.capitalize()),
        last_name=text("lastName", "Lab"),
    )


def parse_user_option(index: int, option: str) -> User:
    """Parse ``NAME:PASSWORD:DN`` as given to ``--user``."""
    parts = option.split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"--user {option!r}: expected NAME:PASSWORD:DN")
    username, password, dn = parts
    return _user_from_fields(index, {"username": username, "password": password, "dn": dn})


def load_users_file(path: Path) -> list[User]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read users file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"users file {path} is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        document = document.get("users")
    if not isinstance(document, list):
        raise ConfigError(f"users file {path}: expected a list of users or {{'users': [...]}}")
    users: list[User] = []
    for index, entry in enumerate(document, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"users file {path}: user #{index} is not an object")
        users.append(_user_from_fields(index, entry))
    return users


class UserDirectory:
    """Users by name and by place; names and DNs must be unique."""

    def __init__(self, users: Iterable[User]) -> None:
        self._by_name: dict[str, User] = {}
        self._by_dn: dict[str, User] = {}
        for user in users:
            if user.username in self._by_name:
                raise ConfigError(f"user {user.username!r} is configured twice")
            if user.dn in self._by_dn:
                raise ConfigError(
                    f"DN {user.dn} is given to both {self._by_dn[user.dn].username!r} "
                    f"and {user.username!r}"
                )
            self._by_name[user.username] = user
            self._by_dn[user.dn] = user
        if not self._by_name:
            raise ConfigError("no users configured")

    @classmethod
    def from_options(cls, users_file: Path | None, user_options: Sequence[str]) -> UserDirectory:
        users: list[User] = []
        if users_file is not None:
            users.extend(load_users_file(users_file))
        start = len(users) + 1
        users.extend(parse_user_option(start + i, text) for i, text in enumerate(user_options))
        if not users:
            users = [parse_user_option(i + 1, text) for i, text in enumerate(DEFAULT_USERS)]
        return cls(users)

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[User]:
        return iter(self._by_name.values())

    def get(self, username: str) -> User | None:
        return self._by_name.get(username)

    def user_of_dn(self, dn: str) -> User | None:
        return self._by_dn.get(dn)

    def dn_of_place(self, place: str) -> str | None:
        for user in self._by_name.values():
            if user.default_place == place:
                return user.dn
        return None


@dataclass(frozen=True)
class GwsTimers:
    """Node timers in real-deployment seconds; ``TimeScale.scaled`` applies the lab's time scale."""

    session_timeout: float = 60.0
    addp_interval: float = 10.0
    addp_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    connect_timeout: float = 10.0
    cometd_timeout: float = 30.0
    cometd_max_interval: float = 10.0


@dataclass(frozen=True)
class GwsConfig:
    name: str
    dc: str
    sip_name: str
    sip_host: str
    sip_port: int
    users: UserDirectory
    timers: GwsTimers = field(default_factory=GwsTimers)
    auth_secret: str = "drlab-lab-auth-secret"
    token_ttl: float = 3600.0
    max_body_bytes: int = 64 * 1024
    # False: a timed-out session leaves its DN registered (SCENARIOS S1.14).
    unregister_on_timeout: bool = True
