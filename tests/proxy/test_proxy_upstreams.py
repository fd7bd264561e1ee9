"""Upstream choice without I/O: pins, failover within the DC, round-robin, health transitions."""

from __future__ import annotations

from emulator.common.addresses import Endpoint
from emulator.proxy.upstreams import Transition, Upstream, UpstreamPool, UpstreamState


def make_pool(rise: int = 1, fall: int = 1) -> UpstreamPool:
    return UpstreamPool(
        [Upstream("gws1", Endpoint("127.0.0.1", 1)), Upstream("gws2", Endpoint("127.0.0.1", 2))],
        rise=rise,
        fall=fall,
    )


def test_unpinned_clients_are_spread_round_robin_and_get_a_cookie() -> None:
    pool = make_pool()
    choices = [pool.choose(None) for _ in range(4)]
    assert [c.upstream.name for c in choices if c] == ["gws1", "gws2", "gws1", "gws2"]
    assert all(c is not None and c.set_cookie and c.repinned_from is None for c in choices)


def test_a_pinned_healthy_upstream_keeps_the_client_without_new_cookie() -> None:
    pool = make_pool()
    choice = pool.choose("gws2")
    assert choice is not None and choice.upstream.name == "gws2" and not choice.set_cookie


def test_pin_to_a_down_upstream_is_moved_to_a_healthy_one() -> None:
    pool = make_pool()
    assert pool.passive_failure("gws1", "connect refused", 5.0) == Transition(
        "gws1", UpstreamState.UP, UpstreamState.DOWN, "passive: connect refused"
    )
    choice = pool.choose("gws1")
    assert choice is not None
    assert (choice.upstream.name, choice.set_cookie, choice.repinned_from) == ("gws2", True, "gws1")


def test_unknown_pin_is_treated_as_no_pin() -> None:
    choice = make_pool().choose("gws9")
    assert choice is not None and choice.set_cookie and choice.repinned_from is None


def test_no_healthy_upstream_means_no_choice() -> None:
    pool = make_pool()
    pool.record_check("gws1", False, "HTTP 503 on /health", 1.0)
    pool.record_check("gws2", False, "connect refused", 1.0)
    assert pool.choose(None) is None
    assert pool.describe_down() == ("gws1 down (HTTP 503 on /health); gws2 down (connect refused)")


def test_rise_and_fall_counts_decide_transitions() -> None:
    pool = make_pool(rise=2, fall=2)
    assert pool.record_check("gws1", False, "timeout", 1.0) is None
    transition = pool.record_check("gws1", False, "timeout", 2.0)
    assert transition is not None and transition.new is UpstreamState.DOWN
    assert pool.record_check("gws1", True, "HTTP 200", 3.0) is None
    transition = pool.record_check("gws1", True, "HTTP 200", 4.0)
    assert transition is not None and transition.new is UpstreamState.UP


def test_excluded_upstreams_are_skipped_during_one_request() -> None:
    pool = make_pool()
    choice = pool.choose("gws1", exclude={"gws1"})
    assert choice is not None and choice.upstream.name == "gws2"
    assert pool.choose("gws1", exclude={"gws1", "gws2"}) is None
