"""The whole default lab (compose.yaml) under the embedded engine, broken for real by ``drlab``.

One lab for the module (fixed loopback addresses: no two full labs at once), at time scale 0.05,
so the Genesys 10 s ADDP becomes 0.5 s. Every test starts from a healthy lab and leaves it
healthy; the last one takes it down and checks nothing is left.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients.wwe.client import WweClient
from emulator.lab.engine.embedded import EmbeddedEngine
from emulator.lab.engine.processes import process_state
from emulator.lab.status import health_problems
from emulator.lab.topology import load_topology
from tests.browser import browse
from tests.support import drlab, eventually_sync

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.05
ADDP_SILENCE = (10.0 + 10.0) * TIME_SCALE  # interval + timeout: a silent peer is dead after it
ADDP_TIMEOUT = 10.0 * TIME_SCALE  # the least a black-holed desktop can go unnoticed
CROSSING = ["sip1-sip3", "sip1-sip4", "sip2-sip3", "sip2-sip4"]

pytestmark = pytest.mark.timeout(150)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@dataclass
class Lab:
    state_dir: Path
    engine: EmbeddedEngine

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = drlab(self.state_dir, *args)
        assert result.returncode == 0, f"drlab {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result

    async def arun(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.run, *args)

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--json").stdout)  # type: ignore[no-any-return]

    def control(self, node: str) -> str:
        return self.engine.load()["services"][node]["endpoints"]["control"]  # type: ignore[no-any-return]

    def node_state(self, node: str) -> dict[str, Any]:
        return get_json(f"http://{self.control(node)}/state")  # type: ignore[no-any-return]

    def peer_state(self, node: str, peer: str) -> str:
        return str(self.node_state(node)["peers"][peer]["state"])

    def log(self, service: str) -> list[dict[str, Any]]:
        path = self.state_dir / "logs" / f"{service}.log"
        records = []
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def ensure_healthy(self, timeout: float = 20.0) -> None:
        problems = health_problems(self.engine)
        if any("link" in problem for problem in problems):
            self.run("heal", "--all")
        eventually_sync(lambda: not health_problems(self.engine), timeout, "a healthy lab")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state_dir = tmp_path_factory.mktemp("drlab") / "state"
    started = drlab(state_dir, "up", "-d", "--time-scale", str(TIME_SCALE))
    if started.returncode != 0:
        drlab(state_dir, "down")
        pytest.fail(f"drlab up failed:\n{started.stdout}{started.stderr}")
    lab = Lab(state_dir, EmbeddedEngine(load_topology(ROOT / "compose.yaml"), state_dir))
    lab.ensure_healthy()
    yield lab
    drlab(state_dir, "down")


@pytest.fixture
def healthy_lab(lab: Lab) -> Iterator[Lab]:
    lab.ensure_healthy()
    yield lab
    lab.ensure_healthy()


def test_up_starts_every_service_and_status_maps_services_and_links(healthy_lab: Lab) -> None:
    lab = healthy_lab
    report = lab.status()
    services = {service["name"]: service for service in report["services"]}
    assert len(services) == 13
    assert all(service["state"] == "running" and service["pid"] for service in services.values())
    assert set(services["sip1"]["endpoints"]) >= {"tlib", "tc", "control"}
    assert services["pstn"]["endpoints"]["http"] == "127.0.3.1:9000"
    assert services["softphone2"]["endpoints"]["http"] == "127.0.3.2:9000"
    assert services["proxy-dc1"]["endpoints"] == {"http": "127.0.0.1:8080"}
    assert services["proxy-dc2"]["endpoints"] == {"http": "127.0.0.1:8090"}
    assert services["links"]["endpoints"] == {"http": "127.0.0.1:8474"}
    assert (services["gws3"]["dc"], services["gws3"]["kind"]) == ("DC2", "gws")
    links = {link["name"]: link for link in report["links"]}
    assert set(links) == set(lab.engine.topology.links)
    assert all(link["state"] == "up" and link["toxics"] == [] for link in links.values())
    assert links["gws1-sip1"]["services"] == ["gws1", "sip1"]
    assert links["softphone2-dc1-sip1-rtp"]["protocol"] == "udp"
    groups = {group["name"]: group["links"] for group in report["link_groups"]}
    assert groups["pstn-dc2"] == [
        "pstn-dc2-sip3",
        "pstn-dc2-sip3-rtp",
        "pstn-dc2-sip4",
        "pstn-dc2-sip4-rtp",
        "pstn-dc2-route",
    ]
    proxies = get_json("http://127.0.0.1:8474/proxies")
    assert set(proxies) == set(links)
    assert proxies["sip1-sip3"]["listen"] == "127.0.9.13:3100"
    softphone = get_json("http://127.0.3.2:9000/status")
    assert (softphone["registered"], softphone["registrar"]) == (True, "sip1")

    again = drlab(lab.state_dir, "up", "-d")
    assert again.returncode == 1
    assert "a lab is already running" in again.stderr and "drlab down" in again.stderr


async def log_agent1_on(lab: Lab) -> tuple[WweClient, str]:
    """agent1's WWE through proxy-dc1; returns it and the GWS node serving it."""
    wwe = WweClient("http://127.0.0.1:8080", "agent1", "agent1", time_scale=TIME_SCALE)
    outcome = await wwe.login()
    assert outcome.node in ("gws1", "gws2"), outcome
    assert outcome.rejected is None
    return wwe, outcome.node


def agent_state(lab: Lab, dn: str = "7001") -> str:
    owner = lab.node_state("sip1")["ownership"][dn]["owner"]
    return str(lab.node_state(owner)["owned"][dn]["AgentState"])


def cut_and_logout(lab: Lab, link: str, after: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The relay's cut of ``link`` and sip1's logout of agent1 after it, once both logs hold
    them: a service writes its log lines in batches, so the state its control endpoint shows
    may be ahead of its log file by a few milliseconds. The log, not the DN's state, is what is
    awaited: the desktop may reconnect to another GWS node and log the agent on again at once
    (S2.4, S2.6), and a poll of the state can miss the short LoggedOut between the two."""

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        cut = [
            r
            for r in lab.log("links")
            if r["event"] == "link.cut" and r["link"] == link and r["ts"] >= after
        ]
        logout = [
            r
            for r in lab.log("sip1")
            if r["event"] == "agent.logout" and r.get("AgentID") == "agent1" and r["ts"] >= after
        ]
        return (cut[0], logout[0]) if cut and logout else None

    return eventually_sync(both, 10, f"the cut of {link} and agent1's logout in the logs")


async def test_a_reset_gws_tlib_link_logs_the_agent_out_at_once(healthy_lab: Lab) -> None:
    lab = healthy_lab
    wwe, node = await log_agent1_on(lab)
    try:
        assert agent_state(lab) in ("NotReady", "Ready")
        assert (await asyncio.to_thread(lab.status))["dns"]["7001"]["owner"] == "sip1"
        began = time.time()
        await lab.arun("cut", f"{node}-sip1")
        cut, logout = await asyncio.to_thread(cut_and_logout, lab, f"{node}-sip1", began)
        assert logout["reason"] == "LogoutOnDisconnect"
        assert logout["ts"] - cut["ts"] < ADDP_SILENCE  # the reset, not a heartbeat, told sip1
        gone = [r for r in lab.log("sip1") if r["event"] == "tlib.client_gone" and r["ts"] >= began]
        assert "ADDP" not in gone[0]["reason"]
    finally:
        await lab.arun("heal", f"{node}-sip1")
        await wwe.logout()
        await wwe.close()


async def test_a_black_holed_gws_tlib_link_is_found_only_by_the_heartbeat(
    healthy_lab: Lab,
) -> None:
    lab = healthy_lab
    wwe, node = await log_agent1_on(lab)
    try:
        began = time.time()
        await lab.arun("cut", f"{node}-sip1", "--mode", "blackhole")
        cut, logout = await asyncio.to_thread(cut_and_logout, lab, f"{node}-sip1", began)
        assert logout["ts"] - cut["ts"] >= ADDP_TIMEOUT * 0.9
        gone = [r for r in lab.log("sip1") if r["event"] == "tlib.client_gone" and r["ts"] >= began]
        assert gone[0]["reason"] == "peer silent: ADDP timeout"
        link = next(link for link in lab.status()["links"] if link["name"] == f"{node}-sip1")
        assert link["state"] == "blackhole"
    finally:
        await lab.arun("heal", f"{node}-sip1")
        await wwe.logout()
        await wwe.close()


def test_a_partition_cuts_exactly_the_tc_links_between_the_dcs(healthy_lab: Lab) -> None:
    lab = healthy_lab
    result = lab.run("partition", "DC1", "DC2")
    assert ", ".join(CROSSING) in result.stdout
    states = {link["name"]: link["state"] for link in lab.status()["links"]}
    assert sorted(name for name, state in states.items() if state != "up") == CROSSING
    eventually_sync(
        lambda: {lab.peer_state("sip1", "sip3"), lab.peer_state("sip4", "sip2")} == {"down"},
        10,
        "the TC-layer to see the partition",
    )
    assert lab.peer_state("sip1", "sip2") == "up" and lab.peer_state("sip3", "sip4") == "up"
    lab.run("heal", "--all")
    eventually_sync(lambda: lab.peer_state("sip1", "sip3") == "up", 10, "the TC link back")
    entries = [json.loads(line) for line in lab.run("timeline", "--json").stdout.splitlines()]
    partition = [e for e in entries if e["event"] == "fault.partition"][-1]
    assert partition["links"] == CROSSING and partition["dcs"] == ["DC1", "DC2"]


def test_cutting_a_phone_link_group_cuts_its_links_at_once_and_the_softphone_fails_over(
    healthy_lab: Lab,
) -> None:
    lab = healthy_lab
    group = list(lab.engine.topology.groups["softphone2-dc1"])
    result = lab.run("cut", "softphone2-dc1")
    assert ", ".join(group) in result.stdout
    states = {link["name"]: link["state"] for link in lab.status()["links"]}
    assert sorted(name for name, state in states.items() if state != "up") == sorted(group)
    entries = [json.loads(line) for line in lab.run("timeline", "--json").stdout.splitlines()]
    assert [e for e in entries if e["event"] == "fault.cut"][-1]["links"] == group

    def registrar() -> Any:
        status = get_json("http://127.0.3.2:9000/status")
        return status["registered"] and status["registrar"] in ("sip3", "sip4")

    # Next refresh (30 lab s) fails at sip1, then sip2 (timer F each), then DC2 answers.
    eventually_sync(registrar, 20, "softphone2 registered in DC2")
    lab.run("heal", "softphone2-dc1")
    assert all(link["state"] == "up" for link in lab.status()["links"])
    refused = drlab(lab.state_dir, "cut", "softphone2-dc9")
    assert refused.returncode == 2 and "softphone2-dc1" in refused.stderr


def test_a_paused_node_is_a_silent_peer_until_resumed(healthy_lab: Lab) -> None:
    lab = healthy_lab
    began = time.time()
    lab.run("pause", "sip3")
    try:
        eventually_sync(lambda: lab.peer_state("sip1", "sip3") == "down", 10, "sip1 to lose sip3")
        # The log line may trail the control endpoint by one write batch.
        down = eventually_sync(
            lambda: [
                r
                for r in lab.log("sip1")
                if r["event"] == "tc.peer_down" and r["peer"] == "sip3" and r["ts"] >= began
            ],
            5,
            "sip1's tc.peer_down of sip3 in its log",
        )
        assert down[0]["reason"] == "peer silent: ADDP timeout"
        assert {s["name"]: s["state"] for s in lab.status()["services"]}["sip3"] == "paused"
    finally:
        lab.run("resume", "sip3")
    eventually_sync(lambda: lab.peer_state("sip1", "sip3") == "up", 10, "sip3 back")
    timeline = lab.run("timeline", "--json", "--service", "sip3").stdout.splitlines()
    events = [
        (e["event"], e.get("target")) for e in map(json.loads, timeline) if e["service"] == "lab"
    ]
    assert events[-2:] == [("service.pause", "sip3"), ("service.resume", "sip3")]


def test_a_killed_service_is_started_again_and_both_are_on_the_timeline(healthy_lab: Lab) -> None:
    lab = healthy_lab
    before = lab.engine.load()["services"]["gws2"]["pid"]
    lab.run("kill", "gws2")
    eventually_sync(lambda: process_state(before) == "stopped", 5, "gws2 to die")
    assert "gws2 is stopped" in health_problems(lab.engine)
    lab.run("start", "gws2")
    after = lab.engine.load()["services"]["gws2"]["pid"]
    assert after != before
    lab_entries = [
        json.loads(line)
        for line in (lab.state_dir / "lab.jsonl").read_text().splitlines()
        if '"gws2"' in line
    ]
    assert [(e["event"], e["pid"]) for e in lab_entries[-2:]] == [
        ("service.kill", before),
        ("service.start", after),
    ]


def test_a_cut_with_a_ttl_heals_on_time(healthy_lab: Lab) -> None:
    lab = healthy_lab
    ttl = 20.0  # lab seconds: 1 s at this time scale
    began = time.time()
    lab.run("cut", "sip1-sip2", "--ttl", str(ttl))
    link = next(link for link in lab.status()["links"] if link["name"] == "sip1-sip2")
    assert link["state"] == "cut" and 0 < link["heal_in"] <= ttl * TIME_SCALE
    eventually_sync(
        lambda: any(
            r["event"] == "link.heal" and r["link"] == "sip1-sip2" and r["ts"] >= began
            for r in lab.log("links")
        ),
        10,
        "the TTL to heal the link",
    )
    links = [r for r in lab.log("links") if r.get("link") == "sip1-sip2" and r["ts"] >= began]
    cut = next(r for r in links if r["event"] == "link.cut")
    heal = next(r for r in links if r["event"] == "link.heal")
    assert heal["reason"] == "ttl"
    assert ttl * TIME_SCALE * 0.95 <= heal["ts"] - cut["ts"] <= ttl * TIME_SCALE + 1.0


def test_a_latency_toxic_is_applied_then_removed(healthy_lab: Lab) -> None:
    lab = healthy_lab
    health = "http://127.0.11.1:8000/health"  # gws1 through proxy-dc1-gws1

    def took() -> float:
        began = time.monotonic()
        get_json(health)
        return time.monotonic() - began

    lab.run("toxic", "add", "proxy-dc1-gws1", "--type", "latency", "--attr", "latency=400")
    assert took() >= 0.4
    link = next(link for link in lab.status()["links"] if link["name"] == "proxy-dc1-gws1")
    assert link["toxics"][0]["attributes"] == {"latency": 400, "jitter": 0}
    lab.run("toxic", "rm", "proxy-dc1-gws1", "latency_downstream")
    assert took() < 0.4


def chaos_plan(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("  #")]


def test_chaos_with_one_seed_replays_the_same_faults_and_heals_the_lab(healthy_lab: Lab) -> None:
    lab = healthy_lab
    runs = [lab.run("chaos", "--seed", "7", "--faults", "20", "--duration", "80") for _ in "ab"]
    plans = [chaos_plan(run.stdout) for run in runs]
    assert len(plans[0]) == 20 and plans[0] == plans[1]
    for run in runs:
        assert "lab healthy" in run.stdout
    assert health_problems(lab.engine) == []
    report = lab.status()
    assert all(service["state"] == "running" for service in report["services"])
    assert all(link["state"] == "up" and not link["toxics"] for link in report["links"])
    logged = [
        json.loads(line)
        for line in (lab.state_dir / "lab.jsonl").read_text().splitlines()
        if '"chaos.plan"' in line
    ]
    assert len(logged) == 2 and logged[0]["faults"] == logged[1]["faults"]


def listening(endpoints: set[str]) -> set[str]:
    """Which of ``endpoints`` have a listening TCP socket or a bound UDP socket (/proc/net)."""
    found = set()
    lines = [(proto, line) for proto in ("tcp", "udp") for line in _sockets(proto)]
    for proto, line in lines:
        fields = line.split()
        if proto == "tcp" and fields[3] != "0A":  # LISTEN
            continue
        address, port = fields[1].split(":")
        host = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
        found.add(f"{host}:{int(port, 16)}")
    return found & endpoints


def _sockets(proto: str) -> list[str]:
    return Path(f"/proc/net/{proto}").read_text().splitlines()[1:]


def lab_endpoints(lab: Lab) -> set[str]:
    topology = lab.engine.topology
    endpoints = {str(link.listen) for link in topology.links.values()}
    for spec in topology.services.values():
        endpoints |= {str(endpoint) for endpoint in spec.listens()}
    return endpoints


def test_timeline_html_draws_a_cut_and_a_kill_as_fault_spans_in_a_browser(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    began = time.time()
    lab.run("cut", "sip2-sip4")
    lab.run("kill", "softphone2")
    lab.run("heal", "sip2-sip4")
    lab.run("start", "softphone2")
    eventually_sync(
        lambda: any(
            r["event"] == "link.heal" and r["link"] == "sip2-sip4" and r["ts"] >= began
            for r in lab.log("links")
        ),
        5,
        "the relay's heal in its log",
    )
    page = tmp_path / "timeline.html"
    written = lab.run("timeline", "--html", str(page))
    assert f"written to {page}" in written.stdout
    with browse() as seen:
        seen.page.goto(page.as_uri())
        seen.page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        assert seen.page.locator(".vis-timeline").first.is_visible()  # drawn, not left hidden
        spans = seen.page.locator(".vis-item.fault-span .vis-item-content").all_text_contents()
        seen.screenshot("timeline-cut-and-kill")
        assert seen.errors == [] and seen.refused == []
    assert "cut sip2-sip4" in spans and "killed softphone2" in spans
    refused = drlab(lab.state_dir, "timeline", "--html", str(page), "--follow")
    assert refused.returncode == 2 and "cannot --follow" in refused.stderr


def test_down_leaves_no_process_and_no_listening_port_even_after_a_crashed_runner(
    lab: Lab,
) -> None:
    endpoints = lab_endpoints(lab)
    assert "127.0.0.1:8474" in endpoints and "127.0.9.13:3100" in endpoints
    assert listening(endpoints) == endpoints
    pids = [s["pid"] for s in lab.status()["services"]]
    lab.run("down")
    assert all(process_state(pid) == "stopped" for pid in pids)
    assert listening(endpoints) == set()
    refused = drlab(lab.state_dir, "cut", "gws1-sip1")
    assert refused.returncode == 1 and "the relay is not answering" in refused.stderr

    # A runner killed while it starts the lab: 'down' still finds every process it started.
    runner = subprocess.Popen(
        [sys.executable, "-m", "emulator.lab", "--state-dir", str(lab.state_dir), "up"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.split()[:2] == ["gws1", "ready"]:
            break
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    runner.stdout.close()
    started = [entry["pid"] for entry in lab.engine.load()["services"].values()]
    assert len(started) >= 6 and any(process_state(pid) != "stopped" for pid in started)
    lab.run("down")
    assert all(process_state(pid) == "stopped" for pid in started)
    assert listening(endpoints) == set()
