"""The softphone's registration loop: ``RegistrationPolicy`` decisions carried out over SIP.

Sends REGISTER (RFC 3261 §10.2: one Call-ID per registrar, CSeq incremented on every refresh,
Contact with our bound address, Expires in deployment seconds), reads the granted expiry from
the 200 (§10.2.4: our Contact's ``expires`` parameter, else Expires), retries once with
Min-Expires after a 423, and reports each outcome as a log line and an event. Stopping a
registered phone unregisters it (§10.2.2: Expires 0 for our Contact), so the cluster hears at
once that the phone is gone, as it would from a real phone switched off, instead of at expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.softphone.config import SoftphoneConfig
from clients.softphone.registration_core import RegistrarEntry, RegistrationPolicy
from emulator.common.jsonlog import JsonLog
from emulator.sip.builder import make_request, new_call_id, new_tag
from emulator.sip.errors import SipError, SipProtocolError, TransactionTimeout
from emulator.sip.headers import NameAddr
from emulator.sip.message import Response
from emulator.sip.ua import UserAgent

Emit = Callable[..., Any]

# How long a stopping phone waits for the answer to its unregister (deployment seconds, scaled):
# a switched-off phone does not wait for a registrar that has gone silent.
UNREGISTER_DEADLINE = 2.0


@dataclass
class _Dialogue:
    """Per-registrar REGISTER identity: the same Call-ID and From tag for every refresh."""

    call_id: str
    from_tag: str
    cseq: int = 0


class Registering:
    def __init__(self, config: SoftphoneConfig, ua: UserAgent, log: JsonLog, emit: Emit) -> None:
        self.config = config
        self.ua = ua
        self.log = log
        self.emit = emit
        self.policy = RegistrationPolicy(
            list(config.registrars),
            refresh_ratio=config.refresh_ratio,
            retry_interval=config.scale(config.retry_interval),
            keep_until_expiry=not config.break_refresh_kept_until_expiry,
        )
        self.registrations_sent = 0
        self._dialogues: dict[str, _Dialogue] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    def start(self) -> None:
        if self.config.break_refresh_kept_until_expiry:
            self.log.warning("rules.broken", rules=["refresh-kept-until-expiry"])
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop refreshing; a phone still registered unregisters at its registrar."""
        registrar = self.policy.current
        registered = self.policy.registered(self._loop.time())
        self.policy.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if registered:
            await self._unregister(registrar)

    async def _unregister(self, registrar: RegistrarEntry) -> None:
        deadline = min(self.config.register_deadline, self.config.scale(UNREGISTER_DEADLINE))
        status: int | str
        try:
            status = (await self._send(registrar, 0, deadline)).status
        except (SipError, OSError) as error:
            status = _describe(error)
        self.log.event("sip.unregister", registrar=registrar.name, DN=self.config.dn, status=status)
        self.emit("unregistered", registrar.name)

    def status(self) -> dict[str, Any]:
        now = self._loop.time()
        policy = self.policy
        scale = self.config.scale.factor

        def remaining(at: float | None) -> float | None:
            return None if at is None else round(max(0.0, at - now) / scale, 3)

        return {
            "state": policy.state.value,
            "registrar": policy.current.name,
            "registrar_endpoint": str(policy.current.endpoint),
            "registered": policy.registered(now),
            "expires_in": remaining(policy.expires_at),
            "refresh_in": remaining(policy.refresh_at),
            "failures_in_a_row": policy.failures_in_a_row,
            "refresh_retries": policy.refresh_retries,
            "last_failure": policy.last_failure,
            "registrations_sent": self.registrations_sent,
        }

    async def _run(self) -> None:
        attempt = self.policy.start(self._loop.time())
        while True:
            delay = attempt.at - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.policy.attempt_started()
            registrar = attempt.registrar
            self.log.event(
                "sip.register.sent",
                registrar=registrar.name,
                DN=self.config.dn,
                refresh=attempt.refresh,
            )
            try:
                granted = await self._register(registrar)
            except (SipError, OSError) as error:
                reason = _describe(error)
                attempt = self.policy.failed(self._loop.time(), reason)
                self.log.warning(
                    "sip.register.failed",
                    registrar=registrar.name,
                    DN=self.config.dn,
                    reason=reason,
                    next_registrar=attempt.registrar.name,
                )
                self.emit("registration_failed", registrar.name, reason)
                if attempt.registrar != registrar:
                    self.log.event(
                        "sip.register.failover",
                        DN=self.config.dn,
                        previous=registrar.name,
                        registrar=attempt.registrar.name,
                    )
                continue
            refresh = attempt.refresh
            attempt = self.policy.succeeded(self._loop.time(), self.config.scale(granted))
            self.log.event(
                "sip.register",
                registrar=registrar.name,
                DN=self.config.dn,
                expires=granted,
                refresh=refresh,
            )
            self.emit("registered", registrar.name)

    async def _register(self, registrar: RegistrarEntry) -> int:
        """One REGISTER transaction (two after a 423); returns the granted expiry."""
        expires = self.config.expires
        for _ in range(2):
            response = await self._send(registrar, expires)
            if response.status == 423:
                minimum = response.header("Min-Expires") or ""
                if minimum.isdigit() and int(minimum) > expires:
                    expires = int(minimum)
                    continue
            if not response.is_success:
                raise SipProtocolError(
                    f"{response.status} {response.reason}", status_code=response.status
                )
            # A grant of 0 would mean "refresh at once" forever: treat it as one second.
            return max(1, self._granted(response, expires))
        raise SipProtocolError("423 Interval Too Brief twice", status_code=423)

    async def _send(
        self, registrar: RegistrarEntry, expires: int, deadline: float | None = None
    ) -> Response:
        dialogue = self._dialogues.setdefault(
            registrar.name, _Dialogue(new_call_id(self.ua.transport.bound.host), new_tag())
        )
        dialogue.cseq += 1
        host = registrar.endpoint.host
        aor = f"<sip:{self.config.dn}@{host}>"
        request = make_request(
            "REGISTER",
            f"sip:{registrar.endpoint}",
            via=self.ua.via(),
            from_=f"{aor};tag={dialogue.from_tag}",
            to=aor,
            call_id=dialogue.call_id,
            cseq=dialogue.cseq,
            contact=self.ua.contact(self.config.dn),
            headers=[
                ("Expires", str(expires)),
                ("User-Agent", f"drlab-softphone/{self.config.name}"),
            ],
        )
        self.registrations_sent += 1
        deadline = self.config.register_deadline if deadline is None else deadline
        try:
            async with asyncio.timeout(deadline):
                return await self.ua.request(request, registrar.endpoint)
        except TimeoutError:
            raise TransactionTimeout(f"REGISTER unanswered for {deadline:.3g} s") from None

    def _granted(self, response: Response, requested: int) -> int:
        ours = NameAddr.parse(self.ua.contact(self.config.dn)).uri
        for value in response.headers.get_all("Contact"):
            try:
                contact = NameAddr.parse(value)
            except SipProtocolError:
                continue
            expires = contact.param("expires")
            if contact.uri == ours and expires is not None and expires.isdigit():
                return int(expires)
        header = response.header("Expires") or ""
        return int(header) if header.isdigit() else requested


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if type(error).__name__ not in text else text
