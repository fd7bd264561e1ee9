"""The standalone registrar over real sockets, against our UA and against SIPp."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from emulator.common.timescale import TimeScale
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.registrar import RegistrarService
from emulator.sip.registrar_core import RegisterOutcome
from emulator.sip.transport import TcpTransport, UdpTransport
from emulator.sip.ua import UserAgent
from tests.support import eventually, free_udp_port

SCENARIOS = Path(__file__).parent / "sipp"


async def test_register_over_udp_and_tcp_creates_a_binding_that_expires_scaled() -> None:
    changes: list[RegisterOutcome] = []
    async with RegistrarService(
        scale=TimeScale(0.01), tcp=True, on_change=changes.append
    ) as service:
        for transport in (UdpTransport(), TcpTransport()):
            async with transport, UserAgent(transport) as ua:
                request = make_request(
                    "REGISTER",
                    f"sip:{service.bound}",
                    via=ua.via(),
                    from_=f"<sip:7002@127.0.0.1>;tag={new_tag()}",
                    to="<sip:7002@127.0.0.1>",
                    call_id=new_call_id("127.0.0.1"),
                    cseq=1,
                    contact=ua.contact("7002"),
                    headers=[("Expires", "30")],
                )
                response = await ua.request(request, service.bound)
                assert response.status == 200
                assert response.header("Contact") is not None
        assert len(service.registrar.lookup("7002", asyncio.get_running_loop().time())) == 2
        assert changes[0].is_new and not changes[1].is_new
        # 30 s scaled by 0.01 is 0.3 s: both bindings are gone soon after
        await eventually(lambda: service.registrar.all_bindings() == ())


async def test_a_taken_tcp_port_fails_the_start_and_leaves_the_udp_port_free() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError):
            async with RegistrarService(port=port, tcp=True):
                pass
    await eventually(lambda: _udp_port_free(port))  # the failed start released its UDP socket


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (Debian sip-tester) not installed")
async def test_sipp_registers_over_udp_and_gets_200(tmp_path: Path) -> None:
    async with RegistrarService() as service:
        process = await asyncio.create_subprocess_exec(
            "sipp",
            str(service.bound),
            "-sf",
            str(SCENARIOS / "register.xml"),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-mp",
            str(free_udp_port()),
            "-timeout",
            "20s",
            "-timeout_error",
            "-nostdin",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
        (binding,) = service.registrar.lookup("7002", asyncio.get_running_loop().time())
        assert binding.expires == 3600
        assert service.registers_answered == 1
