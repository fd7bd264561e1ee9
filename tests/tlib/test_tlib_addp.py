"""ADDP-style liveness (DESIGN §2.1): heartbeat after ``interval`` idle, dead after
``interval + timeout`` silent. The timer has no clock: every test passes ``now`` explicitly."""

from __future__ import annotations

import math

import pytest

from emulator.tlib.addp import AddpTimer, Liveness

INTERVAL = 10.0
TIMEOUT = 5.0


def started_at(now: float) -> AddpTimer:
    return AddpTimer.started(INTERVAL, TIMEOUT, now)


def test_fresh_timer_says_ok() -> None:
    timer = started_at(100.0)

    assert timer.poll(100.0) is Liveness.OK
    assert timer.poll(109.9) is Liveness.OK


def test_heartbeat_is_due_after_interval_without_sending() -> None:
    timer = started_at(100.0)
    timer.received(108.0)

    assert timer.poll(109.999) is Liveness.OK
    assert timer.poll(110.0) is Liveness.SEND_HEARTBEAT


def test_sending_postpones_the_next_heartbeat() -> None:
    timer = started_at(100.0)
    timer.sent(106.0)
    timer.received(106.0)

    assert timer.poll(110.0) is Liveness.OK
    assert timer.poll(116.0) is Liveness.SEND_HEARTBEAT


def test_heartbeat_stays_due_until_one_is_sent() -> None:
    timer = started_at(100.0)
    timer.received(111.0)

    assert timer.poll(111.0) is Liveness.SEND_HEARTBEAT
    assert timer.poll(112.0) is Liveness.SEND_HEARTBEAT
    timer.sent(112.0)
    assert timer.poll(112.0) is Liveness.OK


def test_peer_is_dead_after_interval_plus_timeout_without_receiving() -> None:
    timer = started_at(100.0)
    for now in (105.0, 110.0, 114.0):
        timer.sent(now)

    assert timer.poll(114.999) is Liveness.OK
    assert timer.poll(115.0) is Liveness.PEER_DEAD


def test_dead_peer_wins_over_a_due_heartbeat() -> None:
    timer = started_at(100.0)

    assert timer.poll(200.0) is Liveness.PEER_DEAD


def test_receiving_resets_the_silence_count() -> None:
    timer = started_at(100.0)
    timer.received(112.0)
    timer.sent(112.0)

    assert timer.poll(115.0) is Liveness.OK
    timer.sent(122.0)
    assert timer.poll(126.999) is Liveness.OK
    assert timer.poll(127.0) is Liveness.PEER_DEAD


def test_next_deadline_is_the_heartbeat_time_when_that_comes_first() -> None:
    assert started_at(100.0).next_deadline() == 110.0


def test_next_deadline_is_the_silence_limit_when_that_comes_first() -> None:
    timer = started_at(100.0)
    timer.sent(108.0)

    assert timer.next_deadline() == 115.0


def test_next_deadline_moves_with_traffic_both_ways() -> None:
    timer = started_at(100.0)
    timer.sent(108.0)
    timer.received(112.0)

    assert timer.next_deadline() == 118.0


def test_poll_changes_its_answer_exactly_at_next_deadline() -> None:
    timer = started_at(0.0)
    answers: list[tuple[float, Liveness]] = []
    while not answers or answers[-1][1] is not Liveness.PEER_DEAD:
        deadline = timer.next_deadline()
        assert timer.poll(math.nextafter(deadline, -math.inf)) is Liveness.OK
        answers.append((deadline, timer.poll(deadline)))
        if answers[-1][1] is Liveness.SEND_HEARTBEAT:
            timer.sent(deadline)

    # Our own heartbeat at 10 does not keep a silent peer alive: it is dead at 10 + 5.
    assert answers == [(10.0, Liveness.SEND_HEARTBEAT), (15.0, Liveness.PEER_DEAD)]


@pytest.mark.parametrize(
    ("interval", "timeout"), [(0.0, 5.0), (10.0, 0.0), (-1.0, 5.0), (10.0, -0.1)]
)
def test_non_positive_interval_or_timeout_is_rejected(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        AddpTimer.started(interval, timeout, 0.0)


@pytest.mark.parametrize(("interval", "timeout"), [(math.nan, 5.0), (10.0, math.nan)])
def test_nan_interval_or_timeout_is_rejected(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        AddpTimer.started(interval, timeout, 0.0)
