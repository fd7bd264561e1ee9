"""The sans-I/O parts of the relay: toxic parsing, the link transition table, the toxic pipe."""

from __future__ import annotations

import random

import pytest

from emulator.links.errors import BadRequest
from emulator.links.model import TRANSITIONS, LinkCommand, LinkState, next_state
from emulator.links.pipe import Action, Close, Deliver, EndOfStream, Reset, ToxicPipe, slice_bounds
from emulator.links.toxics import (
    Latency,
    Slicer,
    Stream,
    ToxicSpec,
    ToxicType,
    parse_toxic,
    update_toxic,
)


def toxic(
    type_: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: int
) -> ToxicSpec:
    return parse_toxic(
        {"type": type_, "stream": stream, "toxicity": toxicity, "attributes": attributes}
    )


def pipe(stream: Stream = Stream.DOWNSTREAM, seed: int = 1) -> ToxicPipe:
    return ToxicPipe(stream, random.Random(seed))


def delivered(actions: list[Action]) -> list[tuple[float, bytes]]:
    return [(action.at, action.data) for action in actions if isinstance(action, Deliver)]


# -- parsing -------------------------------------------------------------------------------------


def test_toxic_gets_toxiproxy_defaults_for_name_stream_and_toxicity() -> None:
    spec = parse_toxic({"type": "latency", "attributes": {"latency": 100}})
    assert spec.to_json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"attributes": {"latency": 1}}, "missing required field: type"),
        ({"type": "lag"}, "invalid toxic type: 'lag'"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid"),
        ({"type": "latency", "attributes": {}}, "missing required field: attribute 'latency'"),
        ({"type": "latency", "attributes": {"latency": -5}}, "must be >= 0, got -5"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "must be an integer"),
        ({"type": "latency", "attributes": {"latency": True}}, "must be an integer"),
        ({"type": "latency", "attributes": {"latncy": 5}}, "unknown attribute 'latncy'"),
        ({"type": "bandwidth", "attributes": {"rate": 0}}, "'rate' must be at least 1"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, "'average_size' must be at"),
        (
            {"type": "slicer", "attributes": {"average_size": 4, "size_variation": 4}},
            "'size_variation' must be smaller",
        ),
        ({"type": "timeout", "toxicity": 1.5, "attributes": {"timeout": 1}}, "between 0 and 1"),
        ({"type": "timeout", "attributes": [1]}, "'attributes' must be a JSON object"),
        ([1, 2], "a toxic must be a JSON object"),
    ],
)
def test_bad_toxic_is_refused_with_a_message_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_toxic(body)
    assert message in refused.value.message
    assert refused.value.status == 400


def test_toxic_update_replaces_given_attributes_and_keeps_the_rest() -> None:
    spec = toxic("latency", latency=100, jitter=10)
    updated = update_toxic(spec, {"attributes": {"latency": 300}})
    assert updated.attributes == Latency(300, 10)
    assert updated.toxicity == 1.0
    assert update_toxic(spec, {"toxicity": 0.5}).toxicity == 0.5
    with pytest.raises(BadRequest):
        update_toxic(spec, {"attributes": {"jitter": -1}})


def test_every_state_and_command_pair_is_in_the_transition_table() -> None:
    assert len(TRANSITIONS) == len(LinkState) * len(LinkCommand)
    assert next_state(LinkState.UP, LinkCommand.CUT_BLACKHOLE) is LinkState.BLACKHOLE
    assert next_state(LinkState.BLACKHOLE, LinkCommand.CUT_RESET) is LinkState.CUT
    assert next_state(LinkState.CUT, LinkCommand.HEAL) is LinkState.UP


# -- the pipe ------------------------------------------------------------------------------------


def test_no_toxic_delivers_at_once() -> None:
    assert pipe().feed((), b"abc", 10.0) == [Deliver(10.0, b"abc")]


def test_latency_delays_each_chunk_from_when_it_was_read_not_cumulatively() -> None:
    toxics = (toxic("latency", latency=100),)
    p = pipe()
    assert p.feed(toxics, b"a", 1.0) == [Deliver(1.1, b"a")]
    assert p.feed(toxics, b"b", 1.01) == [Deliver(1.11, b"b")]


def test_jitter_stays_within_latency_plus_or_minus_jitter() -> None:
    toxics = (toxic("latency", latency=100, jitter=20),)
    p = pipe()
    delays = [p.feed(toxics, b"x", 0.0)[0].at for _ in range(200)]
    assert all(0.08 <= delay < 0.12 for delay in delays)
    assert len(set(delays)) > 10


def test_toxic_of_the_other_stream_does_not_apply() -> None:
    toxics = (toxic("latency", stream="upstream", latency=100),)
    assert pipe(Stream.DOWNSTREAM).feed(toxics, b"a", 0.0) == [Deliver(0.0, b"a")]
    assert pipe(Stream.UPSTREAM).feed(toxics, b"a", 0.0) == [Deliver(0.1, b"a")]


def test_bandwidth_spaces_bytes_at_the_rate_in_100ms_slices() -> None:
    toxics = (toxic("bandwidth", rate=10),)  # 10 KB/s: 1000 bytes per 100 ms
    actions = delivered(pipe().feed(toxics, b"x" * 2500, 0.0))
    assert [len(data) for _, data in actions] == [1000, 1000, 500]
    assert [round(at, 3) for at, _ in actions] == [0.1, 0.2, 0.25]


def test_slicer_cuts_into_slices_around_the_average_size_delay_apart() -> None:
    toxics = (toxic("slicer", average_size=10, size_variation=3, delay=1000),)
    actions = delivered(pipe().feed(toxics, bytes(range(100)), 0.0))
    assert b"".join(data for _, data in actions) == bytes(range(100))
    assert len(actions) > 5
    assert all(len(data) <= 13 for _, data in actions)
    times = [at for at, _ in actions]
    assert times == sorted(times) and times[1] - times[0] == pytest.approx(0.001)


def test_slice_bounds_cover_the_chunk_in_order() -> None:
    bounds = slice_bounds(1000, Slicer(7, 3, 0), random.Random(3))
    assert bounds[0] == 0 and bounds[-1] == 1000
    assert bounds == sorted(bounds)


def test_limit_data_passes_the_limit_then_closes() -> None:
    toxics = (toxic("limit_data", bytes=5),)
    p = pipe()
    assert p.feed(toxics, b"abc", 0.0) == [Deliver(0.0, b"abc")]
    actions = p.feed(toxics, b"defgh", 1.0)
    assert actions[0] == Deliver(1.0, b"de")
    assert isinstance(actions[1], Close)
    assert p.feed(toxics, b"more", 2.0) == []


def test_limit_data_then_latency_closes_after_the_delayed_last_bytes() -> None:
    toxics = (toxic("limit_data", bytes=2), toxic("latency", latency=100))
    actions = pipe().feed(toxics, b"abcd", 0.0)
    assert actions[0] == Deliver(0.1, b"ab")
    assert isinstance(actions[1], Close) and actions[1].at == pytest.approx(0.1)


def test_timeout_drops_everything_and_closes_after_its_timeout_from_first_sight() -> None:
    toxics = (toxic("timeout", timeout=500),)
    p = pipe()
    assert p.next_deadline(toxics, 2.0) == (2.5, "timeout_downstream")
    assert p.feed(toxics, b"lost", 2.1) == []
    assert p.next_deadline(toxics, 2.2) == (2.5, "timeout_downstream")


def test_timeout_zero_holds_forever() -> None:
    toxics = (toxic("timeout", timeout=0),)
    p = pipe()
    assert p.feed(toxics, b"lost", 0.0) == []
    assert p.next_deadline(toxics, 0.0) is None


def test_reset_peer_resets_its_timeout_after_the_first_data() -> None:
    toxics = (toxic("reset_peer", timeout=200),)
    p = pipe()
    assert p.feed(toxics, b"a", 1.0) == [Reset(1.2, "reset_peer reset_peer_downstream")]
    assert p.feed(toxics, b"b", 1.1) == []


def test_slow_close_holds_the_end_of_stream() -> None:
    toxics = (toxic("slow_close", delay=300),)
    assert pipe().finish(toxics, 1.0) == [EndOfStream(1.3)]
    assert pipe().finish((), 1.0) == [EndOfStream(1.0)]


def test_toxicity_zero_never_applies_and_is_drawn_once_per_connection() -> None:
    never = (toxic("latency", latency=100, toxicity=0.0),)
    assert pipe().feed(never, b"a", 0.0) == [Deliver(0.0, b"a")]
    half = (toxic("latency", latency=100, toxicity=0.5),)
    outcomes = []
    for seed in range(40):
        p = pipe(seed=seed)
        first = p.feed(half, b"a", 0.0)[0].at
        assert all(p.feed(half, b"b", 0.0)[0].at == first for _ in range(5))
        outcomes.append(first)
    assert set(outcomes) == {0.0, 0.1}


def test_toxic_type_names_are_toxiproxys() -> None:
    assert {t.value for t in ToxicType} == {
        "latency",
        "bandwidth",
        "slicer",
        "limit_data",
        "timeout",
        "reset_peer",
        "slow_close",
    }
