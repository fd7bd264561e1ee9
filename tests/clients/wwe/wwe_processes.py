"""Lab services as real processes (``python -m emulator.<pkg>``) for WWE tests that kill them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class Service:
    """One service process; its JSON-lines stdout is drained into ``lines`` (never blocks it)."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read(), name=f"drain-{name}")

    @classmethod
    async def start(cls, name: str, module: str, *args: str, timeout: float = 20.0) -> Service:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        service = cls(name, process)
        try:
            await asyncio.wait_for(asyncio.shield(service.ready), timeout)
        except BaseException:
            await service.stop()
            raise
        return service

    @property
    def endpoints(self) -> dict[str, str]:
        endpoints: dict[str, str] = self.ready.result()["endpoints"]
        return endpoints

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                record = json.loads(raw)
            except ValueError:
                record = {"event": "non-json", "text": raw.decode(errors="replace")}
            self.lines.append(record)
            if record.get("event") == "ready" and not self.ready.done():
                self.ready.set_result(record)
        if not self.ready.done():
            output = "".join(str(line) for line in self.lines[-20:])
            self.ready.set_exception(RuntimeError(f"{self.name} exited before ready: {output}"))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        await self._drain
        if not self.ready.done():
            self.ready.cancel()
        elif not self.ready.cancelled():
            self.ready.exception()


@asynccontextmanager
async def process_dc(time_scale: float) -> AsyncIterator[dict[str, Service]]:
    """sip1, gws1, gws2 and proxy-dc1 as processes, every timer scaled by ``time_scale``."""
    scale = str(time_scale)
    services: dict[str, Service] = {}
    try:
        services["sip1"] = sip = await Service.start(
            "sip1",
            "emulator.sipcluster",
            *("--name", "sip1", "--dc", "DC1", "--time-scale", scale),
            *("--tlib", "127.0.0.1:0", "--tc", "127.0.0.1:0", "--control", "127.0.0.1:0"),
        )
        for name in ("gws1", "gws2"):
            services[name] = await Service.start(
                name,
                "emulator.gws",
                *("--name", name, "--dc", "DC1", "--time-scale", scale),
                *("--http", "127.0.0.1:0", "--sip", f"sip1={sip.endpoints['tlib']}"),
            )
        services["proxy-dc1"] = await Service.start(
            "proxy-dc1",
            "emulator.proxy",
            *("--name", "proxy-dc1", "--dc", "DC1", "--time-scale", scale),
            "--listen",
            "127.0.0.1:0",
            *(f"--upstream={n}={services[n].endpoints['http']}" for n in ("gws1", "gws2")),
        )
        yield services
    finally:
        for service in reversed(list(services.values())):
            await service.stop()
