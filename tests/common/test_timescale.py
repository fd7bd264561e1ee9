"""The one way a service scales its timers: every float field of a timer set, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from emulator.common.timescale import TimeScale
from emulator.gws.config import GwsTimers
from emulator.sip.transaction import TimerConfig
from emulator.sipcluster.config import Timers


@dataclass(frozen=True)
class _Mixed:
    delay: float = 30.0
    retries: int = 3
    enabled: bool = True


def test_every_float_field_is_scaled_and_the_rest_kept() -> None:
    scaled = TimeScale(0.05).scaled(_Mixed())
    assert scaled == _Mixed(delay=1.5, retries=3, enabled=True)


@pytest.mark.parametrize("timers", [GwsTimers(), Timers(), TimerConfig(reliable=True)])
def test_each_services_timer_set_scales_every_timer(timers: object) -> None:
    scaled = TimeScale(0.5).scaled(timers)
    assert type(scaled) is type(timers)
    for name, value in vars(timers).items():
        expected = value * 0.5 if isinstance(value, float) else value
        assert getattr(scaled, name) == expected, name


def test_the_ownership_move_delay_of_30_s_becomes_1_5_s_at_0_05() -> None:
    assert TimeScale(0.05).scaled(Timers()).ownership_move_delay == pytest.approx(1.5)
