"""WWE (Workspace Web Edition) agent desktop for drlab: a library and a CLI (DESIGN §2.3).

* :mod:`clients.wwe.client` — ``WweClient``: log on, agent and call requests, reconnect / give
  up / re-log-on as the seed describes, pyee events (asyncio);
* :mod:`clients.wwe.desktop` — what the desktop shows: connection table, voice channel, calls,
  user messages (sans-I/O);
* :mod:`clients.wwe.workspace` — Workspace API v3 notifications as frozen dataclasses;
* :mod:`clients.wwe.rest` — the REST calls (the one aiohttp boundary for HTTP);
* :mod:`clients.wwe.console` / :mod:`clients.wwe.cli` — the terminal desktop
  (``python -m clients.wwe``; ``cli`` is the click group, ``main(argv)`` runs it).
"""

from clients.wwe.client import LoginOutcome, WweClient
from clients.wwe.desktop import (
    CONNECTION_LOST,
    UNABLE_TO_CONNECT,
    VOICE_UNAVAILABLE,
    Connection,
    ConnectionChanged,
    VoiceChanged,
)
from clients.wwe.errors import (
    LoginFailed,
    NotConnected,
    RequestFailed,
    ServerUnreachable,
    SessionGone,
    UsageError,
    VoiceError,
    WweError,
)
from clients.wwe.workspace import AgentState, Call, CallState, VoiceState

__all__ = [
    "CONNECTION_LOST",
    "UNABLE_TO_CONNECT",
    "VOICE_UNAVAILABLE",
    "AgentState",
    "Call",
    "CallState",
    "Connection",
    "ConnectionChanged",
    "LoginFailed",
    "LoginOutcome",
    "NotConnected",
    "RequestFailed",
    "ServerUnreachable",
    "SessionGone",
    "UsageError",
    "VoiceChanged",
    "VoiceError",
    "VoiceState",
    "WweClient",
    "WweError",
]
