"""The lab's Workspace configuration and targets directory, as a desktop reads them at start-up.

``configuration`` is what ``WorkspaceInitializationComplete`` and ``GET /configuration`` carry,
in the shapes the Java client's ``WorkspaceApi.extractConfiguration`` reads: action codes
(``name``, ``code``, ``type``, ``subCodes``, ``userProperties``: the not-ready reasons a desktop
offers), business attributes (``id``, ``name``, ``displayName``, ``values[]``: the disposition
codes), transactions (``name``, ``alias``, ``userProperties``), ``settings`` and ``agentGroups``.
The lab has one fixed configuration (a lab has no Configuration Server); targets are the lab's
users (``Target`` of the generated client: ``DBID``, ``name``, ``type`` ``agent``, ``number``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulator.gws.config import User

NOT_READY_REASONS = (("Break", "Break"), ("Lunch", "Lunch"), ("Training", "Training"))

_ACTION_CODES = [
    {"name": name, "code": code, "type": "NotReady", "subCodes": [], "userProperties": []}
    for name, code in NOT_READY_REASONS
]

_BUSINESS_ATTRIBUTES = [
    {
        "id": 101,
        "name": "DispositionCode",
        "displayName": "Disposition Code",
        "description": "How the call ended, as the agent records it",
        "values": [
            {
                "id": 1000 + index,
                "name": name,
                "displayName": name,
                "description": f"Disposition {name}",
                "default": index == 0,
            }
            for index, name in enumerate(("Resolved", "CallBack", "Escalated"))
        ],
        "userProperties": [],
    }
]

_TRANSACTIONS = [
    {
        "name": "DrlabCaseData",
        "alias": "DrlabCaseData",
        "userProperties": [
            {
                "key": "interaction-workspace",
                "type": "kvlist",
                "value": [
                    {
                        "key": "interaction.case-data.format-business-attribute",
                        "type": "str",
                        "value": "DispositionCode",
                    }
                ],
            }
        ],
    }
]

# GET /configuration?types=...: the names a desktop asks for -> the key of ``data``.
CONFIGURATION_TYPES = {
    "actionCodes": "actionCodes",
    "agentGroups": "agentGroups",
    "settings": "settings",
    "workspaceTransactions": "transactions",
    "businessAttributes": "businessAttributes",
}
DEFAULT_TYPES = ("actionCodes", "agentGroups", "settings")


def configuration(types: Iterable[str] = CONFIGURATION_TYPES) -> dict[str, Any]:
    everything: dict[str, Any] = {
        "actionCodes": _ACTION_CODES,
        "agentGroups": [],
        "settings": [],
        "transactions": _TRANSACTIONS,
        "businessAttributes": _BUSINESS_ATTRIBUTES,
    }
    return {CONFIGURATION_TYPES[name]: everything[CONFIGURATION_TYPES[name]] for name in types}


def business_attribute(attribute_id: int) -> dict[str, Any] | None:
    return next((a for a in _BUSINESS_ATTRIBUTES if a["id"] == attribute_id), None)


def agent_target(user: User, switch_name: str, voice: dict[str, Any] | None) -> dict[str, Any]:
    """One agent as a transfer dialog lists it; ``voice`` is its DN as this node knows it."""
    target: dict[str, Any] = {
        "DBID": user.dbid,
        "name": f"{user.first_name} {user.last_name}",
        "type": "agent",
        "firstName": user.first_name,
        "lastName": user.last_name,
        "employeeId": user.employee_id,
        "userName": user.username,
        "number": user.dn,
        "switchName": switch_name,
    }
    if voice is not None:
        state = voice["agentState"]
        target["availability"] = {
            "channels": [
                {
                    "name": "voice",
                    "available": state == "Ready",
                    "userState": {"state": state, "workMode": voice["agentWorkMode"]},
                    "phoneNumber": user.dn,
                    "switchName": switch_name,
                }
            ]
        }
    return target


def matches(user: User, term: str, exact: bool) -> bool:
    """A search term finds an agent by its name, user name, employee id or DN number."""
    fields = (
        f"{user.first_name} {user.last_name}",
        user.username,
        user.employee_id,
        user.agent_login,
        user.dn,
    )
    if exact:
        return term in fields
    return any(term.lower() in field.lower() for field in fields)
