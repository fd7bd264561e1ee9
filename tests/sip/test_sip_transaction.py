"""Transaction state machines driven by explicit times: no clock, no sockets."""

from __future__ import annotations

import pytest

from emulator.common.timescale import TimeScale
from emulator.sip.builder import make_request, make_response
from emulator.sip.errors import TransactionStateError
from emulator.sip.message import Request, Response
from emulator.sip.transaction import (
    TRANSITIONS,
    AckReceived,
    ClientTransaction,
    Event,
    Kind,
    Output,
    ResponseReceived,
    ServerTransaction,
    State,
    TimedOut,
    TimerConfig,
    Transmit,
    server_key,
)

UDP = TimerConfig(t1=0.5, t2=4.0, t4=5.0)
TCP = UDP.for_transport(reliable=True)


def request(method: str, branch: str = "z9hG4bKt1") -> Request:
    return make_request(
        method,
        "sip:7002@127.0.0.1",
        via=f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch}",
        from_="<sip:a@127.0.0.1>;tag=f",
        to="<sip:7002@127.0.0.1>",
        call_id="c@h",
        cseq=1,
        contact="<sip:a@127.0.0.1:5070>",
    )


def response(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="t")


def transmits(outputs: list[Output]) -> list[object]:
    return [o.message for o in outputs if isinstance(o, Transmit)]


def retransmission_times(txn: ClientTransaction | ServerTransaction, until: float) -> list[float]:
    """Step the clock from deadline to deadline and record when a message is (re)sent."""
    times: list[float] = []
    while (deadline := txn.next_deadline()) is not None and deadline <= until:
        if transmits(txn.on_time(deadline)):
            times.append(round(deadline, 6))
    return times


def test_non_invite_client_retransmits_on_timer_e_doubling_to_t2_then_times_out_on_f() -> None:
    txn = ClientTransaction(request("REGISTER"), UDP, now=100.0)
    assert transmits(txn.start()) == [txn.request]
    times = retransmission_times(txn, until=131.0)
    assert times[:6] == [100.5, 101.5, 103.5, 107.5, 111.5, 115.5]
    assert txn.state is State.TRYING
    outputs = txn.on_time(132.0)  # timer F = 64*T1 = 32 s after the first send
    assert TimedOut(Event.TIMER_F) in outputs
    assert txn.state is State.TERMINATED
    assert txn.next_deadline() is None


def test_non_invite_client_keeps_retransmitting_at_t2_after_a_provisional() -> None:
    txn = ClientTransaction(request("BYE"), UDP, now=0.0)
    txn.start()
    txn.on_time(0.5)
    outputs = txn.receive(response(txn.request, 100), now=0.6)
    assert [type(o) for o in outputs] == [ResponseReceived]
    assert txn.state is State.PROCEEDING
    assert retransmission_times(txn, until=9.0) == [4.6, 8.6]


def test_non_invite_client_completes_on_final_and_absorbs_retransmissions_until_timer_k() -> None:
    txn = ClientTransaction(request("OPTIONS"), UDP, now=0.0)
    txn.start()
    ok = response(txn.request, 200)
    assert txn.receive(ok, now=0.1) == [ResponseReceived(ok)]
    assert txn.state is State.COMPLETED
    assert txn.receive(ok, now=0.2) == []  # absorbed
    assert txn.next_deadline() == pytest.approx(5.1)  # timer K = T4
    txn.on_time(5.1)
    assert txn.state is State.TERMINATED


def test_client_over_tcp_never_retransmits_and_ends_at_once() -> None:
    txn = ClientTransaction(request("REGISTER"), TCP, now=0.0)
    txn.start()
    assert txn.next_deadline() == pytest.approx(32.0)  # only timer F
    txn.receive(response(txn.request, 200), now=1.0)
    assert txn.next_deadline() == pytest.approx(1.0)  # timer K = 0 on reliable transports
    txn.on_time(1.0)
    assert txn.terminated


def test_invite_client_retransmits_on_timer_a_and_times_out_on_timer_b() -> None:
    txn = ClientTransaction(request("INVITE"), UDP, now=0.0)
    assert txn.state is State.CALLING
    txn.start()
    assert retransmission_times(txn, until=31.9) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert TimedOut(Event.TIMER_B) in txn.on_time(32.0)
    assert txn.terminated


def test_invite_client_stops_retransmitting_on_a_provisional() -> None:
    txn = ClientTransaction(request("INVITE"), UDP, now=0.0)
    txn.start()
    txn.receive(response(txn.request, 180), now=0.2)
    assert txn.state is State.PROCEEDING
    assert txn.next_deadline() is None


def test_invite_client_acks_a_failure_itself_and_reacks_retransmissions() -> None:
    txn = ClientTransaction(request("INVITE"), UDP, now=0.0)
    txn.start()
    busy = response(txn.request, 486)
    outputs = txn.receive(busy, now=0.3)
    acks = transmits(outputs)
    assert len(acks) == 1
    ack = acks[0]
    assert isinstance(ack, Request)
    assert ack.method == "ACK" and ack.branch == txn.request.branch
    assert ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.to_tag == "t"
    assert txn.state is State.COMPLETED
    assert transmits(txn.receive(busy, now=0.4)) == [ack]
    txn.on_time(0.3 + 32.0)  # timer D
    assert txn.terminated


def test_invite_client_passes_2xx_and_its_retransmissions_to_the_tu() -> None:
    txn = ClientTransaction(request("INVITE"), UDP, now=0.0)
    txn.start()
    ok = response(txn.request, 200)
    assert txn.receive(ok, now=0.1) == [ResponseReceived(ok)]
    assert txn.state is State.ACCEPTED
    assert txn.receive(ok, now=0.6) == [ResponseReceived(ok)]
    txn.on_time(0.1 + 32.0)  # timer M
    assert txn.terminated


def test_non_invite_server_answers_retransmissions_with_the_last_response_until_timer_j() -> None:
    req = request("BYE")
    txn = ServerTransaction(req, UDP, now=0.0)
    assert txn.state is State.TRYING
    assert txn.receive(req, now=0.1) == []  # nothing to resend yet
    ok = response(req, 200)
    assert transmits(txn.respond(ok, now=0.2)) == [ok]
    assert transmits(txn.receive(req, now=0.7)) == [ok]
    txn.on_time(0.2 + 32.0)  # timer J = 64*T1
    assert txn.terminated


def test_invite_server_retransmits_2xx_until_the_ack_arrives() -> None:
    req = request("INVITE")
    txn = ServerTransaction(req, UDP, now=0.0)
    txn.respond(response(req, 180), now=0.0)
    ok = response(req, 200)
    txn.respond(ok, now=1.0)
    assert txn.state is State.ACCEPTED
    assert retransmission_times(txn, until=4.0) == [1.5, 2.5]
    ack = make_request(
        "ACK",
        req.uri,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother",
        from_=req.header("From") or "",
        to=ok.header("To") or "",
        call_id=req.call_id,
        cseq=1,
    )
    assert txn.receive(ack, now=3.0) == [AckReceived(ack)]
    assert txn.terminated


def test_invite_server_gives_up_when_the_2xx_is_never_acked() -> None:
    req = request("INVITE")
    txn = ServerTransaction(req, UDP, now=0.0)
    txn.respond(response(req, 200), now=0.0)
    retransmission_times(txn, until=31.9)
    assert TimedOut(Event.TIMER_L) in txn.on_time(32.0)
    assert txn.terminated


def test_invite_server_failure_is_retransmitted_until_ack_then_confirmed_until_timer_i() -> None:
    req = request("INVITE")
    txn = ServerTransaction(req, UDP, now=0.0)
    busy = response(req, 486)
    txn.respond(busy, now=0.0)
    assert transmits(txn.receive(req, now=0.1)) == [busy]  # a re-sent INVITE
    assert retransmission_times(txn, until=1.6) == [0.5, 1.5]
    ack = make_request(
        "ACK",
        req.uri,
        via=req.header("Via") or "",
        from_=req.header("From") or "",
        to=busy.header("To") or "",
        call_id=req.call_id,
        cseq=1,
    )
    assert txn.receive(ack, now=2.0) == []
    assert txn.state is State.CONFIRMED
    txn.on_time(7.0)  # timer I = T4
    assert txn.terminated


def test_invite_server_times_out_on_timer_h_without_ack() -> None:
    req = request("INVITE")
    txn = ServerTransaction(req, UDP, now=0.0)
    txn.respond(response(req, 603), now=0.0)
    retransmission_times(txn, until=31.9)
    assert TimedOut(Event.TIMER_H) in txn.on_time(32.0)


def test_unlisted_transition_is_an_error_naming_state_and_event() -> None:
    req = request("OPTIONS")
    txn = ServerTransaction(req, UDP, now=0.0)
    txn.respond(response(req, 200), now=0.0)
    with pytest.raises(TransactionStateError, match=r"completed.*2xx"):
        txn.respond(response(req, 200), now=0.1)


def test_transition_table_covers_every_kind() -> None:
    kinds = {kind for kind, _, _ in TRANSITIONS}
    assert kinds == set(Kind)


def test_timers_scale_with_the_lab_time_scale() -> None:
    scaled = TimeScale(0.1).scaled(UDP)
    assert scaled.t1 == pytest.approx(0.05)
    assert scaled.timeout == pytest.approx(3.2)
    txn = ClientTransaction(request("REGISTER"), scaled, now=0.0)
    txn.start()
    assert txn.next_deadline() == pytest.approx(0.05)


def test_ack_matches_the_invite_server_transaction_key() -> None:
    invite = request("INVITE")
    ack = make_request(
        "ACK",
        invite.uri,
        via=invite.header("Via") or "",
        from_="<sip:a@h>;tag=f",
        to="<sip:b@h>;tag=t",
        call_id="c@h",
        cseq=1,
    )
    assert server_key(ack) == server_key(invite)
