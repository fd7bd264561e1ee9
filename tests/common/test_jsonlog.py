"""JSON-lines logs: one line per event; inside a loop, written in one batch per flush window."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

from emulator.common.jsonlog import FLUSH_WINDOW, JsonLog


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_outside_a_loop_every_line_is_flushed_at_once() -> None:
    stream = CountingStream()
    log = JsonLog("sip1", "DC1", stream)
    log.event("tlib.request", DN="7001", AgentID=None)
    log.warning("tlib.error", ErrorCode=1700)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["service"], first["dc"], first["event"], first["DN"]) == (
        "sip1",
        "DC1",
        "tlib.request",
        "7001",
    )
    assert "AgentID" not in first  # None fields are left out
    assert (second["level"], second["ErrorCode"]) == ("warning", 1700)
    assert stream.flushes == 2


async def test_lines_logged_inside_a_loop_are_written_together_within_the_window() -> None:
    stream = CountingStream()
    log = JsonLog("gws1", "DC1", stream)
    for number in range(3):
        log.event("cometd.publish", number=number)
    await asyncio.sleep(0)
    assert stream.getvalue() == "" and stream.flushes == 0  # nothing on the hot path
    await asyncio.sleep(FLUSH_WINDOW * 2)
    assert [json.loads(line)["number"] for line in stream.getvalue().splitlines()] == [0, 1, 2]
    assert stream.flushes == 1
    log.event("cometd.publish", number=3)
    await asyncio.sleep(FLUSH_WINDOW * 2)
    assert stream.flushes == 2 and len(stream.getvalue().splitlines()) == 4


def test_lines_pending_at_exit_are_written_by_the_exit_hook() -> None:
    """A service that returns from asyncio.run with lines pending still writes them."""
    script = (
        "import asyncio\n"
        "from emulator.common.jsonlog import JsonLog\n"
        "async def main():\n"
        "    JsonLog('sip1', 'DC1').event('stopped')\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout)["event"] == "stopped"


def test_a_loop_that_closed_before_flushing_does_not_stall_the_log() -> None:
    stream = CountingStream()
    log = JsonLog("proxy-dc1", "DC1", stream)

    async def write_and_leave() -> None:
        log.event("proxy.request")

    loop = asyncio.new_event_loop()
    loop.call_soon(log.event, "proxy.request")
    loop.call_soon(loop.stop)  # the loop ends in the iteration that wrote
    loop.run_forever()
    loop.close()
    assert stream.flushes == 0
    asyncio.run(write_and_leave())  # ends before its window: the exit hook would write both
    log.flush()
    assert len(stream.getvalue().splitlines()) == 2


def test_a_closed_stream_never_raises() -> None:
    stream = CountingStream()
    log = JsonLog("links", "", stream)
    stream.close()
    log.event("link.cut", link="gws1-sip1")
