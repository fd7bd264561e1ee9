"""What one SIP Cluster node carries: calls per second, and concurrent RTP streams it relays.

Run: ``python bench/sip_calls.py [--rates 50,100,200,...] [--calls 50,125,250,...]``. On loopback,
in the same run: one node (``python -m emulator.sipcluster``, its own process, log to a file)
whose ``--pstn-route`` is a SIPp UAS standing as agent1's PSTN phone (``bench/sipp/uas.xml``),
and a SIPp UAC standing as customers (``bench/sipp/uac.xml``) calling DN 7001 on the node; the
node bridges each call (INVITE/180/200/ACK both legs, BYE both legs) and relays its RTP on its
one media port. SIPp is the independent load generator; each stage is a fresh UAC (and UAS).

- calls per second, a rate ramp: each stage offers R calls/s for ``--stage`` seconds (each call
  held ``--hold`` ms, then BYE). A call counts as completed when SIPp saw INVITE→200, ACK, BYE→200;
  failures are SIPp's failed calls plus calls not completed when the stage ends. The figure is
  the highest rate with < 1 % failures. The baseline is the same UAC straight at the UAS at the
  same rate (what the generator and loopback do without the node); the call setup time (INVITE
  → 200, SIPp's response time) is printed for both and as a ratio.
- concurrent RTP streams: each stage sets up N calls (at ``--setup-rate``) whose SDP on both legs
  names a socket of this process (SIPp does the signalling only). Once the node's ``/state`` shows
  a call connected, its customer socket sends RTP (RFC 3550 header, 160-byte PCMU payload, one
  packet every 20 ms) to the node's media port; each agent socket starts sending when the first
  relayed packet reaches it. With every stream flowing, the loss over ``--window`` seconds is
  counted at the receiving sockets from RTP sequence numbers (expected - received), so a stream
  is one direction of one call: N calls are 2N streams. The figure is the largest 2N with
  < 0.1 % loss. The baseline is the same sockets paired directly (no node) in the same stage.

The node's CPU share per stage comes from ``/proc/<pid>/stat``; when a stage loses packets, the
datagrams the kernel dropped because the node's SIP or media socket's receive buffer was full
(``/proc/net/udp``, per socket) are printed, which tells a slow node from a lossy path.
Goal: ≥ 200 CPS and ≥ 500 concurrent streams per box. Nothing is asserted: machines differ (and
the node shares the box with SIPp and this process's RTP).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SIPP = Path(__file__).resolve().parent / "sipp"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wwe_e2e import start_service

LOOPBACK = "127.0.0.1"
DN = "7001"
PACKET_INTERVAL = 0.020
SLOTS = 10
PAYLOAD = b"\xff" * 160  # 20 ms of PCMU silence
RTP_HEADER = struct.Struct("!BBHII")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped for the loopback UDP socket bound to ``port`` (its receive
    buffer was full: the process did not read fast enough), from ``/proc/net/udp``."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local:
            return int(fields[-1])
    return 0


def seconds_of(sipp_time: str) -> float:
    """SIPp's ``hh:mm:ss:micro`` as seconds."""
    hours, minutes, secs, micros = (int(part) for part in sipp_time.split(":"))
    return hours * 3600 + minutes * 60 + secs + micros / 1e6


# --- SIPp ---------------------------------------------------------------------------------


def write_injection(path: Path, lines: list[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{line}\n" for line in lines))
    return path


def sipp(work: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """SIPp on loopback over UDP, its screen to a file, statistics to ``<name>_stat.csv``."""
    argv = ["sipp", *args, "-i", LOOPBACK, "-t", "u1", "-nostdin"]
    argv += ["-trace_err", "-trace_stat", "-stf", str(work / f"{name}_stat.csv"), "-fd", "1"]
    with (work / f"{name}.out").open("wb") as screen:
        return subprocess.Popen(argv, cwd=work, stdout=screen, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def last_stats(path: Path) -> dict[str, str]:
    rows = [line.split(";") for line in path.read_text().splitlines() if line]
    return dict(zip(rows[0], rows[-1], strict=False))


@contextlib.contextmanager
def agent_phone(work: Path, port: int, media_ports: list[int]) -> Iterator[None]:
    """SIPp UAS answering on ``port``; call k's 200 offers ``media_ports[k]``."""
    inf = write_injection(work / "uas.csv", [str(p) for p in media_ports])
    process = sipp(work, "uas", "-sf", str(SIPP / "uas.xml"), "-inf", str(inf), "-p", str(port))
    time.sleep(0.3)  # SIPp binds its port; it has no ready signal
    try:
        yield
    finally:
        stop(process)


def customers(
    work: Path, target: str, *, rate: float, calls: int, hold_ms: int, media_ports: list[int]
) -> subprocess.Popen[bytes]:
    """SIPp UAC placing ``calls`` calls to DN 7001 at ``target``; call k offers media port k."""
    inf = write_injection(work / "uac.csv", [f"{DN};{port}" for port in media_ports])
    args = ["-sf", str(SIPP / "uac.xml"), "-inf", str(inf), "-p", str(free_udp_port())]
    args += ["-r", str(rate), "-m", str(calls), "-d", str(hold_ms), "-timeout", "120s"]
    return sipp(work, "uac", target, *args)


# --- the node -----------------------------------------------------------------------------


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    endpoints: dict[str, str]
    http: aiohttp.ClientSession

    @property
    def media(self) -> tuple[str, int]:
        host, port = self.endpoints["media"].rsplit(":", 1)
        return host, int(port)

    async def sip_state(self) -> dict[str, Any]:
        async with self.http.get(f"http://{self.endpoints['control']}/state") as response:
            state: dict[str, Any] = (await response.json())["sip"]
            return state

    async def counters(self) -> dict[str, int]:
        counters: dict[str, int] = (await self.sip_state())["counters"]
        return counters

    async def idle(self, deadline: float = 30.0) -> None:
        """Wait (polling) until the node has no call left."""
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if not (await self.counters())["calls_active"]:
                return
            await asyncio.sleep(0.2)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)


# --- calls per second ---------------------------------------------------------------------


@dataclass
class CpsStage:
    rate: int
    offered: int
    completed: int
    failed: int
    setup_ms: float  # mean INVITE -> 200 as SIPp measured it
    node_cpu: float | None = None  # share of one core during the stage

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.offered if self.offered else 0.0


def run_cps_stage(work: Path, target: str, uas_port: int, rate: int, args: Any) -> CpsStage:
    calls = max(1, int(rate * args.stage))
    with agent_phone(work, uas_port, [9]):
        uac = customers(work, target, rate=rate, calls=calls, hold_ms=args.hold, media_ports=[9])
        with contextlib.suppress(subprocess.TimeoutExpired):
            uac.wait(args.stage + args.hold / 1000 + 30)
        stop(uac)
    stats = last_stats(work / "uac_stat.csv")
    completed = int(stats["SuccessfulCall(C)"])
    return CpsStage(
        rate=rate,
        offered=calls,
        completed=completed,
        failed=calls - completed,
        setup_ms=seconds_of(stats["ResponseTime1(C)"]) * 1000,
    )


async def measure_cps(node: Node, work: Path, uas_port: int, args: Any) -> None:
    print(f"\ncalls per second: each stage {args.stage:g} s, calls held {args.hold} ms, DN {DN}")
    print(
        f"{'rate':>6} {'offered':>8} {'node ok':>8} {'fail %':>7} {'setup ms':>9} "
        f"{'node CPU':>9} | {'direct ok':>9} {'fail %':>7} {'setup ms':>9} {'setup x':>8}"
    )
    best = 0
    for rate in args.rates:
        await node.idle()
        sip_port = int(node.endpoints["sip"].rsplit(":", 1)[1])
        before, drops = await node.counters(), socket_drops(sip_port)
        running = asyncio.create_task(
            asyncio.to_thread(run_cps_stage, work, node.endpoints["sip"], uas_port, rate, args)
        )
        cpu, started = node.cpu(), time.monotonic()
        await asyncio.sleep(args.stage)  # the node's CPU while calls are being placed
        node_cpu = (node.cpu() - cpu) / (time.monotonic() - started)
        stage = await running
        stage.node_cpu = node_cpu
        after, drops = await node.counters(), socket_drops(sip_port) - drops
        direct_port = free_udp_port()
        direct = await asyncio.to_thread(
            run_cps_stage, work, f"{LOOPBACK}:{direct_port}", direct_port, rate, args
        )
        # SIPp times in whole milliseconds: a direct setup under 1 ms has no ratio
        ratio = f"{stage.setup_ms / direct.setup_ms:.1f}x" if direct.setup_ms else "-"
        print(
            f"{rate:>6} {stage.offered:>8} {stage.completed:>8} {100 * stage.failure_ratio:>7.2f} "
            f"{stage.setup_ms:>9.2f} {100 * stage.node_cpu:>8.0f}% | {direct.completed:>9} "
            f"{100 * direct.failure_ratio:>7.2f} {direct.setup_ms:>9.2f} {ratio:>8}",
            flush=True,
        )
        node_counts = {k: after[k] - before[k] for k in ("calls_total", "calls_answered")}
        node_counts |= {k: after[k] - before[k] for k in ("calls_rejected", "calls_lost")}
        if any(node_counts[k] for k in ("calls_rejected", "calls_lost")) or drops:
            print(f"       node: {node_counts}, its SIP socket's buffer overflowed {drops}x")
        if stage.failure_ratio < 0.01:
            best = max(best, rate)
        elif rate > best:
            break  # past the knee: higher rates only load the box
    print(f"=> {best} calls/s completed by one node with < 1 % failures (goal >= 200)")


# --- RTP streams --------------------------------------------------------------------------


@dataclass
class Stream:
    """One bench RTP socket: sends one packet per tick once started, counts what reaches it."""

    sock: socket.socket
    peer: tuple[str, int]
    ssrc: int
    sending: bool = False
    stopped: bool = False  # the stage is over: late packets no longer start it
    sequence: int = 0
    received: int = 0
    highest: int = -1  # extended sequence number of the highest packet received

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            if len(data) < RTP_HEADER.size:
                continue
            sequence = RTP_HEADER.unpack_from(data)[2]
            self.received += 1
            cycle = self.highest - (self.highest & 0xFFFF) if self.highest >= 0 else 0
            extended = cycle + sequence
            if self.highest >= 0 and extended < self.highest - 0x8000:
                extended += 0x10000  # the 16-bit sequence wrapped
            self.highest = max(self.highest, extended)
            self.sending = not self.stopped  # an agent socket answers once media reaches it

    def send(self) -> None:
        header = RTP_HEADER.pack(0x80, 0, self.sequence & 0xFFFF, self.sequence * 160, self.ssrc)
        with contextlib.suppress(OSError):
            self.sock.sendto(header + PAYLOAD, self.peer)
        self.sequence += 1

    def snapshot(self) -> tuple[int, int]:
        return self.received, self.highest


@dataclass
class StreamSet:
    streams: list[Stream] = field(default_factory=list)
    ticks: int = 0

    def open(self, count: int, peer: tuple[str, int]) -> list[Stream]:
        loop = asyncio.get_running_loop()
        opened = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((LOOPBACK, 0))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            stream = Stream(sock, peer, ssrc=int.from_bytes(os.urandom(4)))
            loop.add_reader(sock.fileno(), stream.readable)
            opened.append(stream)
        self.streams += opened
        return opened

    async def pace(self) -> None:
        """Every 20 ms, one packet from every started stream, spread over ``SLOTS`` slots of the
        20 ms as independent phones would be (not one burst of every stream at once)."""
        loop = asyncio.get_running_loop()
        next_slot = loop.time()
        while True:
            for slot in range(SLOTS):
                for stream in self.streams[slot::SLOTS]:
                    if stream.sending:
                        stream.send()
                next_slot += PACKET_INTERVAL / SLOTS
                await asyncio.sleep(max(0.0, next_slot - loop.time()))
            self.ticks += 1

    def stop(self) -> None:
        for stream in self.streams:
            stream.sending, stream.stopped = False, True

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for stream in self.streams:
            loop.remove_reader(stream.sock.fileno())
            stream.sock.close()


@dataclass
class Loss:
    streams: int = 0  # streams that received packets in the window
    expected: int = 0
    received: int = 0
    send_rate: float = 0.0  # packets per second and stream actually sent

    @property
    def ratio(self) -> float:
        return max(0, self.expected - self.received) / self.expected if self.expected else 1.0


async def window_loss(streams: StreamSet, seconds: float) -> Loss:
    before = [s.snapshot() for s in streams.streams]
    ticks = streams.ticks
    started = time.monotonic()
    await asyncio.sleep(seconds)
    loss = Loss(send_rate=(streams.ticks - ticks) / (time.monotonic() - started))
    for stream, (received, highest) in zip(streams.streams, before, strict=True):
        now_received, now_highest = stream.snapshot()
        if now_received == received or highest < 0:
            continue
        loss.streams += 1
        loss.expected += now_highest - highest
        loss.received += now_received - received
    return loss


async def started_calls(node: Node, customer: dict[int, Stream], deadline: float) -> None:
    """Start each customer socket once the node shows its call connected (From ``c<port>``):
    media from an unknown source while calls are being set up could latch to another call."""
    until = time.monotonic() + deadline
    waiting = dict(customer)
    while waiting and time.monotonic() < until:
        for call in (await node.sip_state())["calls"]:
            if call["state"] == "connected" and call["caller"].startswith("c"):
                stream = waiting.pop(int(call["caller"][1:]), None)
                if stream is not None:
                    stream.sending = True
        await asyncio.sleep(0.25)


async def media_stage(node: Node, work: Path, uas_port: int, calls: int, args: Any) -> Loss:
    streams = StreamSet()
    customer = streams.open(calls, node.media)
    agent = streams.open(calls, node.media)
    setup = calls / args.setup_rate
    hold_ms = int(1000 * (setup + args.window + 10))
    pacer = asyncio.create_task(streams.pace())
    try:
        with agent_phone(work, uas_port, [s.port for s in agent]):
            uac = customers(
                work,
                node.endpoints["sip"],
                rate=args.setup_rate,
                calls=calls,
                hold_ms=hold_ms,
                media_ports=[s.port for s in customer],
            )
            try:
                await started_calls(node, {s.port: s for s in customer}, setup + 20)
                until = time.monotonic() + 10
                while not all(s.highest >= 0 for s in streams.streams):
                    if time.monotonic() > until:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # every stream past its first packets
                cpu, own, started = node.cpu(), cpu_seconds(os.getpid()), time.monotonic()
                loss = await window_loss(streams, args.window)
                elapsed = time.monotonic() - started
                node_cpu = (node.cpu() - cpu) / elapsed
                own_cpu = (cpu_seconds(os.getpid()) - own) / elapsed
                shares = f"node {100 * node_cpu:.0f}%, RTP sockets {100 * own_cpu:.0f}%"
                print(f" (CPU: {shares})", end="")
            finally:
                streams.stop()
                await asyncio.to_thread(uac.wait, hold_ms / 1000 + 30)
                stop(uac)
    finally:
        pacer.cancel()
        await asyncio.gather(pacer, return_exceptions=True)
        streams.close()
    return loss


async def direct_stage(calls: int, args: Any) -> Loss:
    """The same sockets in pairs with no node between them."""
    streams = StreamSet()
    customer = streams.open(calls, (LOOPBACK, 9))
    agent = streams.open(calls, (LOOPBACK, 9))
    for a, b in zip(customer, agent, strict=True):
        a.peer, b.peer = (LOOPBACK, b.port), (LOOPBACK, a.port)
        a.sending = True
    pacer = asyncio.create_task(streams.pace())
    try:
        await asyncio.sleep(1.0)
        return await window_loss(streams, args.window)
    finally:
        pacer.cancel()
        await asyncio.gather(pacer, return_exceptions=True)
        streams.close()


async def measure_streams(node: Node, work: Path, uas_port: int, args: Any) -> None:
    print(
        f"\nconcurrent RTP streams (one direction of one call, 50 packets/s): calls set up at "
        f"{args.setup_rate:g}/s, loss over {args.window:g} s"
    )
    best = 0
    for calls in args.calls:
        await node.idle()
        print(f"{calls:>5} calls", end="", flush=True)
        before, drops = (await node.sip_state())["media"], socket_drops(node.media[1])
        loss = await media_stage(node, work, uas_port, calls, args)
        after, drops = (await node.sip_state())["media"], socket_drops(node.media[1]) - drops
        direct = await direct_stage(calls, args)
        print(
            f" | via node: {loss.streams:>4}/{2 * calls} streams, loss {100 * loss.ratio:.3f} % "
            f"({loss.expected - loss.received}/{loss.expected}), {loss.send_rate:.0f} pkt/s each"
            f" | direct: loss {100 * direct.ratio:.3f} %, {direct.send_rate:.0f} pkt/s each",
            flush=True,
        )
        dropped = {k: after[k] - before[k] for k in ("bad_packets", "unknown_source", "no_target")}
        if any(dropped.values()) or drops:
            print(f"       node dropped: {dropped}; its media socket's buffer overflowed {drops}x")
        if loss.streams == 2 * calls and loss.ratio < 0.001:
            best = max(best, 2 * calls)
        elif 2 * calls > best:
            break
    print(f"=> {best} concurrent RTP streams relayed by one node with < 0.1 % loss (goal >= 500)")


# --- main ---------------------------------------------------------------------------------


async def main(args: Any) -> None:
    with contextlib.ExitStack() as cleanup:
        if args.logs is None:
            work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-sip-")))
        else:
            work = args.logs
            work.mkdir(parents=True, exist_ok=True)
        uas_port = free_udp_port()
        argv = [sys.executable, "-m", "emulator.sipcluster", "--name", "sip1", "--dc", "DC1"]
        for option in ("--tlib", "--tc", "--control", "--sip", "--media"):
            argv += [option, f"{LOOPBACK}:0"]
        # the bench measures the relay, not the media watchdog: calls whose RTP the bench has
        # already stopped must still end by their BYE
        argv += ["--pstn-route", f"{LOOPBACK}:{uas_port}", "--rtp-timeout", "0"]
        process, endpoints = start_service("sip1", argv, work)
        print(f"node sip1: SIP {endpoints['sip']}, media {endpoints['media']}; logs in {work}")
        try:
            async with aiohttp.ClientSession() as http:
                node = Node(process, endpoints, http)
                if args.rates:
                    await measure_cps(node, work, uas_port, args)
                if args.calls:
                    await measure_streams(node, work, uas_port, args)
        finally:
            process.terminate()
            process.wait(10)


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=numbers, default=numbers("50,100,150,200,250,300,400"))
    parser.add_argument("--stage", type=float, default=5.0, help="seconds per CPS stage")
    parser.add_argument("--hold", type=int, default=1000, help="ms each CPS call is held")
    parser.add_argument("--calls", type=numbers, default=numbers("50,125,200,250,300,400"))
    parser.add_argument("--setup-rate", type=float, default=50.0, help="calls/s, media stages")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of measured RTP")
    parser.add_argument("--logs", type=Path, help="keep the node's log and SIPp's files here")
    asyncio.run(main(parser.parse_args()))
