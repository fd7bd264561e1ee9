"""``python -m clients.wwe`` (and ``drlab wwe``): an agent's WWE desktop in a terminal.

``login USER --password P --dc 1`` logs on through the DC's proxy (DC 1: 127.0.0.1:8080, DC 2:
127.0.0.1:8090, or ``--url``) and then reads commands from stdin, or runs ``--script "ready;
wait 2; logout"`` and exits (0: every command done; 1: log-on or a command failed; 2: misuse).
Every message, state change and call notification is printed as it happens (see ``console``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence

import click

from clients.wwe.client import TRANSPORTS, WweClient
from clients.wwe.console import HELP, Command, CommandError, Console, parse_commands
from clients.wwe.errors import WweError
from emulator.common.cli import raise_open_files_limit
from emulator.common.jsonlog import JsonLog

DC_URLS = {"1": "http://127.0.0.1:8080", "2": "http://127.0.0.1:8090"}


@click.group(name="wwe")
def cli() -> None:
    """A WWE agent desktop (Workspace API v3 + CometD) for the lab."""


@cli.command(epilog=HELP)
@click.argument("username")
@click.option(
    "--password",
    envvar="DRLAB_WWE_PASSWORD",
    help="The agent's password (or $DRLAB_WWE_PASSWORD; asked for on a terminal if omitted).",
)
@click.option(
    "--dc",
    type=click.Choice(sorted(DC_URLS)),
    default="1",
    show_default=True,
    help="Log on through this DC's proxy (1: 127.0.0.1:8080, 2: 127.0.0.1:8090).",
)
@click.option("--url", help="Base URL of a proxy or GWS node (overrides --dc).")
@click.option("--transport", type=click.Choice(TRANSPORTS), default="websocket", show_default=True)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds (before --time-scale) of reconnecting before giving up.",
)
@click.option(
    "--handoff/--no-handoff",
    default=True,
    show_default=True,
    help="Move the session to another node by itself when the node reports its voice service "
    "lost (--no-handoff: stay, a fault-injection knob).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiplies every timer of the desktop.",
)
@click.option("--script", help='Commands to run, then exit, e.g. "ready; wait 2; logout".')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.option("--log", "log_json", is_flag=True, help="Also write JSON-lines logs to stderr.")
def login(
    username: str,
    password: str | None,
    dc: str,
    url: str | None,
    transport: str,
    give_up_after: float,
    handoff: bool,
    time_scale: float,
    script: str | None,
    as_json: bool,
    log_json: bool,
) -> None:
    """Log USERNAME on and run the desktop until logout, quit or end of input."""
    commands: list[Command] | None = None
    if script is not None:
        try:
            commands = parse_commands(script)
            for command in commands:
                if not Console.knows(command.name):
                    raise CommandError(f"unknown command {command.name!r}; {HELP}")
        except CommandError as exc:
            raise click.BadParameter(exc.message, param_hint="--script") from None
    if password is None:
        if not sys.stdin.isatty():
            raise click.UsageError("give --password (stdin is not a terminal to ask on)")
        password = click.prompt("Password", hide_input=True)
    base_url = url or DC_URLS[dc]
    if not base_url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{base_url!r} is not an http:// URL", param_hint="--url")
    raise_open_files_limit()
    code = asyncio.run(
        _run(
            WweClient(
                base_url,
                username,
                password,
                transport=transport,
                give_up_after=give_up_after,
                handoff=handoff,
                time_scale=time_scale,
                log=JsonLog(f"wwe-{username}", stream=sys.stderr) if log_json else None,
            ),
            commands,
            as_json=as_json,
        )
    )
    sys.exit(code)


async def _run(client: WweClient, commands: list[Command] | None, *, as_json: bool) -> int:
    work = asyncio.create_task(_session(client, commands, as_json=as_json))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, work.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        return 0  # stopped on request (SIGINT/SIGTERM): the tab is closed, nothing failed
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _session(client: WweClient, commands: list[Command] | None, *, as_json: bool) -> int:
    console = Console(client, sys.stdout, as_json=as_json)
    try:
        console.show("command", f"login {client.username} via {client.base_url}")
        try:
            outcome = await client.login()
        except WweError as exc:
            console.show("failed", f"login: {exc.message}")
            return 1
        if outcome.rejected is not None:
            console.show("login", f"agent login rejected: {outcome.rejected.message}")
        if commands is not None:
            for command in commands:
                console.show("command", command.text)
                if not await console.run(command):
                    return 1
                if console.finished:
                    break
            return 0
        await _interactive(console)
        return 0
    finally:
        await client.close()


async def _interactive(console: Console) -> None:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read_stdin() -> None:
        # A daemon thread: a blocking read of stdin must not keep the process alive at exit.
        for line in sys.stdin:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(lines.put_nowait, line)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, name="wwe-stdin", daemon=True).start()
    while not console.finished:
        line = await lines.get()
        if line is None:
            return
        try:
            commands = parse_commands(line)
        except CommandError as exc:
            console.show("failed", exc.message)
            continue
        for command in commands:
            await console.run(command)
            if console.finished:
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="wwe")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
