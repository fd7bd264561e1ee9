"""``python -m emulator.links`` as the lab runs it: config, ready line, faults, clean exit."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from emulator.links.client import LinksClient
from tests.links.conftest import Upstream, roundtrip

ROOT = Path(__file__).resolve().parents[2]


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator.links",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def next_event(process: asyncio.subprocess.Process, event: str) -> dict[str, Any]:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while line := await process.stdout.readline():
            record: dict[str, Any] = json.loads(line)
            if record["event"] == event:
                return record
    raise AssertionError(f"no {event!r} line before the service ended")


async def test_service_serves_its_config_logs_faults_and_stops_on_sigterm(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = tmp_path / "links.json"
    config.write_text(
        json.dumps(
            {
                "links": [
                    {
                        "name": "gws1-sip1",
                        "listen": "127.0.0.1:0",
                        "upstream": str(upstream.endpoint),
                        "protocol": "tcp",
                    }
                ]
            }
        )
    )
    process = await start(
        "--name",
        "links",
        "--dc",
        "dc1",
        "--api",
        "127.0.0.1:0",
        "--config",
        str(config),
        "--time-scale",
        "0.1",
    )
    try:
        ready = await next_event(process, "ready")
        assert ready["service"] == "links" and ready["dc"] == "dc1"
        assert set(ready["endpoints"]) == {"http"} and set(ready["links"]) == {"gws1-sip1"}
        host, port = ready["links"]["gws1-sip1"].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        assert await roundtrip(reader, writer, b"via config") == b"via config"
        writer.close()

        async with LinksClient(ready["endpoints"]["http"]) as client:
            await client.cut("gws1-sip1", mode="blackhole", ttl=1)
            cut = await next_event(process, "link.cut")
            assert (cut["link"], cut["mode"], cut["ttl"]) == ("gws1-sip1", "blackhole", 1.0)
            healed = await next_event(process, "link.heal")
            assert (healed["link"], healed["reason"]) == ("gws1-sip1", "ttl")
            assert healed["ts"] - cut["ts"] >= 0.09  # 1 s x 0.1

        process.send_signal(signal.SIGTERM)
        await next_event(process, "stopped")
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_service_exits_2_when_its_api_port_is_taken() -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    try:
        process = await start("--api", f"127.0.0.1:{squatter.getsockname()[1]}")
        failed = await next_event(process, "startup_failed")
        async with asyncio.timeout(10):
            assert await process.wait() == 2
    finally:
        squatter.close()
    assert "address already in use" in failed["error"]


async def test_service_exits_2_on_a_bad_config_or_a_foreign_api_address(tmp_path: Path) -> None:
    config = tmp_path / "links.json"
    config.write_text(json.dumps({"links": [{"name": "x", "listen": "127.0.0.1:0"}]}))
    for args, message in [
        (["--config", str(config)], "missing required field: upstream at proxy 1"),
        (["--api", "0.0.0.0:8474"], "loopback"),
        (["--config", str(tmp_path / "absent.json")], "cannot read"),
    ]:
        process = await start("--api", "127.0.0.1:0", *args)
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
        assert process.returncode == 2
        assert message in stderr.decode()
