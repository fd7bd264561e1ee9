"""Registrar binding table, SDP offer/answer and dialogs of the sans-I/O SIP core."""

from __future__ import annotations

import pytest

from emulator.common.addresses import Endpoint
from emulator.common.timescale import TimeScale
from emulator.sip.builder import make_request, make_response
from emulator.sip.dialog import Dialog
from emulator.sip.errors import SdpError
from emulator.sip.message import Request
from emulator.sip.parser import parse_datagram
from emulator.sip.registrar_core import Registrar
from emulator.sip.sdp import PCMU, AudioSession, answer_to, parse_sdp


def register(
    expires: int | None = 60,
    *,
    contact: str = "<sip:7002@127.0.0.1:5062>",
    call_id: str = "reg-1@h",
    cseq: int = 1,
) -> Request:
    headers = [("Expires", str(expires))] if expires is not None else []
    return make_request(
        "REGISTER",
        "sip:127.0.0.1:5060",
        via="SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKr",
        from_="<sip:7002@127.0.0.1>;tag=a",
        to="<sip:7002@127.0.0.1>",
        call_id=call_id,
        cseq=cseq,
        contact=contact,
        headers=headers,
    )


def test_register_creates_a_binding_and_answers_200_with_the_contact() -> None:
    registrar = Registrar()
    outcome = registrar.process(register(), now=10.0, source=Endpoint("127.0.0.1", 5062))
    assert outcome.response.status == 200
    assert outcome.response.to_tag
    assert outcome.response.header("Contact") == "<sip:7002@127.0.0.1:5062>;expires=60"
    assert outcome.aor == "7002"
    assert outcome.is_new
    (binding,) = registrar.lookup("7002", now=10.0)
    assert binding.expires_at == pytest.approx(70.0)
    assert binding.source == Endpoint("127.0.0.1", 5062)


def test_binding_expires_unless_refreshed() -> None:
    registrar = Registrar()
    registrar.process(register(60), now=0.0)
    assert registrar.next_expiry() == pytest.approx(60.0)
    assert registrar.expire(now=59.0) == []
    refreshed = registrar.process(register(60, cseq=2), now=30.0)
    assert not refreshed.is_new
    assert refreshed.added[0].refreshes == 1
    assert registrar.expire(now=61.0) == []
    (gone,) = registrar.expire(now=90.0)
    assert gone.aor == "7002"
    assert registrar.lookup("7002", now=90.0) == ()


def test_expiry_is_scaled_by_the_lab_time_scale() -> None:
    registrar = Registrar(scale=TimeScale(0.05))
    outcome = registrar.process(register(60), now=0.0)
    assert outcome.added[0].expires_at == pytest.approx(3.0)
    assert outcome.response.header("Contact") == "<sip:7002@127.0.0.1:5062>;expires=60"
    assert registrar.lookup("7002", now=2.9)
    assert not registrar.lookup("7002", now=3.0)


def test_expires_zero_and_contact_star_remove_bindings() -> None:
    registrar = Registrar()
    registrar.process(register(60), now=0.0)
    removed = registrar.process(register(0, cseq=2), now=1.0)
    assert removed.response.status == 200 and len(removed.removed) == 1
    assert registrar.lookup("7002", now=1.0) == ()
    registrar.process(register(60, cseq=3), now=2.0)
    star = registrar.process(register(0, contact="*", cseq=4), now=3.0)
    assert star.response.status == 200 and len(star.removed) == 1
    assert registrar.all_bindings() == ()


def test_contact_star_without_expires_zero_is_400() -> None:
    outcome = Registrar().process(register(60, contact="*"), now=0.0)
    assert outcome.response.status == 400


def test_too_brief_expiry_is_423_with_min_expires() -> None:
    outcome = Registrar(min_expires=30).process(register(5), now=0.0)
    assert outcome.response.status == 423
    assert outcome.response.header("Min-Expires") == "30"


def test_out_of_order_refresh_is_refused() -> None:
    registrar = Registrar()
    registrar.process(register(60, cseq=5), now=0.0)
    assert registrar.process(register(60, cseq=5), now=1.0).response.status == 500


def test_contact_expires_parameter_wins_over_header_and_default_applies_without_either() -> None:
    registrar = Registrar(default_expires=120)
    outcome = registrar.process(register(60, contact="<sip:7002@h:1>;expires=30"), now=0.0)
    assert outcome.added[0].expires == 30
    outcome = registrar.process(register(None, contact="<sip:7002@h:2>"), now=0.0)
    assert outcome.added[0].expires == 120


def test_bad_expires_is_400() -> None:
    request = register(60)
    bad = request.with_headers(request.headers.replace("Expires", "soon"))
    assert Registrar().process(bad, now=0.0).response.status == 400


SIPP_SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_sdp_offer_from_sipp_is_understood_and_answered_with_pcmu() -> None:
    offer = parse_sdp(SIPP_SDP)
    assert (offer.address, offer.port, offer.payload_types) == ("127.0.0.1", 6000, (PCMU,))
    answer = answer_to(offer, "127.0.0.2", 7000)
    again = parse_sdp(answer.to_bytes())
    assert (again.address, again.port, again.payload_types) == ("127.0.0.2", 7000, (PCMU,))


def test_media_level_connection_overrides_session_level() -> None:
    body = SIPP_SDP + b"c=IN IP4 127.0.0.9\r\n"
    assert parse_sdp(body).address == "127.0.0.9"


@pytest.mark.parametrize(
    "body",
    [
        b"v=0\r\nc=IN IP4 127.0.0.1\r\n",
        b"v=0\r\nm=audio 6000 RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
        b"\xff\xfe",
    ],
)
def test_unusable_sdp_is_488(body: bytes) -> None:
    with pytest.raises(SdpError) as caught:
        parse_sdp(body)
    assert caught.value.status_code == 488


def test_answer_refuses_an_offer_without_pcmu() -> None:
    with pytest.raises(SdpError, match="PCMU"):
        answer_to(AudioSession("127.0.0.1", 6000, (8, 18)), "127.0.0.1", 7000)


def test_dialogs_on_both_sides_agree_and_build_ack_and_bye() -> None:
    invite = make_request(
        "INVITE",
        "sip:7002@127.0.0.1:5062",
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi",
        from_="<sip:cust@127.0.0.1>;tag=caller",
        to="<sip:7002@127.0.0.1>",
        call_id="d@h",
        cseq=10,
        contact="<sip:cust@127.0.0.1:5070>",
    )
    ok = make_response(
        invite, 200, to_tag="callee", headers=[("Contact", "<sip:7002@127.0.0.1:5062>")]
    )
    uac = Dialog.as_uac(invite, ok)
    uas = Dialog.as_uas(invite, ok)
    assert uac.id == ("d@h", "caller", "callee")
    assert uas.id == ("d@h", "callee", "caller")
    ack = uac.ack(10, via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa")
    assert ack.uri == "sip:7002@127.0.0.1:5062"
    assert ack.cseq.number == 10 and ack.cseq.method == "ACK"
    uac, bye = uac.request("BYE", via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb")
    assert bye.cseq.number == 11 and uac.local_cseq == 11
    parsed = parse_datagram(bye.to_bytes())
    assert isinstance(parsed, Request)
    assert uas.accepts(parsed)
    assert parsed.uri == "sip:7002@127.0.0.1:5062"
    uas, bye_back = uas.request("BYE", via="SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKc")
    assert bye_back.uri == "sip:cust@127.0.0.1:5070"
    assert bye_back.from_tag == "callee" and bye_back.to_tag == "caller"
