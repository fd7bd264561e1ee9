"""The chaos workload: the lab's agents and their customers, live, while the faults run.

Each agent is a WWE desktop (``clients.wwe.WweClient``, with its reconnect, the 60 s give-up
and the hand-off) logged on through its DC's proxy. It goes Ready, and on every call its phone
answers it holds, retrieves and releases it; logged out by a rule, it logs in again; given up
("Please refresh your browser"), it opens a new page after a backoff with jitter. Each agent has
a customer: the PSTN gateway places a call to the agent's DN through a node drawn from the seed,
and half the time the customer hangs up first.

An agent request is ``ok`` only when the desktop shows the state that proves it (Held after a
hold, Ready after ready) after it was sent, ``fail`` when it was refused (an EventError shown,
an HTTP error), ``info`` when neither came within the request timeout. Everything goes into the
run's ``History``, including what each desktop showed, for the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from clients.wwe import (
    AgentState,
    Call,
    CallState,
    Connection,
    ConnectionChanged,
    LoginFailed,
    NotConnected,
    RequestFailed,
    ServerUnreachable,
    VoiceChanged,
    VoiceError,
    WweClient,
    WweError,
)
from emulator.lab.chaos.history import History, Operation
from emulator.lab.chaos.livelab import LiveLab
from emulator.lab.errors import LabError

POLL = 0.05  # real seconds between looks at a desktop
MIN_REQUEST_TIMEOUT = 3.0  # real seconds: a request on a loaded 2-core box needs this long


@dataclass(frozen=True)
class WorkloadAgent:
    user: str
    password: str
    dn: str
    dc: str

    @classmethod
    def parse(cls, text: str) -> WorkloadAgent:
        """``user:password:DN@DC``."""
        head, at, dc = text.partition("@")
        parts = head.split(":")
        if not at or len(parts) != 3 or not all(parts) or not dc:
            raise LabError(f"agent {text!r} is not user:password:DN@DC")
        return cls(parts[0], parts[1], parts[2], dc)

    def spec(self) -> str:
        return f"{self.user}:{self.password}:{self.dn}@{self.dc}"


DEFAULT_AGENTS = (
    WorkloadAgent("agent1", "agent1", "7001", "DC1"),
    WorkloadAgent("agent2", "agent2", "7002", "DC2"),
)


@dataclass(frozen=True)
class WorkloadTimes:
    """Lab seconds (scaled by the lab's time scale)."""

    talk: float = 6.0  # from answer to the agent's release (a hold in the middle)
    call_gap: float = 4.0  # between the end of a customer's call and its next
    request_timeout: float = 20.0  # no proof within this: the request is ``info``
    retry_min: float = 1.0  # a new page after a give-up: backoff, doubled, with jitter
    retry_max: float = 8.0


@dataclass
class Desk:
    """One agent's desktop (a new page after each give-up) and what it showed."""

    agent: WorkloadAgent
    client: WweClient | None = None
    errors: list[VoiceError] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)  # calls the agent is working on
    retry: set[str] = field(default_factory=set)  # calls to release again (a step failed)
    logins: int = 0


class Workload:
    def __init__(
        self,
        lab: LiveLab,
        history: History,
        agents: tuple[WorkloadAgent, ...],
        seed: int,
        time_scale: float,
        times: WorkloadTimes | None = None,
    ) -> None:
        self.lab = lab
        self.history = history
        self.desks = {agent.user: Desk(agent) for agent in agents}
        self.rng = random.Random(seed)
        self.scale = time_scale
        self.times = times or WorkloadTimes()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pstn = lab.pstn()

    def lab_seconds(self, seconds: float) -> float:
        return seconds * self.scale

    @property
    def request_timeout(self) -> float:
        return max(self.lab_seconds(self.times.request_timeout), MIN_REQUEST_TIMEOUT)

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        for desk in self.desks.values():
            self._tasks.append(asyncio.create_task(self._agent(desk), name=f"agent-{desk.agent}"))
            self._tasks.append(asyncio.create_task(self._customer(desk), name="customer"))

    async def stop(self) -> None:
        """Stop the agents and customers (their current request finishes first)."""
        self._stopping.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for result in results:
            if isinstance(result, Exception):
                # A workload that broke itself would leave the checker judging half a run.
                raise LabError(f"the workload failed: {result!r}") from result

    async def close(self) -> None:
        for desk in self.desks.values():
            if desk.client is not None:
                await desk.client.close()
                desk.client = None

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` real seconds; False when the workload is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    # -- an agent -------------------------------------------------------------------------

    async def _agent(self, desk: Desk) -> None:
        backoff = self.times.retry_min
        while not self._stopping.is_set():
            client = desk.client
            if client is None or client.connection in (Connection.LOGGED_OUT, Connection.GAVE_UP):
                if await self.log_on(desk, "login"):
                    backoff = self.times.retry_min
                else:
                    jitter = self.rng.uniform(0.5, 1.0)
                    await self._pause(self.lab_seconds(backoff * jitter))
                    backoff = min(backoff * 2, self.times.retry_max)
                continue
            if client.connection is Connection.CONNECTED:
                await self._work(desk, client)
            await self._pause(POLL)

    async def _work(self, desk: Desk, client: WweClient) -> None:
        voice = client.voice.agent_state
        live = [call for call in client.calls.values() if not call.state.ended]
        if voice is AgentState.LOGGED_OUT and not live and client.voice.available:
            await self.request(desk, "agent_login", client.agent_login, _logged_in(client))
            return
        if voice in (AgentState.NOT_READY, AgentState.LOGGED_IN) and not live:
            await self.request(desk, "ready", client.ready, _agent_is(client, AgentState.READY))
            return
        for call in live:
            if (
                call.state in (CallState.ESTABLISHED, CallState.HELD)
                and call.id not in desk.handled
            ):
                desk.handled.add(call.id)
                await self._handle_call(desk, client, call)
                return

    async def _handle_call(self, desk: Desk, client: WweClient, call: Call) -> None:
        """Talk, hold, retrieve, talk, release: each step only if the call is still there."""
        half = self.lab_seconds(self.times.talk / 2)
        steps: list[tuple[str, Callable[[str], Awaitable[None]], CallState]] = [
            ("hold", client.hold, CallState.HELD),
            ("retrieve", client.retrieve, CallState.ESTABLISHED),
            ("release", client.release, CallState.RELEASED),
        ]
        if call.id in desk.retry:  # a step failed on this call: the agent hangs up
            steps = steps[-1:]
        for op, send, proof in steps:
            if not await self._pause(half if op != "retrieve" else half / 4):
                return
            current = client.calls.get(call.id)
            if (
                current is None
                or current.state.ended
                or client.connection is not Connection.CONNECTED
            ):
                return

            async def sent(send: Callable[[str], Awaitable[None]] = send) -> None:
                await send(call.id)

            if not await self.request(
                desk, op, sent, _call_is(client, call.id, proof), ConnID=call.id
            ):
                # Try again later, straight to the release, as an agent would.
                desk.retry.add(call.id)
                desk.handled.discard(call.id)
                return

    async def log_on(self, desk: Desk, op: str) -> bool:
        """A new page: log on through the agent's DC, then the agent is logged in (``ok``)."""
        agent = desk.agent
        if desk.client is not None:
            await desk.client.close()
        client = WweClient(
            self.lab.proxy_url(agent.dc), agent.user, agent.password, time_scale=self.scale
        )
        desk.client, desk.errors = client, []
        self._watch(desk, client)
        operation = self.history.invoke(agent.user, op, dc=agent.dc)
        try:
            async with asyncio.timeout(self.request_timeout * 2):
                outcome = await client.login()
        except LoginFailed as exc:
            operation.fail(exc.message)
            return False
        except (ServerUnreachable, WweError) as exc:
            operation.info(exc.message)
            return False
        except TimeoutError:
            operation.info("no answer to the log-on")
            return False
        desk.logins += 1
        if outcome.rejected is not None:
            operation.fail(f"agent login rejected: {outcome.rejected.text}", node=outcome.node)
            return True  # the page is up; the agent loop logs the agent in when it can
        operation.ok(node=outcome.node, voice=str(outcome.voice.agent_state))
        return True

    async def request(
        self,
        desk: Desk,
        op: str,
        send: Callable[[], Awaitable[None]],
        proof: Callable[[], bool],
        **fields: Any,
    ) -> bool:
        """Send one request; ``ok`` once ``proof()`` holds after it, ``fail`` on a refusal."""
        client = desk.client
        assert client is not None
        errors = len(desk.errors)
        operation = self.history.invoke(desk.agent.user, op, **fields)
        try:
            await send()
        except NotConnected as exc:
            operation.fail(exc.message)
            return False
        except RequestFailed as exc:
            operation.fail(f"HTTP {exc.status}: {exc.message}")
            return False
        except (ServerUnreachable, WweError) as exc:
            operation.info(exc.message)
            return False
        return await self._prove(operation, desk, errors, proof)

    async def _prove(
        self, operation: Operation, desk: Desk, errors: int, proof: Callable[[], bool]
    ) -> bool:
        client = desk.client
        assert client is not None
        try:
            await client.wait_until(
                lambda: proof() or len(desk.errors) > errors, self.request_timeout
            )
        except TimeoutError:
            operation.info(f"no event within {self.request_timeout:.1f} s")
            return False
        if len(desk.errors) > errors:
            error = desk.errors[errors]
            operation.fail(f"EventError {error.code}: {error.text}", code=error.code)
            return False
        operation.ok()
        return True

    def _watch(self, desk: Desk, client: WweClient) -> None:
        user = desk.agent.user

        def on_state(change: Any) -> None:
            if isinstance(change, ConnectionChanged | VoiceChanged):
                fields: dict[str, Any] = {"change": change.describe()}
                if isinstance(change, VoiceChanged):
                    fields["voice"] = str(change.new.agent_state)
                    fields["DN"] = change.new.dn
                else:
                    fields["connection"] = str(change.new)
                self.history.record("desktop", process=user, **fields)

        def on_call(call: Call) -> None:
            self.history.record("desktop", process=user, ConnID=call.id, call=str(call.state))

        def on_error(error: VoiceError) -> None:
            desk.errors.append(error)
            self.history.record("desktop", process=user, error=error.code, text=error.text)

        def on_message(text: str) -> None:
            self.history.record("desktop", process=user, message=text)

        client.events.on("state", on_state)
        client.events.on("call", on_call)
        client.events.on("error", on_error)
        client.events.on("message", on_message)

    # -- a customer -----------------------------------------------------------------------

    async def _customer(self, desk: Desk) -> None:
        nodes = self.lab.sip_nodes()
        while await self._pause(self.lab_seconds(self.times.call_gap * self.rng.uniform(0.5, 1.5))):
            if not await self._until_ready(desk):
                return
            node = self.rng.choice(nodes)
            hangs_up = self.rng.random() < 0.5
            operation = self.history.invoke(f"customer-{desk.agent.dn}", "call", node=node)
            try:
                status, answer = await self.lab.post_json(
                    f"{self.lab.control(self.pstn)}/calls", {"to": desk.agent.dn, "node": node}
                )
            except LabError as exc:
                operation.info(str(exc))
                continue
            if status != 201 or not isinstance(answer, dict):
                operation.fail(f"HTTP {status}: {answer}")
                continue
            leg = str(answer.get("id"))
            operation.ok(leg=leg)
            await self._until_ended(leg, hangs_up)

    async def _until_ready(self, desk: Desk) -> bool:
        """Calls are routed to a Ready agent (as a routing point would): wait for one."""
        while not self._stopping.is_set():
            client = desk.client
            if client is not None and client.voice.agent_state is AgentState.READY:
                return True
            await self._pause(POLL)
        return False

    async def _until_ended(self, leg: str, hangs_up: bool) -> None:
        """Wait for the call to end; a customer who hangs up does so after the talk time."""
        hang_up_at = asyncio.get_running_loop().time() + self.lab_seconds(self.times.talk * 0.8)
        while not self._stopping.is_set():
            call = await self._leg(leg)
            if call is None or call.get("state") == "ended":
                return
            if hangs_up and asyncio.get_running_loop().time() >= hang_up_at:
                await self.hang_up(leg)
                return
            await self._pause(POLL * 4)

    async def _leg(self, leg: str) -> dict[str, Any] | None:
        try:
            answer = await self.lab.get_json(f"{self.lab.control(self.pstn)}/calls/{leg}")
        except LabError:
            return {"state": "unknown"}
        call = answer.get("call") if isinstance(answer, dict) else None
        return call if isinstance(call, dict) else None

    async def hang_up(self, leg: str) -> None:
        operation = self.history.invoke("customer", "hangup", leg=leg)
        try:
            pstn = self.lab.control(self.pstn)
            status, answer = await self.lab.post_json(f"{pstn}/calls/{leg}/release")
        except LabError as exc:
            operation.info(str(exc))
            return
        if status == 200:
            operation.ok()
        else:
            operation.fail(
                f"HTTP {status}: {answer.get('error') if isinstance(answer, dict) else answer}"
            )


def _logged_in(client: WweClient) -> Callable[[], bool]:
    return lambda: client.voice.agent_state not in (AgentState.LOGGED_OUT,)


def _agent_is(client: WweClient, state: AgentState) -> Callable[[], bool]:
    return lambda: client.voice.agent_state is state


def _call_is(client: WweClient, call_id: str, state: CallState) -> Callable[[], bool]:
    def proven() -> bool:
        call = client.calls.get(call_id)
        if state.ended:
            return call is None  # the desktop drops a call when it ends
        return call is not None and call.state is state

    return proven
