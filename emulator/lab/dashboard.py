"""``drlab ui``: the live dashboard of a running lab (issue 17), an aiohttp app with no build step.

    GET  /                 the page (emulator/ui/static/dashboard.*, the vendored vis-timeline)
    GET  /api/status       what ``drlab status --json`` prints
    GET  /api/events       Server-Sent Events: ``status`` when it changes (polled every 0.25 s),
                           ``timeline`` (the entries so far and the fault spans) when new ones come
    POST /api/faults       {"action": "cut", "links": ["gws1-sip1"], "mode": "reset"} and the
                           other faults of the CLI: heal (links or all), partition (dcs), kill,
                           pause, resume, stop, start (service)

Faults go through ``LabFaults``, the one fault API the CLI, chaos and scenarios use, so the names
are checked in the same place and a bad one gets the CLI's own message: 400 with
``{"error": ...}`` for bad JSON, an unknown action or name, a missing field; 401 when a token is
required and missing or wrong; 502 when the lab fails the operation.

It binds to loopback by default. Any other address needs ``--token``, which every API request
then carries as ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (an EventSource cannot set a
header).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import ClientError, web

from emulator.lab.engine.protocol import Engine
from emulator.lab.errors import FaultRefused, LabError, UnknownName
from emulator.lab.faults import CUT_MODES, LabFaults
from emulator.lab.status import lab_status
from emulator.lab.timeline import ROUTINE_EVENTS, Timeline
from emulator.ui.report import VIS_TIMELINE_CSS, VIS_TIMELINE_JS, asset, run_view

DEFAULT_PORT = 8475
STATUS_POLL = 0.25  # s: a cut shows well within the 1 s the issue asks for
TIMELINE_EVERY = 1.0  # s between timeline redraws: a browser redraws thousands of items slowly
HISTORY = 2000  # timeline entries kept for the page (report.MAX_ITEMS)
SERVICE_ACTIONS = ("kill", "pause", "resume", "stop", "start")
ACTIONS = ("cut", "heal", "partition", *SERVICE_ACTIONS)
_ASSETS = {
    "/": ("static/dashboard.html", "text/html"),
    "/dashboard.js": ("static/dashboard.js", "text/javascript"),
    "/dashboard.css": ("static/dashboard.css", "text/css"),
    "/timeline.js": ("static/report.js", "text/javascript"),
    "/timeline.css": ("static/report.css", "text/css"),
    "/vendor/vis-timeline.min.js": (VIS_TIMELINE_JS, "text/javascript"),
    "/vendor/vis-timeline.min.css": (VIS_TIMELINE_CSS, "text/css"),
}


class BadRequest(FaultRefused):
    """A request the dashboard refuses (a usage error, like a malformed fault): 400."""


_log = logging.getLogger(__name__)
Versioned = tuple[int, str]  # (version, JSON text)


class Feed:
    """One poller for every open page: the lab's status every ``STATUS_POLL`` and the timeline
    view at most every ``TIMELINE_EVERY``, each turned into JSON once and sent to every page (a
    poller per page would read the lab and the logs once per tab). It runs while a page is open;
    the next first page starts it again from the start of the logs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.status: Versioned | None = None
        self.view: Versioned | None = None
        self._pages = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[None]:
        self._pages += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            self._pages -= 1
            if not self._pages and self._task is not None:
                self._task.cancel()
                self._task, self.status, self.view = None, None, None

    async def changed_since(
        self, sent: tuple[int, int]
    ) -> tuple[Versioned | None, Versioned | None]:
        """The status and view once either is newer than the versions ``sent``."""

        def newer() -> bool:
            status, view = self.status, self.view
            return (status is not None and status[0] != sent[0]) or (
                view is not None and view[0] != sent[1]
            )

        async with self._changed:
            await self._changed.wait_for(newer)
        return self.status, self.view

    async def _run(self) -> None:
        timeline = Timeline(self.engine.state_dir, exclude=ROUTINE_EVENTS)
        history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        drawn_at = -TIMELINE_EVERY
        read, drawn = 0, -1  # entries read so far, and as many when the view was last made
        while True:
            try:
                text = json.dumps(await asyncio.to_thread(lab_status, self.engine), default=str)
            except Exception:  # one failed read must not end every page's stream
                _log.exception("reading the lab's status failed; trying again")
                await asyncio.sleep(STATUS_POLL)
                continue
            changed = self.status is None or text != self.status[1]
            if changed:
                self.status = ((self.status[0] if self.status else 0) + 1, text)
            new = await asyncio.to_thread(timeline.read)
            history.extend(new)
            read += len(new)
            now = asyncio.get_running_loop().time()
            if now - drawn_at >= TIMELINE_EVERY and read != drawn:
                drawn_at, drawn = now, read
                view = json.dumps(run_view("lab", list(history)), default=str)
                self.view = ((self.view[0] if self.view else 0) + 1, view)
                changed = True
            if changed:
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(STATUS_POLL)


class Dashboard:
    def __init__(self, engine: Engine, token: str | None = None) -> None:
        self.engine = engine
        self.faults = LabFaults(engine, "dashboard")
        self.token = token
        self.app = web.Application(middlewares=[self._guard])
        for path in _ASSETS:
            self.app.router.add_get(path, self._asset)
        self.app.router.add_get("/api/status", self._status)
        self.app.router.add_get("/api/events", self._events)
        self.app.router.add_post("/api/faults", self._fault)
        self.feed = Feed(engine)

    # -- access ---------------------------------------------------------------------------

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.token is not None and request.path.startswith("/api/"):
            given = request.query.get("token", "")
            header = request.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                given = header.removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                what = "a wrong token" if given else "no token"
                return _error(401, f"{what}: this dashboard wants 'Authorization: Bearer TOKEN'")
        return await handler(request)

    # -- reads ----------------------------------------------------------------------------

    async def _asset(self, request: web.Request) -> web.Response:
        path, content_type = _ASSETS[request.path]
        return web.Response(text=asset(path), content_type=content_type)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(lab_status, self.engine))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent = (0, 0)  # the feed's versions of the status and the view this page has
        # The page went away (closed, reloaded): its stream ends here.
        with contextlib.suppress(ConnectionError, ClientError, asyncio.CancelledError):
            async with self.feed.page():
                while True:
                    status, view = await self.feed.changed_since(sent)
                    if status is not None and status[0] != sent[0]:
                        await response.write(f"event: status\ndata: {status[1]}\n\n".encode())
                    if view is not None and view[0] != sent[1]:
                        await response.write(f"event: timeline\ndata: {view[1]}\n\n".encode())
                    sent = (status[0] if status else 0, view[0] if view else 0)
        return response

    # -- faults ---------------------------------------------------------------------------

    async def _fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        try:
            done = await self.apply(body)
        except (UnknownName, FaultRefused) as exc:  # BadRequest among them
            return _error(400, str(exc))
        except LabError as exc:
            return _error(502, str(exc))
        return web.json_response({"done": done})

    async def apply(self, body: Any) -> str:
        """One fault as the CLI would do it; says what was done."""
        if not isinstance(body, Mapping):
            raise BadRequest("the body must be a JSON object with an 'action'")
        action = body.get("action")
        if action not in ACTIONS:
            raise BadRequest(f"unknown action {action!r}; valid: {', '.join(ACTIONS)}")
        faults = self.faults
        if action in SERVICE_ACTIONS:
            service = faults.check_service(_text(body, "service"))
            if action == "start":
                await faults.start(service, lambda line: None)
            else:
                await getattr(faults, action)(service)
            return f"{action} {service}"
        mode = body.get("mode", "reset")
        if not isinstance(mode, str):
            raise BadRequest(f"'mode' must be one of {', '.join(CUT_MODES)}")
        if action == "partition":
            dcs = _names(body, "dcs")
            if len(dcs) != 2:
                raise BadRequest("'dcs' must name two DCs")
            links = await faults.partition(dcs[0], dcs[1], None, mode)
            return f"partition {dcs[0]} {dcs[1]}: {len(links)} link(s) cut"
        if action == "heal" and body.get("all") is True:
            healed = await faults.heal(None)
            return f"healed {len(healed)} link(s)"
        links = faults.check_links(_names(body, "links"))
        if action == "heal":
            await faults.heal(links)
            return f"healed {', '.join(links)}"
        await faults.cut(links, mode, None)
        return f"cut {', '.join(links)} ({mode})"


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key!r} must be a name (a non-empty string)")
    return value


def _names(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key!r} must be a non-empty list of names")
    return value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def check_bind(host: str, token: str | None) -> None:
    """Loopback by default; another address only with a token (anyone there could cut links)."""
    if token is None and not _is_loopback(host):
        raise BadRequest(f"--host {host} is not loopback: give --token too")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


async def serve(engine: Engine, host: str, port: int, token: str | None) -> None:
    """Serve the dashboard until cancelled."""
    dashboard = Dashboard(engine, token)
    runner = web.AppRunner(dashboard.app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
