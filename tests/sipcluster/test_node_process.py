"""`python -m emulator.sipcluster` as real processes, driven by an independent T-Lib client.

The client below is written only from DESIGN §2.1 (a 4-byte big-endian length, then a UTF-8
JSON object with `message`, `ReferenceID` echoed by the answering event, Genesys attribute
names) with the standard library's socket, struct and json: it shares no code with emulator/.
A paused peer (SIGSTOP) must be detected by TC heartbeats, and SIGTERM must stop a node cleanly.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import eventually_sync

REPO = Path(__file__).resolve().parents[2]
TC_INTERVAL, TC_TIMEOUT = 0.2, 0.4
STARTUP = 20.0  # seconds for a node process to print "ready" on a loaded machine
END_OF_OUTPUT: dict[str, Any] = {"event": "<end of output>"}


# -- an independent T-Lib client ----------------------------------------------------------------


class PlainTLib:
    """A desktop speaking T-Lib over a plain blocking socket."""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.references = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # everything received, in order

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode("utf-8")
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the node closed the connection")
            data += chunk
        return data

    def receive(self) -> dict[str, Any]:
        while True:
            (length,) = struct.unpack(">I", self._read_exactly(4))
            message = json.loads(self._read_exactly(length).decode("utf-8"))
            if message.get("message") != "Heartbeat":  # ADDP keep-alive
                self.events.append(message)
                return dict(message)

    def request(self, message: str, **attributes: Any) -> dict[str, Any]:
        reference = next(self.references)
        self.send({"message": message, "ReferenceID": reference, **attributes})
        while True:
            event = self.receive()
            if event.get("ReferenceID") == reference:
                return event

    def close(self) -> None:
        self.sock.close()


# -- node processes ----------------------------------------------------------------------------


@dataclass
class NodeProcess:
    name: str
    proc: subprocess.Popen[str]
    lines: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    endpoints: dict[str, str] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        url = f"http://{self.endpoints['control']}/state"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def peer_state(self, peer: str) -> str:
        return str(self.state()["peers"][peer]["state"])


def _read_lines(node: NodeProcess) -> None:
    assert node.proc.stdout is not None
    for line in node.proc.stdout:
        node.lines.put(json.loads(line))  # every stdout line is a JSON log record
    node.lines.put(END_OF_OUTPUT)


def start_node(name: str, dc: str, *options: str) -> NodeProcess:
    command = [sys.executable, "-m", "emulator.sipcluster", "--name", name, "--dc", dc]
    command += ["--tlib", "127.0.0.1:0", "--tc", "127.0.0.1:0", "--control", "127.0.0.1:0"]
    command += ["--tc-interval", str(TC_INTERVAL), "--tc-timeout", str(TC_TIMEOUT), *options]
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    node = NodeProcess(name, proc)
    threading.Thread(target=_read_lines, args=(node,), daemon=True).start()
    deadline = time.monotonic() + STARTUP
    while not node.endpoints:
        try:
            record = node.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            pytest.fail(f"{name} printed no ready line within {STARTUP} s")
        if record is END_OF_OUTPUT:
            pytest.fail(f"{name} exited ({proc.wait()}) before printing its ready line")
        assert record["service"] == name
        if record["event"] == "ready":
            node.endpoints = dict(record["endpoints"])
    assert set(node.endpoints) >= {"tlib", "tc", "control"}
    return node


def meshed(sip1: NodeProcess, sip2: NodeProcess) -> Callable[[], bool]:
    return lambda: sip1.peer_state("sip2") == sip2.peer_state("sip1") == "up"


def terminate(node: NodeProcess, timeout: float = 5.0) -> int:
    node.proc.send_signal(signal.SIGTERM)
    return node.proc.wait(timeout)


@pytest.fixture
def pair() -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """sip1 and sip2 (DC1) meshed over the TC-layer. sip1 dials sip2 (its name sorts first), so
    sip2 is started first and never dials the address it is given for sip1."""
    started: list[NodeProcess] = []
    try:
        sip2 = start_node("sip2", "DC1", "--peer", "sip1=DC1@127.0.0.1:9")
        started.append(sip2)
        sip1 = start_node("sip1", "DC1", "--peer", f"sip2=DC1@{sip2.endpoints['tc']}")
        started.append(sip1)
        eventually_sync(meshed(sip1, sip2), 15, "sip1 and sip2 to see each other up", interval=0.01)
        yield sip1, sip2
    finally:
        for node in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.proc.pid, signal.SIGCONT)
            if node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(10)
            if node.proc.stdout is not None:
                node.proc.stdout.close()


# -- tests -------------------------------------------------------------------------------------


def test_independent_client_session_on_a_node_process(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    sip1, _ = pair
    desk = PlainTLib(sip1.endpoints["tlib"])
    try:
        registered = desk.request("RequestRegisterAddress", ThisDN="7001")
        assert (registered["message"], registered["ThisDN"]) == ("EventRegistered", "7001")
        login = desk.request("RequestAgentLogin", ThisDN="7001", AgentID="agent1")
        assert (login["message"], login["AgentID"]) == ("EventAgentLogin", "agent1")
        ready = desk.request("RequestAgentReady", ThisDN="7001")
        assert ready["message"] == "EventAgentReady"
        info = desk.request("RequestQueryAddress", ThisDN="7001")
        assert (info["message"], info["AgentID"]) == ("EventAddressInfo", "agent1")

        unknown = desk.request("RequestFrobnicate", ThisDN="7001")
        assert unknown["message"] == "EventError"
        assert isinstance(unknown["ErrorCode"], int)
        assert "RequestFrobnicate" in unknown["ErrorMessage"]
        no_dn = desk.request("RequestQueryAddress")
        assert no_dn["message"] == "EventError"
        assert isinstance(no_dn["ErrorCode"], int)
        assert "ThisDN" in no_dn["ErrorMessage"]

        # Another connection sends garbage until the node hangs up on it.
        vandal = socket.create_connection(desk.sock.getpeername()[:2], timeout=10)
        with vandal:
            with contextlib.suppress(ConnectionError):
                for _ in range(20):
                    vandal.sendall(struct.pack(">I", 7) + b"garbage")
                    if not vandal.recv(65536):
                        break
            vandal.settimeout(10)
            with contextlib.suppress(ConnectionError):
                while vandal.recv(65536):
                    pass  # answered with errors, then closed
        info = desk.request("RequestQueryAddress", ThisDN="7001")
        assert (info["message"], info["AgentID"]) == ("EventAddressInfo", "agent1")

        logout = desk.request("RequestAgentLogout", ThisDN="7001")
        assert logout["message"] == "EventAgentLogout"
        unregistered = desk.request("RequestUnregisterAddress", ThisDN="7001")
        assert unregistered["message"] == "EventUnregistered"
    finally:
        desk.close()


def test_sigstopped_peer_is_detected_within_interval_plus_timeout_and_sigterm_is_clean(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    sip1, sip2 = pair
    os.kill(sip2.proc.pid, signal.SIGSTOP)
    try:
        paused = time.monotonic()
        eventually_sync(
            lambda: sip1.peer_state("sip2") == "down", 10, "sip1 to lose sip2", interval=0.01
        )
        detected = time.monotonic() - paused
    finally:
        os.kill(sip2.proc.pid, signal.SIGCONT)
    # Detection needs the heartbeat timeout (a paused process resets nothing), and no more than
    # interval + timeout (plus the polling and scheduling of a loaded machine).
    assert TC_TIMEOUT - 0.15 <= detected <= TC_INTERVAL + TC_TIMEOUT + 1.0, detected

    eventually_sync(meshed(sip1, sip2), 15, "sip1 and sip2 to see each other up", interval=0.01)

    for node in (sip1, sip2):
        assert terminate(node) == 0
    events = []
    while (record := sip1.lines.get(timeout=10)) is not END_OF_OUTPUT:
        events.append(record["event"])
    assert "stopping" in events


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--tlib", "10.0.0.1:5000"], "loopback"),
        (["--control", "192.168.1.1:80"], "loopback"),
        (["--peer", "garbage"], "NAME=DC@HOST:PORT"),
        (["--peer", "sip2=DC1@10.0.0.2:4000"], "loopback"),
        (["--tc", "127.0.0.1:http"], "port"),
        (["--tc-interval", "0"], "timer"),
        (["--dns", "9-1"], "9-1"),
    ],
    ids=[
        "tlib-not-loopback",
        "control-not-loopback",
        "peer-garbage",
        "peer-not-loopback",
        "port-not-numeric",
        "zero-timer",
        "empty-dn-range",
    ],
)
def test_bad_command_line_exits_2_with_a_clear_message(options: list[str], complaint: str) -> None:
    command = [sys.executable, "-m", "emulator.sipcluster", "--name", "sip1", "--dc", "DC1"]
    result = subprocess.run(
        command + options, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result
    assert complaint in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
