"""Every service raises its open-files limit (RLIMIT_NOFILE) to the hard limit at start: a lab
of thousands of agents holds thousands of sockets in the proxy, GWS and the relay."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.support import ServiceProcess

LOW = 256

SERVICES = {
    "emulator.sipcluster": ("--name", "sip1", "--dc", "DC1", "--tlib", "127.0.0.1:0",
                            "--tc", "127.0.0.1:0", "--control", "127.0.0.1:0"),
    "emulator.gws": ("--name", "gws1", "--dc", "DC1", "--http", "127.0.0.1:0",
                     "--sip", "sip1=127.0.0.1:9"),
    "emulator.proxy": ("--name", "proxy-dc1", "--dc", "DC1", "--listen", "127.0.0.1:0",
                       "--upstream", "gws1=127.0.0.1:9"),
    "emulator.links": ("--api", "127.0.0.1:0"),
    "clients.softphone": ("--name", "softphone2", "--dn", "7002", "--registrar",
                          "sip1=127.0.0.1:9", "--control", "127.0.0.1:0"),
    "clients.pstn": ("--name", "pstn", "--node", "sip1=127.0.0.1:9"),
}  # fmt: skip


def _start_low() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))


def open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


@pytest.mark.parametrize("module", sorted(SERVICES))
async def test_a_service_started_with_a_low_soft_limit_raises_it_to_the_hard_one(
    module: str,
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= LOW:
        pytest.skip(f"the hard limit here ({hard}) leaves nothing to raise")
    service = await ServiceProcess.start(module, *SERVICES[module], preexec_fn=_start_low)
    try:
        assert open_files_limits(service.process.pid) == (hard, hard)
    finally:
        await service.stop()
