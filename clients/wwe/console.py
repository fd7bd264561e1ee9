"""The WWE desktop as a text console: commands in, one timestamped line per thing shown out.

Used by ``python -m clients.wwe login ...`` (interactive on stdin, or ``--script "ready; wait 2;
logout"``). Every user message, state change and call notification of the :class:`WweClient` is
printed as it happens, as ``HH:MM:SS.mmm KIND text`` (or one JSON object per line with
``--json``). Commands are parsed here; a bad command is answered with what is wrong and what is
accepted, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from clients.wwe.client import WweClient
from clients.wwe.desktop import Connection, ConnectionChanged, VoiceChanged
from clients.wwe.errors import BadServerMessage, UsageError, WweError
from clients.wwe.workspace import AgentState, Call, CallState

WORK_MODES = {
    "acw": "AfterCallWork",
    "aftercallwork": "AfterCallWork",
    "auxwork": "AuxWork",
    "walkaway": "WalkAway",
}
HELP = (
    "commands: ready | not-ready [acw] [REASON] | answer [ID] | release [ID] | hold [ID]"
    " | retrieve [ID] | clear [ID] | complete [ID] | make-call NUMBER | transfer [ID] NUMBER"
    " | consult [ID] NUMBER | complete-transfer | conference [ID] NUMBER"
    " | consult-conference [ID] NUMBER | complete-conference | alternate | reconnect"
    " | dtmf [ID] DIGITS | attach [ID] KEY=VALUE... | dnd on|off | forward NUMBER|off"
    " | agent-login | agent-logout | calls | state | messages | relogin"
    " | logout | quit | wait SECONDS | wait-for STATE [TIMEOUT] | help"
)


COMMANDS = frozenset(
    {
        "ready",
        "not-ready",
        "answer",
        "release",
        "hold",
        "retrieve",
        "clear",
        "complete",
        "make-call",
        "transfer",
        "consult",
        "complete-transfer",
        "conference",
        "consult-conference",
        "complete-conference",
        "alternate",
        "reconnect",
        "dtmf",
        "attach",
        "dnd",
        "forward",
        "agent-login",
        "agent-logout",
        "calls",
        "state",
        "messages",
        "relogin",
        "logout",
        "quit",
        "exit",
        "wait",
        "wait-for",
        "help",
    }
)


class CommandError(UsageError):
    """A command line the console cannot run (unknown command, missing or bad argument)."""


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join((self.name, *self.args))


def parse_commands(text: str) -> list[Command]:
    """Split ``"ready; wait 2\\nlogout"`` into commands (``;`` or newlines separate them)."""
    commands: list[Command] = []
    for chunk in text.replace("\n", ";").split(";"):
        try:
            words = shlex.split(chunk, comments=True)
        except ValueError as exc:
            raise CommandError(f"cannot read {chunk.strip()!r}: {exc}") from None
        if words:
            commands.append(Command(words[0].lower(), tuple(words[1:])))
    return commands


class Console:
    """Prints what the desktop shows and runs commands against it."""

    def __init__(self, client: WweClient, out: TextIO, *, as_json: bool = False) -> None:
        self.client = client
        self.out = out
        self.as_json = as_json
        self.finished = False  # quit or logout ran: no more commands
        client.events.on("message", lambda text: self.show("message", text))
        client.events.on("state", self._on_state)
        client.events.on("call", lambda call: self.show("call", call.describe(), id=call.id))
        client.events.on("error", self._on_error)
        self._handlers: dict[str, Callable[[Command], Awaitable[None]]] = {
            "ready": self._simple(client.ready, 0),
            "not-ready": self._not_ready,
            "answer": self._call_action(client.answer),
            "release": self._call_action(client.release),
            "hold": self._call_action(client.hold),
            "retrieve": self._call_action(client.retrieve),
            "clear": self._call_action(client.clear),
            "complete": self._call_action(client.complete),
            "make-call": self._make_call,
            "transfer": self._to_number(client.transfer),
            "consult": self._to_number(client.initiate_transfer),
            "conference": self._to_number(client.conference),
            "consult-conference": self._to_number(client.initiate_conference),
            "complete-transfer": self._with_parent(client.complete_transfer),
            "complete-conference": self._with_parent(client.complete_conference),
            "alternate": self._with_parent(client.alternate),
            "reconnect": self._with_parent(client.reconnect),
            "dtmf": self._to_number(client.send_dtmf),
            "attach": self._attach,
            "dnd": self._dnd,
            "forward": self._forward,
            "agent-login": self._simple(client.agent_login, 0),
            "agent-logout": self._simple(client.agent_logout, 0),
            "calls": self._calls,
            "state": self._state,
            "messages": self._messages,
            "relogin": self._relogin,
            "logout": self._logout,
            "quit": self._quit,
            "exit": self._quit,
            "wait": self._wait,
            "wait-for": self._wait_for,
            "help": self._help,
        }

    @staticmethod
    def knows(name: str) -> bool:
        return name in COMMANDS

    # --- output ------------------------------------------------------------------------------

    def show(self, kind: str, text: str, **fields: Any) -> None:
        now = time.time()  # wall clock: this is for a human reading along, not protocol timing
        if self.as_json:
            line = json.dumps({"ts": round(now, 3), "kind": kind, "text": text, **fields})
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
            line = f"{stamp} {kind:<8} {text}"
        self.out.write(line + "\n")
        self.out.flush()

    def _on_state(self, change: ConnectionChanged | VoiceChanged) -> None:
        self.show("state", change.describe())

    def _on_error(self, error: Exception) -> None:
        # EventErrors are shown as messages already; anything else is worth a line of its own.
        if isinstance(error, BadServerMessage) or not isinstance(error, WweError):
            self.show("error", str(error))

    # --- running -----------------------------------------------------------------------------

    async def run(self, command: Command) -> bool:
        """Run one command; False (and a ``failed`` line) if it could not be done."""
        handler = self._handlers.get(command.name)
        try:
            if handler is None:
                raise CommandError(f"unknown command {command.name!r}; {HELP}")
            await handler(command)
        except WweError as exc:
            self.show("failed", f"{command.text}: {exc.message}")
            return False
        except TimeoutError:
            self.show("failed", f"{command.text}: timed out")
            return False
        return True

    @staticmethod
    def _arity(command: Command, least: int, most: int) -> None:
        if not least <= len(command.args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise CommandError(f"{command.name} takes {wanted} argument(s); {HELP}")

    def _simple(
        self, action: Callable[[], Awaitable[None]], arity: int
    ) -> Callable[[Command], Awaitable[None]]:
        async def run(command: Command) -> None:
            self._arity(command, arity, arity)
            await action()

        return run

    def _call_action(
        self, action: Callable[[str], Awaitable[None]]
    ) -> Callable[[Command], Awaitable[None]]:
        async def run(command: Command) -> None:
            self._arity(command, 0, 1)
            await action(self.resolve_call(command.args[0] if command.args else None))

        return run

    def resolve_call(self, given: str | None) -> str:
        """A call id from what the user typed: the only call, a unique prefix, or as given."""
        calls = self.client.calls
        if given is None:
            if len(calls) == 1:
                return next(iter(calls))
            raise CommandError(
                "which call? " + (", ".join(calls) if calls else "there is no call on the desktop")
            )
        matches = [call_id for call_id in calls if call_id.startswith(given)]
        return matches[0] if len(matches) == 1 else given

    def _to_number(
        self, action: Callable[[str, str], Awaitable[None]]
    ) -> Callable[[Command], Awaitable[None]]:
        """``NAME [ID] ARGUMENT``: a call (the only one if not given) and a number or digits."""

        async def run(command: Command) -> None:
            self._arity(command, 1, 2)
            given = command.args[0] if len(command.args) == 2 else None
            await action(self.resolve_call(given), command.args[-1])

        return run

    def _with_parent(
        self, action: Callable[[str, str], Awaitable[None]]
    ) -> Callable[[Command], Awaitable[None]]:
        """The consultation call on the desktop and the held call it was made from."""

        async def run(command: Command) -> None:
            self._arity(command, 0, 0)
            consults = [call for call in self.client.calls.values() if call.parent_id]
            if len(consults) != 1:
                raise CommandError(f"{command.name} needs exactly one consultation call")
            await action(consults[0].id, consults[0].parent_id)

        return run

    async def _attach(self, command: Command) -> None:
        if not command.args:
            raise CommandError(f"attach takes [ID] KEY=VALUE...; {HELP}")
        given = None if "=" in command.args[0] else command.args[0]
        pairs = command.args[1:] if given is not None else command.args
        data: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"attach: {pair!r} is not KEY=VALUE")
            data[key] = value
        if not data:
            raise CommandError("attach: no KEY=VALUE given")
        await self.client.attach_data(self.resolve_call(given), data)

    async def _dnd(self, command: Command) -> None:
        self._arity(command, 1, 1)
        if command.args[0] not in ("on", "off"):
            raise CommandError("dnd takes on or off")
        await self.client.dnd(command.args[0] == "on")

    async def _forward(self, command: Command) -> None:
        self._arity(command, 1, 1)
        target = command.args[0]
        await self.client.forward(None if target == "off" else target)

    async def _not_ready(self, command: Command) -> None:
        """``not-ready [MODE] [REASON]``: a known work mode, and/or a not-ready reason code."""
        self._arity(command, 0, 2)
        mode = reason = None
        for word in command.args:
            known = WORK_MODES.get(word.lower())
            if known is not None and mode is None:
                mode = known
            elif reason is None:
                reason = word
            else:
                raise CommandError(f"not-ready takes one work mode and one reason; {HELP}")
        await self.client.not_ready(mode, reason)

    async def _make_call(self, command: Command) -> None:
        self._arity(command, 1, 1)
        await self.client.make_call(command.args[0])

    async def _calls(self, command: Command) -> None:
        self._arity(command, 0, 0)
        calls = self.client.calls
        if not calls:
            self.show("calls", "no call")
        for call in calls.values():
            self.show("calls", call.describe(), id=call.id)

    async def _state(self, command: Command) -> None:
        self._arity(command, 0, 0)
        client = self.client
        node = f" via {client.node}" if client.node else ""
        self.show("state", f"connection {client.connection}{node}; voice {client.voice.describe()}")

    async def _messages(self, command: Command) -> None:
        self._arity(command, 0, 0)
        for text in self.client.messages:
            self.show("messages", text)

    async def _relogin(self, command: Command) -> None:
        self._arity(command, 0, 0)
        outcome = await self.client.relogin()
        if outcome.rejected is not None:
            self.show("login", f"agent login rejected: {outcome.rejected.message}")

    async def _logout(self, command: Command) -> None:
        self._arity(command, 0, 0)
        await self.client.logout()
        self.finished = True

    async def _quit(self, command: Command) -> None:
        self._arity(command, 0, 0)
        self.finished = True

    async def _wait(self, command: Command) -> None:
        self._arity(command, 1, 1)
        seconds = _number(command.args[0], "wait")
        await asyncio.sleep(seconds)

    async def _wait_for(self, command: Command) -> None:
        self._arity(command, 1, 2)
        timeout = _number(command.args[1], "wait-for timeout") if len(command.args) > 1 else 30.0
        await self.client.wait_until(self.condition(command.args[0]), timeout)

    def condition(self, wanted: str) -> Callable[[], bool]:
        """What ``wait-for`` waits for: a connection, agent or call state, or (un)available."""
        key = wanted.lower()
        client = self.client
        for connection in Connection:
            if key == connection.value:
                return lambda: client.connection is connection
        for agent_state in AgentState:
            if key == agent_state.value.lower():
                return lambda: client.voice.agent_state is agent_state
        if key in ("available", "unavailable"):
            return lambda: client.voice.available == (key == "available")
        if key == "acw":
            return lambda: client.voice.agent_work_mode == "AfterCallWork"
        for call_state in CallState:
            if key == call_state.value.lower():
                return lambda: _any_call(client, call_state)
        raise CommandError(
            f"wait-for does not know {wanted!r}: a connection state ({', '.join(Connection)}), "
            f"an agent state ({', '.join(AgentState)}), a call state ({', '.join(CallState)}), "
            "acw, available or unavailable"
        )

    async def _help(self, command: Command) -> None:
        self.show("help", HELP)


def _any_call(client: WweClient, state: CallState) -> bool:
    """A call is in ``state`` now (Released: a call was released since log-on)."""
    calls: Iterable[Call] = (
        client.desktop.call_log if state is CallState.RELEASED else client.calls.values()
    )
    return any(call.state is state for call in calls)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{what} needs a number of seconds, not {text!r}") from None
    if not 0 <= value < 86_400:
        raise CommandError(f"{what} must be between 0 and 86400 seconds, not {text}")
    return value
