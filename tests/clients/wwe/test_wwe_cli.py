"""``python -m clients.wwe login ...`` as a real process against an in-process DC."""

from __future__ import annotations

import asyncio
import sys

from clients.wwe.cli import DC_URLS, main
from clients.wwe.console import COMMANDS, Console
from clients.wwe.desktop import CONNECTION_LOST

from .wwe_test_lab import datacentre


async def wwe_cli(*args: str, stdin: bytes | None = None, timeout: float = 30.0) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.wwe",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def kinds(output: str) -> list[tuple[str, str]]:
    """(kind, text) of each ``HH:MM:SS.mmm KIND text`` line."""
    rows = []
    for line in output.splitlines():
        stamp, kind, text = [*line.split(None, 2), "", ""][:3]
        assert stamp.count(":") == 2 and "." in stamp, line
        rows.append((kind, text))
    return rows


async def test_script_mode_prints_every_message_and_state_change_then_exits_zero() -> None:
    async with datacentre() as dc:
        code, output = await wwe_cli(
            "login",
            "agent1",
            "--password",
            "agent1",
            "--url",
            dc.url,
            "--transport",
            "long-polling",
            "--script",
            "ready; wait-for Ready 10; not-ready acw; wait-for acw 10; calls; state; logout",
        )
        assert code == 0, output
        rows = kinds(output)
        assert ("command", f"login agent1 via {dc.url}") in rows
        assert any(
            kind == "message" and text.startswith("Logged on as agent1") for kind, text in rows
        )
        assert ("state", "connection logged-out -> connected") in rows
        assert ("state", "voice DN 7001 LoggedIn (ManualIn), voice channel available") in rows
        assert ("state", "voice DN 7001 Ready (ManualIn), voice channel available") in rows
        assert ("state", "voice DN 7001 NotReady (AfterCallWork), voice channel available") in rows
        assert ("calls", "no call") in rows
        assert rows[-1] == ("state", "connection connected -> logged-out")
        assert dc.sip_saw("RequestAgentNotReady", "7001")


async def test_interactive_mode_reads_commands_from_stdin_until_quit() -> None:
    async with datacentre() as dc:
        code, output = await wwe_cli(
            "login",
            "agent2",
            "--password",
            "agent2",
            "--url",
            dc.url,
            stdin=b"state\nbogus\nanswer\nmake-call +15559870000\n"
            b"wait-for Dialing 10\ncalls\nquit\n",
        )
        assert code == 0, output
        rows = kinds(output)
        assert any(
            kind == "state" and "connection connected via gws" in text for kind, text in rows
        )
        assert any(kind == "failed" and "unknown command 'bogus'" in text for kind, text in rows)
        assert ("failed", "answer: which call? there is no call on the desktop") in rows
        assert any(kind == "calls" and "Dialing to +15559870000" in text for kind, text in rows)


async def test_wrong_password_is_a_clear_failure_with_exit_status_one() -> None:
    async with datacentre() as dc:
        code, output = await wwe_cli(
            "login", "agent1", "--password", "nope", "--url", dc.url, "--script", "ready"
        )
    assert code == 1
    assert "failed   login: login refused for 'agent1': bad credentials (invalid_grant)" in output
    assert "Traceback" not in output


async def test_unknown_call_id_fails_the_script_with_the_servers_reason() -> None:
    async with datacentre() as dc:
        code, output = await wwe_cli(
            "login", "agent1", "--password", "agent1", "--url", dc.url, "--script", "hold 42; ready"
        )
    assert code == 1
    assert "failed   hold 42: call '42' is not a call of DN 7001" in output
    assert "command  ready" not in output  # the script stops at the first failure


async def test_unreachable_server_fails_login_without_a_traceback() -> None:
    code, output = await wwe_cli(
        "login",
        "agent1",
        "--password",
        "agent1",
        "--url",
        "http://127.0.0.1:9",
        "--script",
        "ready",
    )
    assert code == 1
    assert "failed   login: POST /auth/v3/oauth/token:" in output
    assert "Traceback" not in output


def test_misuse_exits_two_and_names_what_is_accepted() -> None:
    assert main(["login", "agent1", "--password", "x", "--script", "ready; dance"]) == 2
    assert main(["login", "agent1", "--password", "x", "--dc", "3"]) == 2
    assert main(["login", "agent1", "--password", "x", "--url", "ftp://x"]) == 2
    assert main(["--help"]) == 0
    assert DC_URLS == {"1": "http://127.0.0.1:8080", "2": "http://127.0.0.1:8090"}


def test_every_command_has_a_handler() -> None:
    assert all(Console.knows(name) for name in COMMANDS)
    assert not Console.knows("dance")
    assert CONNECTION_LOST.endswith("Reconnecting...")


async def test_sigterm_closes_the_desktop_and_exits_cleanly() -> None:
    async with datacentre() as dc:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "clients.wwe", "login", "agent1", "--password", "agent1", "--url", dc.url),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        while b"Logged on as agent1" not in await asyncio.wait_for(process.stdout.readline(), 20):
            pass
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err.decode()
        assert b"Traceback" not in err
