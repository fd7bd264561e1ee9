"""The default lab (compose.yaml) in Docker containers, driven by ``drlab --engine compose``.

One lab for the module, at time scale 0.05: up in containers, a container killed (``docker
kill``: exit 137) with the outcomes a DR engineer checks — the DC's proxy still answers and pins
the surviving GWS node, and sip1 logs out agent2, whose GWS node died (logout on disconnect,
S1.13) — and ``down`` leaving no container. The tests need the lab's fixed loopback ports: the
fixture waits for another lab on this machine to finish first.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from clients.wwe.client import WweClient
from emulator.lab.topology import load_topology
from tests import support
from tests.browser import browse, dashboard_server
from tests.support import ROOT, eventually_sync

TIME_SCALE = 0.05
PORTS_FREE_WAIT = 300.0
PROJECT_LABEL = "label=com.docker.compose.project=drlab"
PROXY_DC1 = "http://127.0.0.1:8080"

pytestmark = [pytest.mark.containers, pytest.mark.timeout(600)]


def drlab(state_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return support.drlab(state_dir, "--engine", "compose", *args, timeout=timeout)


def docker_ps(*filters: str) -> list[dict[str, str]]:
    args = ["docker", "ps", "-a", "--filter", PROJECT_LABEL, "--format", "{{json .}}"]
    for item in filters:
        args += ["--filter", item]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def container_of(service: str) -> dict[str, str]:
    found = docker_ps(f"label=com.docker.compose.service={service}")
    assert len(found) == 1, found
    return found[0]


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def lab_ports_free() -> bool:
    topology = load_topology(ROOT / "compose.yaml")
    addresses = {str(e) for spec in topology.services.values() for e in spec.listens()}
    addresses |= {str(link.listen) for link in topology.links.values()}
    for address in addresses:
        host, _, port = address.rpartition(":")
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, int(port)))
            except OSError:
                return False
    return True


@dataclass
class Lab:
    state_dir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = drlab(self.state_dir, *args)
        assert result.returncode == 0, f"drlab {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--json").stdout)  # type: ignore[no-any-return]

    def sip1_state(self) -> dict[str, Any]:
        return get_json("http://127.0.1.1:9000/state")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def lab(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    eventually_sync(
        lab_ports_free,
        PORTS_FREE_WAIT,
        "the lab's ports (another lab is running here)",
        interval=0.1,
    )
    state_dir = tmp_path_factory.mktemp("drlab") / "state"
    started = drlab(state_dir, "up", "-d", "--time-scale", str(TIME_SCALE))
    if started.returncode != 0:
        drlab(state_dir, "down")
        pytest.fail(f"drlab --engine compose up failed:\n{started.stdout}{started.stderr}")
    yield Lab(state_dir)
    drlab(state_dir, "down")


def test_up_starts_every_service_in_its_own_running_container(lab: Lab) -> None:
    report = lab.status()
    services = {service["name"]: service for service in report["services"]}
    assert report["engine"] == "compose"
    assert len(services) == len(load_topology(ROOT / "compose.yaml").services)
    assert len(services) == 13
    assert all(s["state"] == "running" and s["container"] for s in services.values())
    assert services["proxy-dc1"]["endpoints"] == {"http": "127.0.0.1:8080"}
    assert services["links"]["endpoints"] == {"http": "127.0.0.1:8474"}
    running = docker_ps("status=running")
    assert {c["ID"][:12] for c in running} == {s["container"] for s in services.values()}
    assert all(link["state"] == "up" for link in report["links"])
    again = drlab(lab.state_dir, "up", "-d")
    assert again.returncode == 1
    assert "already running in containers" in again.stderr


def test_a_scenario_run_refuses_while_a_lab_runs_in_containers(lab: Lab) -> None:
    result = drlab(lab.state_dir, "scenario", "run", "s2-gws-sip-link", "--time-scale", "0.05")
    assert result.returncode == 1
    assert "a lab is running (containers); 'drlab --engine compose down' first" in result.stderr
    assert all(c["State"] == "running" for c in docker_ps()), "the running lab was touched"


async def log_agent2_on_through_gws1() -> WweClient:
    """agent2's WWE through proxy-dc1, pinned to gws1 as an earlier visit would have left it
    (the proxy's stickiness cookie in the browser): S1's setup, agent2 on gws1."""
    cookie = (await asyncio.to_thread(get_json, f"{PROXY_DC1}/proxy/status"))["cookie"]
    wwe = WweClient(PROXY_DC1, "agent2", "agent2", time_scale=TIME_SCALE)
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({cookie: "gws1"}, response_url=URL(PROXY_DC1))
    wwe._http = aiohttp.ClientSession(cookie_jar=jar)
    outcome = await wwe.login()
    assert outcome.rejected is None and outcome.node == "gws1", outcome
    return wwe


def agent_record(state: dict[str, Any], agent: str) -> dict[str, Any] | None:
    for record in state.get("owned", {}).values():
        if record.get("AgentID") == agent:
            return record  # type: ignore[no-any-return]
    return None


def pin_of_a_gws1_client() -> str:
    """The Set-Cookie proxy-dc1 answers a request whose cookie pins gws1."""
    status = get_json("http://127.0.0.1:8080/proxy/status")
    cookie = f"{status['cookie']}=gws1"
    request = urllib.request.Request("http://127.0.0.1:8080/health", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        return str(response.headers.get("Set-Cookie") or "")


async def test_a_killed_gws_container_exits_137_and_sip1_logs_agent2_out(lab: Lab) -> None:
    agent = "agent2"
    wwe = await log_agent2_on_through_gws1()
    try:
        record = agent_record(await asyncio.to_thread(lab.sip1_state), agent)
        assert record is not None and record["AgentState"] in ("NotReady", "Ready"), record

        killed = await asyncio.to_thread(lab.run, "kill", "gws1")
        assert killed.stdout.startswith("kill gws1 (pid ")
        assert container_of("gws1")["Status"].startswith("Exited (137)")

        # sip1 logs agent2 out when gws1's T-Lib connection drops (logout on disconnect, S1.13).
        def logged_out() -> bool:
            state = agent_record(lab.sip1_state(), agent)
            return state is None or state.get("AgentState") == "LoggedOut"

        await asyncio.to_thread(
            eventually_sync, logged_out, 20, f"sip1 to log {agent} out", interval=0.1
        )
        sip1_log = await asyncio.to_thread(lab.run, "logs", "sip1")  # the container's output
        logouts = [json.loads(line) for line in sip1_log.stdout.splitlines() if "logout" in line]
        assert any(
            e.get("event") == "agent.logout"
            and e.get("AgentID") == agent
            and e.get("reason") == "LogoutOnDisconnect"
            for e in logouts
        ), logouts

        # proxy-dc1 still answers, marks gws1 down, and pins a client of gws1 to gws2.
        def gws1_down() -> bool:
            upstreams = get_json("http://127.0.0.1:8080/proxy/status")["upstreams"]
            return {u["name"]: u["state"] for u in upstreams}.get("gws1") != "up"

        await asyncio.to_thread(
            eventually_sync, gws1_down, 20, "proxy-dc1 to see gws1 down", interval=0.1
        )
        assert "gws2" in await asyncio.to_thread(pin_of_a_gws1_client)

        report = await asyncio.to_thread(lab.status)
        gws1 = next(s for s in report["services"] if s["name"] == "gws1")
        assert gws1["state"] == "stopped"
        timeline = await asyncio.to_thread(lab.run, "timeline", "--json", "--event", "service.*")
        kills = [json.loads(line) for line in timeline.stdout.splitlines()]
        assert any(e["event"] == "service.kill" and e["target"] == "gws1" for e in kills)
    finally:
        await wwe.close()
    started = await asyncio.to_thread(lab.run, "start", "gws1")
    assert "gws1" in started.stdout and "ready" in started.stdout
    assert container_of("gws1")["State"] == "running"


def test_pause_freezes_a_container_and_resume_thaws_it(lab: Lab) -> None:
    lab.run("pause", "sip4")
    assert container_of("sip4")["State"] == "paused"
    assert next(s for s in lab.status()["services"] if s["name"] == "sip4")["state"] == "paused"
    lab.run("resume", "sip4")
    assert container_of("sip4")["State"] == "running"


def test_chaos_on_containers_replays_a_seed_and_leaves_the_lab_healthy(lab: Lab) -> None:
    result = lab.run("chaos", "--seed", "7", "--faults", "3", "--duration", "40")
    assert "chaos done: 0 failed steps; lab healthy" in result.stdout
    report = lab.status()
    assert all(service["state"] == "running" for service in report["services"])


def test_chaos_with_a_workload_on_containers_checks_every_invariant(lab: Lab) -> None:
    """The containers' kills and pauses are docker's; the agents, calls and checker the same."""
    result = drlab(
        lab.state_dir, "chaos", "--workload", "--seed", "4", "--faults", "6", timeout=400
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chaos seed 4: no violation" in result.stdout
    assert "VIOLATED" not in result.stdout and "relogin ok 2" in result.stdout


def test_the_dashboard_drives_and_shows_the_containers(lab: Lab) -> None:
    """drlab ui over the compose engine: the page's own buttons pause a container and cut a
    link, the state shown is the containers' and the relay's, and heal all heals."""
    with dashboard_server(lab.state_dir, "--engine", "compose") as url, browse(url) as seen:
        page = seen.page
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        page.click('[data-service="sip4"] button[data-action="pause"]')
        page.wait_for_selector('[data-service="sip4"][data-state="paused"]', timeout=10_000)
        paused = container_of("sip4")["State"]
        page.click('[data-service="sip4"] button[data-action="resume"]')
        page.wait_for_selector('[data-service="sip4"][data-state="running"]', timeout=10_000)
        page.click('tr[data-link="gws1-sip1"] button[data-action="cut"]')
        page.wait_for_selector('tr[data-link="gws1-sip1"][data-state="cut"]', timeout=5_000)
        page.wait_for_selector(".vis-item.fault-span", timeout=10_000)
        seen.screenshot("dashboard-compose-cut")
        page.click("#heal-all")
        page.wait_for_selector('tr[data-link="gws1-sip1"][data-state="up"]', timeout=5_000)
        assert seen.errors == [] and seen.refused == []
    assert paused == "paused"
    assert container_of("sip4")["State"] == "running"


def test_down_removes_every_container(lab: Lab) -> None:
    result = lab.run("down")
    assert "lab is down" in result.stdout
    assert docker_ps() == []
    assert lab_ports_free()
    logs = lab.state_dir / "compose" / "logs" / "sip1.log"
    assert '"event": "ready"' in logs.read_text()
