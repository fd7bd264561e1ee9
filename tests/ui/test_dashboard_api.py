"""The dashboard's API refuses bad input with the CLI's own messages, and wants its token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from emulator.lab import dashboard
from emulator.lab.dashboard import Dashboard
from emulator.lab.engine.embedded import EmbeddedEngine
from emulator.lab.topology import load_topology
from tests.support import ROOT, drlab


async def client_for(tmp_path: Path, token: str | None = None) -> TestClient:  # type: ignore[type-arg]
    engine = EmbeddedEngine(load_topology(ROOT / "compose.yaml"), tmp_path / "state")
    client = TestClient(TestServer(Dashboard(engine, token).app))
    await client.start_server()
    return client


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    client = await client_for(tmp_path)
    yield client
    await client.close()


def cli_error(*args: str) -> str:
    ran = drlab(None, *args)
    assert ran.returncode == 2, ran.stderr
    return ran.stderr.strip().splitlines()[-1].removeprefix("Error: ")


async def test_an_unknown_link_or_service_gets_the_same_message_as_the_cli(
    api: TestClient,  # type: ignore[type-arg]
) -> None:
    response = await api.post("/api/faults", json={"action": "cut", "links": ["nosuch"]})
    assert response.status == 400
    assert (await response.json())["error"] == cli_error("cut", "nosuch")
    response = await api.post("/api/faults", json={"action": "kill", "service": "sip9"})
    assert response.status == 400
    assert (await response.json())["error"] == cli_error("kill", "sip9")
    response = await api.post("/api/faults", json={"action": "partition", "dcs": ["DC1", "DC9"]})
    assert (await response.json())["error"] == cli_error("partition", "DC1", "DC9")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", "the body must be a JSON object with an 'action'"),
        (b'{"action": "explode"}', "unknown action 'explode'; valid: cut, heal, partition, kill"),
        (b'{"action": "cut"}', "'links' must be a non-empty list of names"),
        (b'{"action": "cut", "links": "gws1-sip1"}', "'links' must be a non-empty list"),
        (b'{"action": "kill", "service": 3}', "'service' must be a name"),
        (b'{"action": "cut", "links": ["gws1-sip1"], "mode": "melt"}', "unknown mode 'melt'"),
        (b'{"action": "partition", "dcs": ["DC1"]}', "'dcs' must name two DCs"),
    ],
)
async def test_bad_bodies_get_400_saying_what_is_wrong(
    api: TestClient,  # type: ignore[type-arg]
    body: bytes,
    error: str,
) -> None:
    response = await api.post("/api/faults", data=body)
    assert response.status == 400
    assert error in (await response.json())["error"]


async def test_a_fault_the_lab_cannot_do_is_a_502_not_a_crash(
    api: TestClient,  # type: ignore[type-arg]
) -> None:
    # No lab is up: the relay does not answer.
    response = await api.post("/api/faults", json={"action": "cut", "links": ["gws1-sip1"]})
    assert response.status == 502
    assert "relay" in (await response.json())["error"]
    assert (await api.get("/")).status == 200  # and the dashboard still serves


async def test_with_a_token_every_api_request_must_carry_it(tmp_path: Path) -> None:
    client = await client_for(tmp_path, token="s3cret")
    try:
        missing = await client.post("/api/faults", json={"action": "heal", "all": True})
        assert missing.status == 401 and "no token" in (await missing.json())["error"]
        wrong = await client.get("/api/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and "a wrong token" in (await wrong.json())["error"]
        right = await client.post(
            "/api/faults?token=s3cret", json={"action": "cut", "links": ["nosuch"]}
        )
        assert right.status == 400  # past the guard, refused by the name check
        page = await client.get("/")
        assert page.status == 200 and "drlab dashboard" in await page.text()
    finally:
        await client.close()


def test_binding_beyond_loopback_needs_a_token() -> None:
    error = cli_error("ui", "--host", "0.0.0.0")
    assert error == "--host 0.0.0.0 is not loopback: give --token too"


async def test_open_pages_share_one_poller_of_the_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tabs read the lab as often as one: the status is polled once per STATUS_POLL and
    each page gets the same status, once."""
    calls: list[float] = []
    real = dashboard.lab_status

    def counted(engine: Any) -> dict[str, Any]:
        calls.append(time.monotonic())
        return real(engine)

    monkeypatch.setattr(dashboard, "lab_status", counted)
    client = await client_for(tmp_path)
    try:
        pages = [await client.get("/api/events") for _ in range(3)]
        firsts = [await first_event(page) for page in pages]
        started = time.monotonic()
        await asyncio.sleep(1.5)
        polled = sum(1 for at in calls if at >= started)
        for page in pages:
            page.close()
    finally:
        await client.close()
    assert all(event == "status" for event, _ in firsts)
    assert len({data for _, data in firsts}) == 1  # the one poller's text
    assert 0 < polled <= 1.5 / dashboard.STATUS_POLL + 2, polled  # a poller per page: ~3x


async def first_event(response: Any) -> tuple[str, str]:
    event, data = "", ""
    while not data:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().strip()
        event = line.removeprefix("event: ") if line.startswith("event: ") else event
        data = line.removeprefix("data: ") if line.startswith("data: ") else ""
    return event, data
