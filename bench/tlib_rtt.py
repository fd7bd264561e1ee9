"""T-Lib request→event round trip, on one node and through the TC-layer, against raw TCP echo.

Run: ``python bench/tlib_rtt.py [--requests N] [--rounds R]``. Everything runs in separate
processes on loopback in the same run: a raw asyncio TCP echo server (the baseline), and two SIP
Cluster nodes.
The client sends ``RequestQueryAddress`` one at a time and waits for ``EventAddressInfo``, on the
same plain stream client as the echo, each request frame encoded before its clock starts:
- one node: the desktop's node owns the DN;
- via TC: the desktop is on sip2, the DN is owned by sip1, so the request and the event cross
  the TC-layer both ways.
The three are measured interleaved, in R rounds of N/R requests each, so that they share whatever
load the machine carries. It prints p50/p99 in microseconds and each as a ratio to the echo's p50
(goal: one node <= 2x, via TC <= 3x). For reference it also measures the echo relayed through
a plain asyncio forwarder process: the via-TC path's four socket crossings with no logic at all.
No absolute time is asserted anywhere: machines differ, ratios travel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.tlib.connection import TLibClient
from emulator.tlib.framing import encode_frame
from emulator.tlib.messages import (
    Request,
    RequestQueryAddress,
    RequestRegisterAddress,
    encode,
)

ECHO_SERVER = """
import asyncio, sys
async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

# The floor of the via-TC path: the same four socket crossings (client -> forwarder -> echo ->
# forwarder -> client) through a plain asyncio forwarder, with no T-Lib or TC-layer logic at all.
FORWARDER = Path(__file__).with_name("forwarder.py")


def start_node(
    name: str, dc: str, peer: str | None, logs: Path
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start a node writing its logs to a file (a pipe nobody reads would block it)."""
    argv = [sys.executable, "-m", "emulator.sipcluster", "--name", name, "--dc", dc]
    if peer:
        argv += ["--peer", peer]
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "ready":
                return process, record["endpoints"]
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start: {log_path.read_text()[-2000:]}")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class EchoPath:
    """The baseline: a plain asyncio stream client against the raw TCP echo server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> EchoPath:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def measure(self, payload: bytes, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            self.writer.write(payload)
            await self.reader.readexactly(len(payload))
            samples.append(time.perf_counter() - start)
        return samples

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class TLibPath(EchoPath):
    """A desktop registered on ``dn`` through one node, querying it.

    It is driven the way the echo is: on the same plain asyncio stream client, each request's
    frame encoded before the clock starts (as the echo's payload is), so that the ratio measures
    the node(s), not a client library. The answer is read as a whole frame and checked: it must
    be the ``EventAddressInfo`` carrying the request's ``ReferenceID``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dn: str) -> None:
        super().__init__(reader, writer)
        self.dn = dn
        self._next_reference = 1

    @classmethod
    async def register(cls, endpoint: str, dn: str) -> TLibPath:
        path = cls(*await asyncio.open_connection(*_split(endpoint)), dn)
        await path._exchange(RequestRegisterAddress, "EventRegistered")
        return path

    async def _exchange(self, request: type[Request], answer: str) -> None:
        reference_id = self._next_reference
        self._next_reference += 1
        self.writer.write(encode_frame(encode(request(reference_id=reference_id, this_dn=self.dn))))
        await self._read(answer, reference_id)

    async def _read(self, answer: str, reference_id: int) -> None:
        header = await self.reader.readexactly(4)
        event = json.loads(await self.reader.readexactly(int.from_bytes(header, "big")))
        if event.get("message") != answer or event.get("ReferenceID") != reference_id:
            raise RuntimeError(f"expected {answer} for ReferenceID {reference_id}, got {event}")

    async def measure(self, payload: bytes, count: int) -> list[float]:
        """``payload`` is unused: each request is its own frame, with its own ReferenceID."""
        first = self._next_reference
        self._next_reference += count
        frames = [
            encode_frame(encode(RequestQueryAddress(reference_id=first + i, this_dn=self.dn)))
            for i in range(count)
        ]
        samples = []
        for reference_id, frame in enumerate(frames, first):
            start = time.perf_counter()
            self.writer.write(frame)
            await self._read("EventAddressInfo", reference_id)
            samples.append(time.perf_counter() - start)
        return samples


async def run(count: int, rounds: int) -> None:
    payload = encode_frame(encode(RequestQueryAddress(reference_id=1, this_dn="7001")))
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    assert echo.stdout is not None
    echo_port = int(echo.stdout.readline())
    relay = subprocess.Popen(
        [sys.executable, str(FORWARDER), f"127.0.0.1:{echo_port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert relay.stdout is not None
    relay_port = int(json.loads(relay.stdout.readline())["endpoints"]["http"].rsplit(":", 1)[1])
    logs = Path(tempfile.mkdtemp(prefix="drlab-bench-"))
    # sip1 sorts first, so it dials sip2; sip2 learns of sip1 from sip1's TcHello.
    sip2, sip2_endpoints = start_node("sip2", "DC1", None, logs)
    tc_port = int(sip2_endpoints["tc"].rsplit(":", 1)[1])
    sip1, sip1_endpoints = start_node("sip1", "DC1", f"sip2=DC1@127.0.0.1:{tc_port}", logs)
    try:
        await asyncio.sleep(0.5)  # let the TC link come up (bench only; not a test)
        # The owner of 7002 is sip1: register it there first, then query it from sip2.
        owner_desk = await TLibClient.connect(*_split(sip1_endpoints["tlib"]))
        await owner_desk.request(RequestRegisterAddress(reference_id=1, this_dn="7002"))
        await asyncio.sleep(0.2)
        baseline = await EchoPath.open(echo_port)
        floor = await EchoPath.open(relay_port)
        one_node = await TLibPath.register(sip1_endpoints["tlib"], "7001")
        via_tc = await TLibPath.register(sip2_endpoints["tlib"], "7002")
        warm = max(50, count // 10)
        await baseline.measure(payload, warm)
        await floor.measure(payload, warm)
        await one_node.measure(payload, warm)
        await via_tc.measure(payload, warm)
        # Interleaved in short rounds, so that the baseline and both paths see the same load
        # on a shared machine (a burst of load elsewhere lands on all three, not on one).
        results: dict[str, list[float]] = {
            "raw TCP echo": [],
            "one node": [],
            "via TC-layer": [],
            "echo relayed": [],
        }
        per_round = max(1, count // rounds)
        for _ in range(rounds):
            results["raw TCP echo"] += await baseline.measure(payload, per_round)
            results["one node"] += await one_node.measure(payload, per_round)
            results["via TC-layer"] += await via_tc.measure(payload, per_round)
            results["echo relayed"] += await floor.measure(payload, per_round)
        for path in (baseline, floor, one_node, via_tc):
            await path.close()
        await owner_desk.close()
    finally:
        for process in (echo, relay, sip1, sip2):
            process.terminate()
            process.wait()
    base = statistics.median(results["raw TCP echo"])
    print(f"T-Lib round trip, {per_round * rounds} sequential requests each (microseconds)")
    print(f"{'path':<14} {'p50':>8} {'p99':>8} {'p50/echo':>9} {'p99/echo':>9}")
    for name, samples in results.items():
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        print(f"{name:<14} {p50 * 1e6:8.0f} {p99 * 1e6:8.0f} {p50 / base:9.2f} {p99 / base:9.2f}")
    print("goals: one node p50 <= 2x echo p50, via TC-layer p50 <= 3x echo p50")
    print("echo relayed: the echo through a plain asyncio forwarder, the four socket crossings of")
    print("the via-TC path without any logic (its floor on this machine; not a goal)")


def _split(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.requests, arguments.rounds))
