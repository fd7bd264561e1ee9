"""What a scenario run sees: the agents' desktops, the nodes' state, the services' logs, media.

Each agent is a WWE desktop (``clients.wwe.WweClient``) reached through its DC's sticky proxy;
``AgentDesk`` keeps the history of everything its desktops showed (messages, voice channel
changes, calls, EventErrors) with wall-clock times, across page refreshes and DC changes, so a
check can ask "since the fault, was agent2 logged out and did it log in twice?". The WWE's own
JSON lines go to the run's log directory (``wwe-agentN.log``) and join the merged timeline.

Node state comes from the SIP nodes' control endpoints (``GET /state``), log events from the
services' JSON-lines logs, media from the PSTN gateway's and softphone's control APIs once
they are in the lab (``media_reports``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from clients.wwe import Call, VoiceChanged, VoiceError, WweClient
from clients.wwe.client import LoginOutcome
from emulator.common.jsonlog import JsonLog
from emulator.lab.engine.logs import records
from emulator.lab.errors import LabError
from emulator.lab.scenarios.labsession import LabSession
from emulator.lab.scenarios.model import AgentSetup

STICKY_COOKIE = "DRLAB_UPSTREAM"


@dataclass(frozen=True)
class DesktopOptions:
    """Options of every agent's WWE desktop in a run (``--service-arg wwe=...``): the guide's
    values unless a mutant breaks one."""

    give_up_after: float = 60.0  # "If not recovered after 1 minute"
    handoff: bool = True  # "WWE reconnects to the available GWS node" (scenario 2)


@dataclass
class Seen:
    """One thing a desktop showed: ``kind`` is message | voice | call | error | login."""

    ts: float
    kind: str
    value: Any


@dataclass
class AgentDesk:
    setup: AgentSetup
    log: JsonLog
    client: WweClient | None = None
    history: list[Seen] = field(default_factory=list)

    def since(self, ts: float, kind: str) -> list[Any]:
        return [seen.value for seen in self.history if seen.kind == kind and seen.ts >= ts]

    def watch(self, client: WweClient) -> None:
        def record(kind: str) -> Any:
            return lambda value: self.history.append(Seen(time.time(), kind, value))

        client.events.on("message", record("message"))
        client.events.on("call", record("call"))
        client.events.on("error", record("error"))

        def on_state(change: Any) -> None:
            if isinstance(change, VoiceChanged):
                self.history.append(Seen(time.time(), "voice", change))

        client.events.on("state", on_state)


@dataclass(frozen=True)
class CallRecord:
    name: str
    conn_id: str
    node: str
    agent: str
    leg: str | None = None  # the PSTN gateway's id of the customer's leg (None: node-placed)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    detail: str
    error_code: int | None = None
    login: LoginOutcome | None = None
    http_status: int | None = None  # a server's HTTP refusal (not the desktop declining)
    confirmed_at: float | None = None  # when the event that proved it arrived


class Observer:
    def __init__(
        self,
        lab: LabSession,
        agents: dict[str, AgentSetup],
        log_dir: Path,
        desktop_options: DesktopOptions | None = None,
    ) -> None:
        self.lab = lab
        self.desktop_options = desktop_options or DesktopOptions()
        self.scale = lab.time_scale
        self.log_dir = log_dir
        self._streams: list[TextIO] = []
        self._logs: list[JsonLog] = []
        self.desks = {
            name: AgentDesk(setup, self._log(f"wwe-{name}")) for name, setup in agents.items()
        }
        self.calls: dict[str, CallRecord] = {}
        self.results: dict[str, ActionResult] = {}
        self.verdicts: dict[str, str] = {}  # outcome id -> pass | fail, as they land
        self.best_practice: dict[str, list[str]] = {}  # agent -> why its setup is not aligned
        self.marks: dict[str, float] = {"start": time.time()}
        self.log = self._log("scenario")

    def _log(self, service: str) -> JsonLog:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stream = (self.log_dir / f"{service}.log").open("a")
        self._streams.append(stream)
        log = JsonLog(service, "", stream)
        self._logs.append(log)
        return log

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())
        self.log.event("scenario.mark", mark=name)

    def deadline(self, floor: float, lab_seconds: float) -> float:
        """Real seconds to wait for what takes ``lab_seconds`` in the lab: scaled, and never
        below ``floor`` (what a loaded 2-core machine needs whatever the time scale). A wait
        only: it never stands in for a timing claim (``interval`` measures those)."""
        return max(lab_seconds * self.scale, floor)

    def since(self, name: str | None) -> float:
        return self.marks.get(name or "fault", self.marks.get("fault", self.marks["start"]))

    # -- desktops -------------------------------------------------------------------------

    async def open_desktop(self, agent: str, dc: str, gws: str | None) -> WweClient:
        """A new browser page on the DC's proxy; ``gws`` pins it as an earlier visit would have
        (the proxy's stickiness cookie is already in the browser)."""
        desk = self.desks[agent]
        if desk.client is not None:
            await desk.client.close()  # the old tab is closed without telling the server
        base_url = self.lab.proxy_url(dc)
        # A pin is the proxy's stickiness cookie an earlier visit left in the browser.
        client = WweClient(
            base_url,
            agent,
            desk.setup.password,
            time_scale=self.scale,
            log=desk.log,
            cookies={STICKY_COOKIE: gws} if gws is not None else None,
            give_up_after=self.desktop_options.give_up_after,
            handoff=self.desktop_options.handoff,
        )
        desk.client = client
        desk.watch(client)
        return client

    def desk(self, agent: str) -> AgentDesk:
        return self.desks[agent]

    def client(self, agent: str) -> WweClient:
        client = self.desks[agent].client
        if client is None:
            raise LabError(f"{agent} has no desktop open")
        return client

    async def close(self) -> None:
        for desk in self.desks.values():
            if desk.client is not None:
                with contextlib.suppress(Exception):
                    await desk.client.close()
        # A log writes in batches: what the last batch holds (the last verdicts) goes to its file
        # before the file closes, or the run's timeline would lack it.
        for log in self._logs:
            log.flush()
        for stream in self._streams:
            stream.close()

    # -- logs -----------------------------------------------------------------------------

    def log_entries(self, service: str, event: str, since: float) -> list[dict[str, Any]]:
        path = self.lab.engine.log_path(service)
        return [
            entry
            for entry in records(path)
            if entry.get("event") == event and float(entry.get("ts", 0.0)) >= since
        ]

    def log_entries_any(self, filename: str, prefix: str, since: float) -> list[dict[str, Any]]:
        """Entries of a state-directory file (``lab.jsonl``) whose event starts with ``prefix``."""
        return [
            entry
            for entry in records(self.lab.state_dir / filename)
            if str(entry.get("event", "")).startswith(prefix)
            and float(entry.get("ts", 0.0)) >= since
        ]

    # -- media ----------------------------------------------------------------------------

    async def media_reports(self) -> tuple[list[dict[str, Any]] | None, str]:
        """Every phone's call reports (``GET /calls`` of the PSTN gateway and the softphones),
        each tagged with the phone's service name (``phone``), or None and why not."""
        gateways = self.lab.phones()
        if not self.lab.pstn():
            return None, (
                "no PSTN gateway in the lab (clients/pstn is not in compose.yaml yet), so no "
                "media flows and none is measured"
            )
        reports: list[dict[str, Any]] = []
        for name in gateways:
            try:
                url = f"http://{self.lab.endpoint(name, 'http')}/calls"
                body = await self.lab.get_json(url)
            except (aiohttp.ClientError, TimeoutError, LabError, ValueError) as exc:
                return None, f"{name} media reports unavailable: {exc}"
            items = body.get("calls", body) if isinstance(body, dict) else body
            reports.extend({**item, "phone": name} for item in items if isinstance(item, dict))
        return reports, ""


async def wait_until(predicate: Any, timeout: float, poll: float = 0.05) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(poll)


def call_ids(calls: tuple[Call, ...] | dict[str, Call]) -> list[str]:
    return list(calls) if isinstance(calls, dict) else [call.id for call in calls]


__all__ = ["ActionResult", "AgentDesk", "CallRecord", "Observer", "Seen", "VoiceError"]
