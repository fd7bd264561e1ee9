"""WWE request → matching CometD event through proxy-dc1 → GWS → sip1 and back, against a raw
WebSocket echo measured in the same run.

Run: ``python bench/wwe_e2e.py [--requests N]``. Every service is its own process on loopback,
started as the lab starts it (``python -m emulator.<pkg>``), its JSON log written to a file (a
pipe nobody reads would block it once full): sip1, gws1 and gws2 (T-Lib clients of sip1),
proxy-dc1 in front of both, and a raw aiohttp WebSocket echo server (the baseline).

An agent logs on through the proxy (token, initialize-workspace, CometD handshake + subscribe,
activate-channels) and then alternates ``POST voice/ready`` and ``POST voice/not-ready``; each
sample is the time from sending the request to receiving the ``DnStateChanged`` that reports the
new state (REST → proxy → GWS → T-Lib → sip1 → T-Lib → GWS → CometD → proxy → desktop), once
with CometD over WebSocket and once over long-polling (and, to show what the proxy costs, once
over WebSocket straight to gws1). The timed requests use a bare keep-alive HTTP/1.1 client,
so the figures are the lab's, not a client library's; over WebSocket the events are read by a
bare CometD client on the same aiohttp WebSocket client as the baseline, doing no less per frame
than the baseline's reader (``CometdSocket``); long-polling goes through the project's
BayeuxClient. The baseline is one text frame of the
size of a ``DnStateChanged`` message echoed by the echo process. It prints p50/p99 in
microseconds and each as a ratio to the echo's p50/p99 (goal over WebSocket: p50 ≤ 2.5x,
p99 ≤ 3.5x). No absolute time is asserted: machines differ, ratios travel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.bayeux.client import BayeuxClient
from emulator.bayeux.messages import Message

ECHO_SERVER = """
import asyncio, json
from aiohttp import web

async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for frame in ws:
        await ws.send_str(frame.data)
    return ws

async def main():
    app = web.Application()
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    print(json.dumps({"event": "ready", "endpoints": {"http": f"127.0.0.1:{port}"}}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

# The floor of the path through the proxy: a plain asyncio byte forwarder, started twice in
# series (standing for proxy-dc1 and gws1) in front of the echo (standing for sip1), so the
# echo crosses the same six sockets as request -> event (desktop -> proxy -> GWS -> sip1 -> GWS
# -> proxy -> desktop) with no HTTP, CometD or T-Lib logic at all. Not a goal: the measure of
# what the process chain alone costs on this machine.
FORWARDER = Path(__file__).with_name("forwarder.py")

VOICE = "/workspace/v3/voice"
# A DnStateChanged as GWS sends it over CometD: the baseline frame has the same size.
SAMPLE_FRAME = json.dumps(
    [
        {
            "channel": VOICE,
            "data": {
                "messageType": "DnStateChanged",
                "notificationType": "StateChange",
                "dn": {
                    "number": "7001",
                    "agentId": "agent1",
                    "agentState": "NotReady",
                    "agentWorkMode": "AfterCallWork",
                    "capabilities": ["ready", "not-ready", "logout", "make-call"],
                    "dnStatus": "InService",
                },
            },
        }
    ]
)


def start_service(name: str, argv: list[str], logs: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """Start ``argv`` logging to a file; wait for its JSON ``ready`` line; its endpoints."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                return process, json.loads(line)["endpoints"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not start: {log_path.read_text()[-2000:]}")


def module(name: str, *args: str, profile: Path | None = None) -> list[str]:
    """``python -m name args``, under cProfile writing ``<profile>/<name>.prof`` if asked."""
    runner = [sys.executable]
    if profile is not None:
        service = args[args.index("--name") + 1]
        runner += ["-m", "cProfile", "-o", str(profile / f"{service}.prof")]
    return [*runner, "-m", name, *args]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def echo_rtts(http: aiohttp.ClientSession, endpoint: str, count: int) -> list[float]:
    samples = []
    async with http.ws_connect(f"ws://{endpoint}/echo") as ws:
        for _ in range(count):
            start = time.perf_counter()
            await ws.send_str(SAMPLE_FRAME)
            await ws.receive_str()
            samples.append(time.perf_counter() - start)
    return samples


class BareRest:
    """Keep-alive HTTP/1.1 POSTs written by hand, for the timed requests: the figures are about
    the lab's path, not about a client library (the echo baseline uses a bare client too).

    ``send`` writes a request at once (no task); ``answer`` reads its response, which by then
    waits in the stream's buffer (the timed event comes after it), so it costs no wake-up."""

    def __init__(self, endpoint: str, cookies: str) -> None:
        self.endpoint = endpoint
        self.cookies = cookies
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._sent: list[str] = []

    async def open(self) -> None:
        host, port = self.endpoint.rsplit(":", 1)
        self._streams = await asyncio.open_connection(host, int(port))

    def send(self, path: str, body: dict[str, Any] | None = None) -> None:
        assert self._streams is not None, "open() first"
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.endpoint}\r\nCookie: {self.cookies}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self._streams[1].write(head.encode() + payload)
        self._sent.append(path)

    async def answer(self) -> None:
        assert self._streams is not None, "open() first"
        reader = self._streams[0]
        path = self._sent.pop(0)
        response = await reader.readuntil(b"\r\n\r\n")
        status = response[9:12]
        length = 0
        for line in response.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"POST {path}: HTTP {status.decode()} {answer[:200]!r}")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


class CometdSocket:
    """CometD's ``websocket`` transport written out for the timed path, on the plain aiohttp
    WebSocket client the echo baseline uses: the coroutine waiting for an event reads the frames
    itself (``receive_str`` + ``json.loads``, as the baseline reads its echo, plus picking the
    ``DnStateChanged`` out), so the subject's client is no cheaper than the baseline's. The WWE
    client's BayeuxClient would add a reader task, typed messages and events per frame; the
    long-polling path still goes through it."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = "ws" + url.removeprefix("http")
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.client_id: str | None = None
        self._ids = itertools.count(1)

    async def _send(self, **fields: Any) -> str:
        assert self.ws is not None
        message_id = str(next(self._ids))
        if self.client_id is not None:
            fields["clientId"] = self.client_id
        await self.ws.send_str(json.dumps([{**fields, "id": message_id}]))
        return message_id

    async def _connect(self, **fields: Any) -> None:
        await self._send(channel="/meta/connect", connectionType="websocket", **fields)

    async def _messages(self) -> list[dict[str, Any]]:
        """The next frame's messages; a connect reply is answered with the next connect."""
        assert self.ws is not None
        messages: list[dict[str, Any]] = json.loads(await self.ws.receive_str())
        for message in messages:
            if message.get("channel") == "/meta/connect":
                if not message.get("successful"):
                    raise RuntimeError(f"CometD connect failed: {message}")
                await self._connect()
        return messages

    async def _reply(self, message_id: str) -> dict[str, Any]:
        while True:
            for message in await self._messages():
                if message.get("id") == message_id:
                    if not message.get("successful"):
                        raise RuntimeError(f"CometD {message.get('channel')} failed: {message}")
                    return message

    async def handshake(self) -> None:
        self.ws = await self.http.ws_connect(self.url)
        reply = await self._reply(
            await self._send(
                channel="/meta/handshake", version="1.0", supportedConnectionTypes=["websocket"]
            )
        )
        self.client_id = reply["clientId"]
        await self._connect(advice={"timeout": 0})

    async def subscribe(self, channel: str) -> None:
        await self._reply(await self._send(channel="/meta/subscribe", subscription=channel))

    async def wait_for_state(self, state: str) -> None:
        while True:
            found = False
            for message in await self._messages():
                data = message.get("data")
                if (
                    isinstance(data, dict)
                    and data.get("messageType") == "DnStateChanged"
                    and data["dn"]["agentState"] == state
                ):
                    found = True
            if found:
                return

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._send(channel="/meta/disconnect")
            await self.ws.close()


class CometdLibrary:
    """CometD through the project's BayeuxClient (the one the WWE client uses)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, transport: str) -> None:
        self.client = BayeuxClient(
            url, session=http, connection_types=(transport,), max_network_delay=5.0
        )
        self.client.events.on("message", self._on_message)
        self._wanted: tuple[str, asyncio.Future[None]] | None = None

    def _on_message(self, message: Message) -> None:
        data = message.data if isinstance(message.data, dict) else {}
        if self._wanted is None or data.get("messageType") != "DnStateChanged":
            return
        state, future = self._wanted
        if data["dn"]["agentState"] == state and not future.done():
            future.set_result(None)

    async def handshake(self) -> None:
        await self.client.handshake()

    async def subscribe(self, channel: str) -> None:
        await self.client.subscribe(channel)

    async def wait_for_state(self, state: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self._wanted = (state, future)
        await future

    async def close(self) -> None:
        await self.client.disconnect()
        await self.client.close()


class Agent:
    """A desktop on the proxy: REST over aiohttp (log-on) and a bare client (timed requests);
    CometD over :class:`CometdSocket` (WebSocket) or the project's BayeuxClient (long-polling)."""

    def __init__(self, base: str, transport: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        url = f"{base}/workspace/v3/notifications"
        self.cometd: CometdSocket | CometdLibrary = (
            CometdSocket(self.http, url)
            if transport == "websocket"
            else CometdLibrary(self.http, url, transport)
        )
        self.rest: BareRest | None = None

    async def post(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> None:
        async with self.http.post(f"{self.base}{path}", json=body, **kw) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"POST {path}: HTTP {response.status} {text}")

    async def log_on(self, user: str, dn: str) -> None:
        async with self.http.post(
            f"{self.base}/auth/v3/oauth/token",
            data={"grant_type": "password", "username": user, "password": user},
        ) as response:
            token = (await response.json())["access_token"]
        await self.post(
            "/workspace/v3/initialize-workspace", headers={"Authorization": f"Bearer {token}"}
        )
        await self.cometd.handshake()
        await self.cometd.subscribe(VOICE)
        await self.change("LoggedIn", "/workspace/v3/activate-channels", {"data": {"dn": dn}})
        cookies = "; ".join(f"{c.key}={c.value}" for c in self.http.cookie_jar)
        self.rest = BareRest(self.base.removeprefix("http://"), cookies)
        await self.rest.open()

    async def change(self, state: str, path: str, body: dict[str, Any] | None = None) -> float:
        """Send the request; seconds until the DnStateChanged reporting ``state`` arrives."""
        if self.rest is None:  # logging on: the answer may come after the event
            request = asyncio.create_task(self.post(path, body))
            async with asyncio.timeout(10):
                await self.cometd.wait_for_state(state)
            await request
            return 0.0
        start = time.perf_counter()
        self.rest.send(path, body)
        async with asyncio.timeout(10):
            await self.cometd.wait_for_state(state)
        elapsed = time.perf_counter() - start
        await self.rest.answer()
        return elapsed

    async def alternate(self, count: int) -> list[float]:
        samples = []
        for index in range(count):
            if index % 2 == 0:
                samples.append(await self.change("Ready", "/workspace/v3/voice/ready"))
            else:
                body = {"data": {"agentWorkMode": "AfterCallWork"}}
                samples.append(await self.change("NotReady", "/workspace/v3/voice/not-ready", body))
        return samples

    async def close(self) -> None:
        await self.cometd.close()
        if self.rest is not None:
            self.rest.close()
        with contextlib.suppress(RuntimeError, aiohttp.ClientError):
            await self.post("/workspace/v3/logout")
        await self.http.close()


def report(name: str, samples: list[float], echo: list[float]) -> None:
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    e50, e99 = percentile(echo, 0.5), percentile(echo, 0.99)
    print(
        f"{name:<30} p50 {p50 * 1e6:7.0f} µs ({p50 / e50:5.2f}x)   "
        f"p99 {p99 * 1e6:7.0f} µs ({p99 / e99:5.2f}x)"
    )


class CpuMeter:
    """CPU seconds used by each service process (Linux ``/proc``) and by this client, per phase.

    The path is CPU-bound on a small machine, so where the CPU goes explains the ratios.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.used: dict[str, dict[str, float]] = {}
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _now(self) -> dict[str, float]:
        times = {"client (bench)": time.process_time()}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            times[name] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        return times

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = self._now()
        yield
        after = self._now()
        totals = self.used.setdefault(name, {})
        for key, value in after.items():
            totals[key] = totals.get(key, 0.0) + value - before.get(key, value)

    def report(self, name: str, count: int) -> None:
        used = self.used.get(name, {})
        parts = [f"{key} {value / count * 1e6:.0f}" for key, value in used.items() if value > 0]
        print(f"  CPU µs per request: {', '.join(parts)}")


async def measure(endpoints: dict[str, str], count: int, cpu: CpuMeter) -> None:
    warm = max(50, count // 10)
    rounds = 10
    count = count // rounds * rounds
    results: dict[str, list[float]] = {}
    proxy, gws1 = f"http://{endpoints['proxy']}", f"http://{endpoints['gws1']}"
    # path -> (base URL, CometD transport, user, DN); the last one shows what the proxy costs.
    paths = {
        "websocket": (proxy, "websocket", "agent1", "7001"),
        "long-polling": (proxy, "long-polling", "agent2", "7002"),
        "websocket, no proxy (gws1)": (gws1, "websocket", "agent1", "7001"),
    }
    async with aiohttp.ClientSession() as http:
        for name, (base, transport, user, dn) in paths.items():
            agent = Agent(base, transport)
            try:
                await agent.log_on(user, dn)
                await agent.alternate(warm)
                await echo_rtts(http, endpoints["echo"], warm)
                # Interleaved, so the baseline and the path see the same machine load.
                echo: list[float] = []
                path: list[float] = []
                floor: list[float] = []
                for _ in range(rounds):
                    with cpu.phase(f"echo ({name} run)"):
                        echo += await echo_rtts(http, endpoints["echo"], count // rounds)
                    with cpu.phase(name):
                        path += await agent.alternate(count // rounds)
                    floor += await echo_rtts(http, endpoints["relayed"], count // rounds)
                results[name] = path
                results[f"echo ({name} run)"] = echo
                results[f"floor ({name} run)"] = floor
            finally:
                await agent.close()
    print(f"{count} requests per path (alternating ready / not-ready), after {warm} warm-up")
    for name in paths:
        echo = results[f"echo ({name} run)"]
        report("raw WebSocket echo", echo, echo)
        cpu.report(f"echo ({name} run)", count)
        report(name, results[name], echo)
        cpu.report(name, count)
        report("  echo relayed twice (floor)", results[f"floor ({name} run)"], echo)
    print("goal over WebSocket through the proxy: p50 <= 2.5x, p99 <= 3.5x")
    print("echo relayed twice: the echo through two plain asyncio forwarders in series, the six")
    print("socket crossings of request -> event without any logic (the floor; not a goal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--profile",
        type=Path,
        help="Run every service under cProfile, writing DIR/<service>.prof (slower; for hunting)",
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="drlab-bench-wwe-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        echo, echo_endpoints = start_service("echo", [sys.executable, "-c", ECHO_SERVER], logs)
        processes.append(echo)
        relayed = echo_endpoints["http"]
        for hop in ("relay-b", "relay-a"):  # relay-a -> relay-b -> echo
            relay, relay_endpoints = start_service(
                hop, [sys.executable, str(FORWARDER), relayed], logs
            )
            processes.append(relay)
            relayed = relay_endpoints["http"]
        common = ("--dc", "DC1", "--time-scale", "1")
        sip, sip_endpoints = start_service(
            "sip1",
            module(
                "emulator.sipcluster",
                *("--name", "sip1", *common, "--tlib", "127.0.0.1:0", "--tc", "127.0.0.1:0"),
                profile=args.profile,
            ),
            logs,
        )
        processes.append(sip)
        upstreams = []
        gws_http: dict[str, str] = {}
        for name in ("gws1", "gws2"):
            gws, gws_endpoints = start_service(
                name,
                module(
                    "emulator.gws",
                    *("--name", name, *common, "--http", "127.0.0.1:0"),
                    *("--sip", f"sip1={sip_endpoints['tlib']}"),
                    profile=args.profile,
                ),
                logs,
            )
            processes.append(gws)
            gws_http[name] = gws_endpoints["http"]
            upstreams.append(f"--upstream={name}={gws_endpoints['http']}")
        proxy, proxy_endpoints = start_service(
            "proxy-dc1",
            module(
                "emulator.proxy",
                *("--name", "proxy-dc1", *common, "--listen", "127.0.0.1:0", *upstreams),
                profile=args.profile,
            ),
            logs,
        )
        processes.append(proxy)
        endpoints = {
            "echo": echo_endpoints["http"],
            "proxy": proxy_endpoints["http"],
            "gws1": gws_http["gws1"],
            "relayed": relayed,
        }
        names = ["echo", "relay-b", "relay-a", "sip1", "gws1", "gws2", "proxy-dc1"]
        cpu = CpuMeter({name: p.pid for name, p in zip(names, processes, strict=True)})
        asyncio.run(measure(endpoints, args.requests, cpu))
        print(f"service logs: {logs}")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
