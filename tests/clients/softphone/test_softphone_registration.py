"""The softphone's registration and failover: the sans-I/O policy, then real UDP registrars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from softphone_test_helpers import capture_log, phone_config

from clients.softphone.phone import Softphone
from clients.softphone.registration_core import (
    RegistrarEntry,
    RegistrationPolicy,
    RegistrationStateError,
    RegState,
)
from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.registrar import RegistrarService
from tests.support import eventually

SIP1 = RegistrarEntry("sip1", Endpoint("127.0.0.1", 5060))
SIP2 = RegistrarEntry("sip2", Endpoint("127.0.0.2", 5060))
SIP3 = RegistrarEntry("sip3", Endpoint("127.0.0.3", 5060))


def test_policy_registers_at_the_first_registrar_and_refreshes_at_half_the_expiry() -> None:
    policy = RegistrationPolicy([SIP1, SIP2, SIP3])
    attempt = policy.start(now=0.0)
    assert (attempt.registrar, attempt.at, attempt.refresh) == (SIP1, 0.0, False)
    policy.attempt_started()
    refresh = policy.succeeded(now=0.1, granted_expires=3.0)
    assert policy.state is RegState.REGISTERED
    assert (refresh.registrar, refresh.at, refresh.refresh) == (SIP1, pytest.approx(1.6), True)
    assert policy.registered(now=3.0) and not policy.registered(now=3.1)


def test_policy_moves_to_the_next_registrar_at_once_when_a_refresh_fails() -> None:
    policy = RegistrationPolicy([SIP1, SIP2, SIP3], retry_interval=5.0)
    policy.start(now=0.0)
    policy.attempt_started()
    policy.succeeded(now=0.0, granted_expires=3.0)
    policy.attempt_started()
    assert policy.state is RegState.REFRESHING
    nxt = policy.failed(now=3.1, reason="timeout")
    assert (nxt.registrar, nxt.at) == (SIP2, 3.1)
    assert policy.state is RegState.REGISTERING
    policy.attempt_started()
    nxt = policy.failed(now=4.7, reason="timeout")
    assert (nxt.registrar, nxt.at) == (SIP3, 4.7)
    policy.attempt_started()
    assert policy.succeeded(now=5.0, granted_expires=3.0).registrar == SIP3
    assert policy.failures_in_a_row == 0


def refreshing(policy: RegistrationPolicy, expires: float = 3.0) -> None:
    """Registered at the first registrar at t=0 for ``expires``; the refresh is going out."""
    policy.start(now=0.0)
    policy.attempt_started()
    policy.succeeded(now=0.0, granted_expires=expires)
    policy.attempt_started()


def test_a_failed_refresh_is_retried_at_the_same_registrar_while_the_registration_lasts() -> None:
    policy = RegistrationPolicy([SIP1, SIP2, SIP3], retry_interval=0.5)
    refreshing(policy)
    retry = policy.failed(now=1.9, reason="timeout")
    assert (retry.registrar, retry.at, retry.refresh) == (SIP1, pytest.approx(2.4), True)
    assert policy.state is RegState.REGISTERED and policy.registered(now=2.4)
    assert (policy.failures_in_a_row, policy.refresh_retries) == (0, 1)
    policy.attempt_started()
    again = policy.succeeded(now=2.5, granted_expires=3.0)  # the path came back
    assert (again.registrar, again.refresh) == (SIP1, True)
    assert policy.registered_at == 0.0 and policy.refresh_retries == 0


def test_a_refresh_failing_too_late_for_a_retry_moves_on_at_the_expiry() -> None:
    policy = RegistrationPolicy([SIP1, SIP2, SIP3], retry_interval=0.5)
    refreshing(policy)
    nxt = policy.failed(now=2.7, reason="timeout")
    assert (nxt.registrar, nxt.at, nxt.refresh) == (SIP2, 3.0, False)
    assert policy.state is RegState.REGISTERING and policy.registered(now=2.9)
    assert policy.failures_in_a_row == 1
    policy.attempt_started()
    assert policy.failed(now=3.4, reason="timeout").registrar == SIP3


def test_broken_rule_a_failed_refresh_moves_on_at_once() -> None:
    policy = RegistrationPolicy([SIP1, SIP2], retry_interval=0.5, keep_until_expiry=False)
    refreshing(policy)
    nxt = policy.failed(now=1.9, reason="timeout")
    assert (nxt.registrar, nxt.at) == (SIP2, 1.9)


def test_policy_waits_the_retry_interval_after_every_registrar_failed() -> None:
    policy = RegistrationPolicy([SIP1, SIP2], retry_interval=5.0)
    policy.start(now=0.0)
    policy.failed(now=1.0, reason="503")
    round_over = policy.failed(now=2.0, reason="503")
    assert (round_over.registrar, round_over.at) == (SIP1, 7.0)


def test_policy_rejects_an_unlisted_transition() -> None:
    policy = RegistrationPolicy([SIP1])
    with pytest.raises(RegistrationStateError, match="unregistered"):
        policy.succeeded(now=0.0, granted_expires=1.0)


def test_registrar_entry_parses_name_and_loopback_endpoint() -> None:
    assert RegistrarEntry.parse("sip3=127.0.2.1:5060") == RegistrarEntry(
        "sip3", Endpoint("127.0.2.1", 5060)
    )
    for bad in ("127.0.0.1:5060", "sip1=10.0.0.1:5060", "sip1=127.0.0.1"):
        with pytest.raises(ValueError):
            RegistrarEntry.parse(bad)


@asynccontextmanager
async def two_registrars() -> AsyncIterator[tuple[RegistrarService, RegistrarService]]:
    scale = TimeScale(0.05)
    async with (
        RegistrarService(name="sip1", scale=scale) as sip1,
        RegistrarService(name="sip3", scale=scale) as sip3,
    ):
        yield sip1, sip3


async def test_softphone_fails_over_to_the_next_registrar_when_a_refresh_times_out() -> None:
    log, records = capture_log()
    async with two_registrars() as (sip1, sip3):
        config = phone_config([("sip1", sip1.bound), ("sip3", sip3.bound)])
        async with Softphone(config, log) as phone:
            await eventually(lambda: phone.status()["registered"])
            assert phone.status()["registrar"] == "sip1"
            loop = asyncio.get_running_loop()
            assert sip1.registrar.lookup("7002", loop.time())
            sip1.answering = False  # the node goes silent (a black-holed path)
            cut_at = loop.time()
            await eventually(lambda: bool(sip3.registrar.lookup("7002", loop.time())))
            failover_took = loop.time() - cut_at
            # sip3 binds before its 200 reaches the phone: wait for the phone to read it
            await eventually(lambda: phone.status()["registration"]["state"] != "registering")
            status = phone.status()
            assert status["registrar"] == "sip3"
            assert status["registration"]["state"] in ("registered", "refreshing")
            # one refresh interval (1.5 s scaled) + timer F (64 * T1 = 1.6 s scaled), with slack
            assert failover_took < 1.5 + 1.6 + 2.0
    failed = records.records("sip.register.failed")
    assert failed and failed[0]["registrar"] == "sip1" and failed[0]["next_registrar"] == "sip3"
    assert "Timeout" in failed[0]["reason"]
    (failover,) = records.records("sip.register.failover")
    assert (failover["previous"], failover["registrar"]) == ("sip1", "sip3")


async def test_softphone_stays_put_when_the_path_returns_before_the_next_refresh() -> None:
    log, records = capture_log()
    async with two_registrars() as (sip1, sip3):
        config = phone_config([("sip1", sip1.bound), ("sip3", sip3.bound)])
        async with Softphone(config, log) as phone:
            registered: list[str] = []
            phone.events.on("registered", registered.append)
            await eventually(lambda: len(registered) == 1)
            sip1.answering = False  # right after a successful REGISTER ...
            await asyncio.sleep(0.3)  # ... a short outage, well inside the 1.5 s refresh interval
            sip1.answering = True
            await eventually(lambda: len(registered) >= 3)  # two refreshes later
            assert set(registered) == {"sip1"}
            assert phone.status()["registrar"] == "sip1"
            assert sip3.registers_answered == 0
    assert records.records("sip.register.failed") == []
    assert all(r["registrar"] == "sip1" for r in records.records("sip.register"))


async def test_softphone_stays_put_when_the_path_returns_across_a_failed_refresh() -> None:
    log, records = capture_log()
    async with two_registrars() as (sip1, sip3):
        # refresh at 1.5 s scaled, timeout 0.4 s, retry every 0.5 s, expiry 3 s
        config = phone_config([("sip1", sip1.bound), ("sip3", sip3.bound)], register_timeout=8.0)
        async with Softphone(config, log) as phone:
            registered: list[str] = []
            phone.events.on("registered", registered.append)
            await eventually(lambda: len(registered) == 1)
            sip1.answering = False  # silent across the refresh, back before the expiry
            await asyncio.sleep(2.1)
            sip1.answering = True
            await eventually(lambda: len(registered) >= 2)
            assert phone.status()["registrar"] == "sip1" and phone.status()["registered"]
            assert sip3.registers_answered == 0
    assert {r["registrar"] for r in records.records("sip.register.failed")} == {"sip1"}
    assert records.records("sip.register.failover") == []
    sent = records.records("sip.register.sent")
    assert [r["refresh"] for r in sent[:3]] == [False, True, True]


async def test_softphone_registers_further_down_the_list_when_the_first_never_answers() -> None:
    log, records = capture_log()
    async with two_registrars() as (sip1, sip3):
        sip1.answering = False
        config = phone_config([("sip1", sip1.bound), ("sip3", sip3.bound)])
        async with Softphone(config, log) as phone:
            await eventually(lambda: phone.status()["registered"])
            assert phone.status()["registrar"] == "sip3"
            assert phone.status()["registration"]["failures_in_a_row"] == 0
    assert [r["registrar"] for r in records.records("sip.register.failed")] == ["sip1"]


async def test_a_cut_dc_is_skipped_at_the_registration_expiry_with_a_register_timeout() -> None:
    log, records = capture_log()
    scale = TimeScale(0.05)
    async with (
        RegistrarService(name="sip1", scale=scale) as sip1,
        RegistrarService(name="sip2", scale=scale) as sip2,
        RegistrarService(name="sip3", scale=scale) as sip3,
    ):
        config = phone_config(
            [("sip1", sip1.bound), ("sip2", sip2.bound), ("sip3", sip3.bound)],
            register_timeout=8.0,  # 0.4 s scaled, instead of timer F's 1.6 s
        )
        async with Softphone(config, log) as phone:
            await eventually(
                lambda: phone.status()["registrar"] == "sip1" and phone.status()["registered"]
            )
            loop = asyncio.get_running_loop()
            sip1.answering = sip2.answering = False  # the phone's DC1 link is cut
            cut_at = loop.time()
            await eventually(lambda: bool(sip3.registrar.lookup("7002", loop.time())))
            took = loop.time() - cut_at
    # sip1's refresh (at most 1.5 s after the cut) is retried every 0.5 s (the retry interval,
    # scaled) until the 3 s expiry, then sip2 times out (0.4 s): at most 3 + 0.4 s, with slack
    assert took < 3.0 + 0.4 + 1.5
    failed = [r["registrar"] for r in records.records("sip.register.failed")]
    assert failed[-1] == "sip2" and set(failed[:-1]) == {"sip1"} and len(failed) >= 2


async def stop_registered_phone(silence_registrar: bool) -> tuple[float, dict[str, Any], bool]:
    """Register at sip1, optionally silence it, stop the phone: how long the stop took, the
    phone's ``sip.unregister`` record, and whether sip1 still holds a binding afterwards."""
    log, records = capture_log()
    async with two_registrars() as (sip1, sip3):
        config = phone_config([("sip1", sip1.bound), ("sip3", sip3.bound)])
        loop = asyncio.get_running_loop()
        async with Softphone(config, log) as phone:
            await eventually(lambda: phone.status()["registered"])
            assert sip1.registrar.lookup("7002", loop.time())
            sip1.answering = not silence_registrar
            stopping_at = loop.time()
        took = loop.time() - stopping_at
        still_bound = bool(sip1.registrar.lookup("7002", loop.time()))
    (unregister,) = records.records("sip.unregister")
    return took, unregister, still_bound


async def test_stopping_a_registered_softphone_unregisters_it_at_once() -> None:
    _, unregister, still_bound = await stop_registered_phone(silence_registrar=False)
    # the binding is gone now, not at expiry (3 s scaled)
    assert not still_bound
    assert (unregister["registrar"], unregister["status"]) == ("sip1", 200)


async def test_a_softphone_stops_promptly_when_its_registrar_no_longer_answers() -> None:
    took, unregister, _ = await stop_registered_phone(silence_registrar=True)
    # the unregister waits 2 s scaled (0.1 s), not timer F (1.6 s)
    assert took < 1.0
    assert unregister["registrar"] == "sip1" and "Timeout" in unregister["status"]
