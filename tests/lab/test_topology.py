"""compose.yaml as the one source of the topology: services, the relay's link table, validation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emulator.lab.topology import TopologyError, load_topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"

SIP = ["sip1", "sip2", "sip3", "sip4"]


def test_the_default_topology_has_every_service_of_the_design() -> None:
    topology = load_topology(COMPOSE)
    kinds = {name: spec.kind for name, spec in topology.services.items()}
    assert kinds == {
        "links": "links",
        **dict.fromkeys(SIP, "sipcluster"),
        **dict.fromkeys(["gws1", "gws2", "gws3", "gws4"], "gws"),
        "proxy-dc1": "proxy",
        "proxy-dc2": "proxy",
        "pstn": "pstn",
        "softphone2": "softphone",
    }
    dcs = {name: spec.dc for name, spec in topology.services.items()}
    assert dcs["sip2"] == "DC1" and dcs["gws4"] == "DC2" and dcs["links"] == ""
    assert dcs["pstn"] == dcs["softphone2"] == ""  # outside both DCs: a partition spares them
    assert topology.dcs() == ["DC1", "DC2"]
    assert topology.services["proxy-dc1"].option("--listen") == "127.0.0.1:8080"
    assert topology.services["proxy-dc2"].option("--listen") == "127.0.0.1:8090"
    assert topology.services["links"].option("--api") == "127.0.0.1:8474"


def test_services_start_relay_first_then_sip_nodes_then_gws_then_proxies() -> None:
    waves = load_topology(COMPOSE).start_waves()
    assert waves == [
        ["links"],
        SIP,
        ["gws1", "gws2", "gws3", "gws4", "pstn", "softphone2"],
        ["proxy-dc1", "proxy-dc2"],
    ]


def test_every_pair_of_connected_services_has_a_named_link() -> None:
    links = load_topology(COMPOSE).links
    tc = {f"sip{a}-sip{b}" for a in range(1, 5) for b in range(a + 1, 5)}
    tlib = {"gws1-sip1", "gws2-sip1", "gws3-sip3", "gws4-sip3"}
    proxy = {"proxy-dc1-gws1", "proxy-dc1-gws2", "proxy-dc2-gws3", "proxy-dc2-gws4"}
    phone = {
        f"{p}-dc{(n + 1) // 2}-{leg}"
        for p in ("pstn", "softphone2")
        for n in range(1, 5)
        for leg in (f"sip{n}", f"sip{n}-rtp", "route")
    }
    assert set(links) == tc | tlib | proxy | phone
    for name, link in links.items():
        if name in phone:
            assert link.protocol == "udp"
            assert name.startswith(link.target if name.endswith("route") else link.source)
        else:
            assert name == f"{link.source}-{link.target}"
            assert link.protocol == "tcp"


def test_a_phone_link_group_is_every_sip_and_rtp_link_of_that_phone_with_one_dc() -> None:
    topology = load_topology(COMPOSE)
    assert sorted(topology.groups) == ["pstn-dc1", "pstn-dc2", "softphone2-dc1", "softphone2-dc2"]
    assert topology.groups["softphone2-dc1"] == (
        "softphone2-dc1-sip1",
        "softphone2-dc1-sip1-rtp",
        "softphone2-dc1-sip2",
        "softphone2-dc1-sip2-rtp",
        "softphone2-dc1-route",
    )
    assert topology.expand(["gws1-sip1", "pstn-dc2", "pstn-dc2-sip3"]) == [
        "gws1-sip1",
        *topology.groups["pstn-dc2"],
    ]


def test_every_node_reaches_each_phone_and_gives_it_media_through_its_own_dc_links() -> None:
    """--phone-route/--pstn-route: the DC's route link to the phone; --phone-media/--pstn-media:
    the phone's RTP link to this very node (what the node's SDP offers the phone)."""
    topology = load_topology(COMPOSE)
    links = topology.links
    by_listen = {(str(link.listen)): link for link in links.values()}
    for node in SIP:
        spec = topology.services[node]
        group = f"dc{spec.dc[-1]}"
        sip, media = spec.option("--sip"), spec.option("--media")
        assert sip and media and sip.endswith(":5060") and media.endswith(":6000")
        for flag, phone, kind in (
            ("--phone-route", "softphone2", "route"),
            ("--phone-media", "softphone2", "rtp"),
            ("--pstn-route", "pstn", "route"),
            ("--pstn-media", "pstn", "rtp"),
        ):
            value = spec.option(flag)
            assert value is not None, (node, flag)
            link = by_listen[value.rsplit("=", 1)[-1]]
            if kind == "route":
                assert link.name == f"{phone}-{group}-route" and link.target == phone
            else:
                assert link.name == f"{phone}-{group}-{node}-rtp"
                assert (link.source, link.target, str(link.upstream)) == (phone, node, media)


def test_every_dialled_address_is_a_link_listen_address_except_lower_tc_peers() -> None:
    """No service reaches another directly: what it dials is the relay's side of a link."""
    topology = load_topology(COMPOSE)
    by_listen = {link.listen: link for link in topology.links.values()}
    for spec in topology.services.values():
        for peer, address in spec.dials().items():
            if peer.isdigit():
                continue  # a node's --phone-route/--phone-media DN=ADDR: tested on its own
            if spec.kind == "sipcluster" and peer < spec.name:
                # A lower-named node dials us; its address is only its name and DC.
                assert address in topology.services[peer].listens()
                continue
            link = by_listen.get(address)
            assert link is not None, f"{spec.name} dials {peer} at {address}, not through a link"
            assert (link.source, link.target) == (spec.name, peer)
            assert link.upstream in topology.services[peer].listens()


def test_a_partition_between_the_dcs_crosses_exactly_the_inter_dc_tc_links() -> None:
    topology = load_topology(COMPOSE)
    assert sorted(topology.crossing("DC1", "DC2")) == [
        "sip1-sip3",
        "sip1-sip4",
        "sip2-sip3",
        "sip2-sip4",
    ]
    assert topology.crossing("DC1", "DC3") == []


def test_the_relay_config_is_generated_from_the_link_table() -> None:
    link = load_topology(COMPOSE).links["gws1-sip1"]
    assert link.relay_config() == {
        "name": "gws1-sip1",
        "listen": "127.0.10.1:3000",
        "upstream": "127.0.1.1:3000",
        "protocol": "tcp",
    }


LINKED = """
services:
  a: {command: [x, --listen, "127.0.0.1:1000"], labels: {drlab.kind: k, drlab.dc: DC1}}
  b: {command: [x, --peer, "a=127.0.8.1:1000"], labels: {drlab.kind: k, drlab.dc: DC2}}
x-drlab-links:
"""


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("[b]", "link group b: the name is already a link's, service's or group's"),
        ("[c]", "link group c: no link is named c-*"),
        ("c", "must be a list of group names"),
    ],
)
def test_a_wrong_link_group_is_refused_with_its_name(
    tmp_path: Path, groups: str, message: str
) -> None:
    path = tmp_path / "compose.yaml"
    link = '  - {name: b-a, from: b, to: a, listen: "127.0.8.1:1000", upstream: "127.0.0.1:1000"}'
    path.write_text(f"{LINKED}{link}\nx-drlab-link-groups: {groups}\n")
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("links", "message"),
    [
        (
            '  - {name: b-a, from: b, to: a, listen: "127.0.8.1:1000", upstream: "127.0.0.1:1001"}',
            "link b-a: upstream 127.0.0.1:1001 is not an address a listens on (127.0.0.1:1000)",
        ),
        (
            '  - {name: b-a, from: b, to: c, listen: "127.0.8.1:1000", upstream: "127.0.0.1:1000"}',
            "link b-a: 'to' 'c' is not a service (a, b)",
        ),
        (
            '  - {name: b-a, from: b, to: a, listen: "10.0.0.1:1000", upstream: "127.0.0.1:1000"}',
            "host must be on loopback",
        ),
        (
            '  - {name: b-a, from: b, to: a, listen: "127.0.8.1:1000", upstream: "127.0.0.1:1000"}'
            '\n  - {name: x, from: b, to: a, listen: "127.0.8.1:1000", upstream: "127.0.0.1:1000"}',
            "link x: listen 127.0.8.1:1000 is already link b-a's",
        ),
        ("  - {name: b-a, from: b, to: a}", "missing listen, upstream"),
        (
            '  - {name: b-a, from: b, to: a, listen: "127.0.8.1:1", upstream: "127.0.0.1:1000",'
            " protocol: sctp}",
            "protocol must be tcp or udp",
        ),
    ],
)
def test_a_wrong_link_is_refused_with_its_name(tmp_path: Path, links: str, message: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(LINKED + links + "\n")
    with pytest.raises(TopologyError, match=None) as caught:
        load_topology(path)
    assert message in str(caught.value)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "--services"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == set(load_topology(COMPOSE).services)
