"""The voice operations of a WWE desktop: every ``/workspace/v3/voice`` request, one method each.

Bodies are those genesys-workspace-client-js builds (``{"data": {...}}``; user data as
``[{key, type, value}]``, built by the same codec GWS reads them with). Each request is only
*accepted* by GWS: its outcome arrives as notifications (a call's new state, an EventError), which
the desktop shows. ``WweClient`` provides ``_request``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.wwe.errors import UsageError
from emulator.gws.voice_messages import kvlist

# A desktop's user data: key -> text, number, or a nested mapping.
UserDataMap = Mapping[str, Any]


def user_data(data: UserDataMap) -> list[dict[str, Any]]:
    """``{"Disposition": "Sale"}`` as the Workspace API's ``[{key, type, value}]``."""

    def pairs(mapping: UserDataMap) -> tuple[tuple[str, Any], ...]:
        return tuple(
            (key, pairs(value) if isinstance(value, Mapping) else value)
            for key, value in mapping.items()
        )

    return kvlist(pairs(data))


class VoiceOperations:
    """Mixed into ``WweClient``: the requests; ``_request`` sends them on the session."""

    async def _request(
        self, method: str, path: str, data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    # --- the DN ------------------------------------------------------------------------------

    async def ready(self) -> None:
        await self._request("POST", "/voice/ready")

    async def not_ready(self, work_mode: str | None = None, reason_code: str | None = None) -> None:
        data = {"agentWorkMode": work_mode, "reasonCode": reason_code}
        await self._request(
            "POST", "/voice/not-ready", {k: v for k, v in data.items() if v} or None
        )

    async def agent_login(self) -> None:
        """Log the agent in again on the voice channel (``voice/login``)."""
        await self._request("POST", "/voice/login")

    async def agent_logout(self) -> None:
        await self._request("POST", "/voice/logout")

    async def dnd(self, on: bool) -> None:
        await self._request("POST", "/voice/dnd-on" if on else "/voice/dnd-off")

    async def forward(self, destination: str | None) -> None:
        """Forward the DN's calls to ``destination``; None cancels forwarding."""
        if destination is None:
            await self._request("POST", "/voice/cancel-forward")
        else:
            await self._request("POST", "/voice/set-forward", {"forwardTo": destination})

    async def make_call(self, destination: str, data: UserDataMap | None = None) -> None:
        body: dict[str, Any] = {"destination": destination}
        if data:
            body["userData"] = user_data(data)
        await self._request("POST", "/voice/make-call", body)

    async def send_user_event(self, data: UserDataMap, call_uuid: str | None = None) -> None:
        body: dict[str, Any] = {"userData": user_data(data)}
        if call_uuid:
            body["callUuid"] = call_uuid
        await self._request("POST", "/voice/send-user-event", body)

    async def start_monitoring(self, dn: str, mode: str = "Mute") -> None:
        await self._request(
            "POST",
            "/voice/start-monitoring",
            {"phoneNumberToMonitor": dn, "monitoringMode": mode},
        )

    async def stop_monitoring(self, dn: str) -> None:
        await self._request("POST", "/voice/stop-monitoring", {"phoneNumber": dn})

    # --- one call ----------------------------------------------------------------------------

    async def call_request(
        self, call_id: str, action: str, data: Mapping[str, Any] | None = None
    ) -> None:
        # The server decides whether the call exists: the desktop's list may be stale.
        if not call_id or "/" in call_id:
            raise UsageError(f"{call_id!r} is not a call id")
        await self._request("POST", f"/voice/calls/{call_id}/{action}", data)

    async def answer(self, call_id: str) -> None:
        await self.call_request(call_id, "answer")

    async def release(self, call_id: str) -> None:
        await self.call_request(call_id, "release")

    async def hold(self, call_id: str) -> None:
        await self.call_request(call_id, "hold")

    async def retrieve(self, call_id: str) -> None:
        await self.call_request(call_id, "retrieve")

    async def clear(self, call_id: str) -> None:
        await self.call_request(call_id, "clear")

    async def complete(self, call_id: str) -> None:
        """Mark a released call done (after-call work is over for it)."""
        await self.call_request(call_id, "complete")

    async def redirect(self, call_id: str, destination: str) -> None:
        await self.call_request(call_id, "redirect", {"destination": destination})

    async def transfer(
        self, call_id: str, destination: str, data: UserDataMap | None = None
    ) -> None:
        """Single-step (blind) transfer."""
        await self.call_request(call_id, "single-step-transfer", _to(destination, data))

    async def initiate_transfer(
        self, call_id: str, destination: str, data: UserDataMap | None = None
    ) -> None:
        await self.call_request(call_id, "initiate-transfer", _to(destination, data))

    async def complete_transfer(self, consult_id: str, parent_id: str) -> None:
        await self.call_request(consult_id, "complete-transfer", {"parentConnId": parent_id})

    async def conference(
        self, call_id: str, destination: str, data: UserDataMap | None = None
    ) -> None:
        """Single-step conference."""
        await self.call_request(call_id, "single-step-conference", _to(destination, data))

    async def initiate_conference(
        self, call_id: str, destination: str, data: UserDataMap | None = None
    ) -> None:
        await self.call_request(call_id, "initiate-conference", _to(destination, data))

    async def complete_conference(self, consult_id: str, parent_id: str) -> None:
        await self.call_request(consult_id, "complete-conference", {"parentConnId": parent_id})

    async def delete_from_conference(self, call_id: str, dn: str) -> None:
        await self.call_request(call_id, "delete-from-conference", {"dnToDrop": dn})

    async def alternate(self, call_id: str, held_id: str) -> None:
        await self.call_request(call_id, "alternate", {"heldConnId": held_id})

    async def reconnect(self, call_id: str, held_id: str) -> None:
        await self.call_request(call_id, "reconnect", {"heldConnId": held_id})

    async def merge(self, call_id: str, other_id: str) -> None:
        await self.call_request(call_id, "merge", {"otherConnId": other_id})

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        await self.call_request(call_id, "send-dtmf", {"dtmfDigits": digits})

    async def attach_data(self, call_id: str, data: UserDataMap) -> None:
        await self.call_request(call_id, "attach-user-data", {"userData": user_data(data)})

    async def update_data(self, call_id: str, data: UserDataMap) -> None:
        await self.call_request(call_id, "update-user-data", {"userData": user_data(data)})

    async def delete_data(self, call_id: str, key: str) -> None:
        await self.call_request(call_id, "delete-user-data-pair", {"key": key})

    async def recording(self, call_id: str, action: str) -> None:
        """``action``: start, stop, pause or resume."""
        if action not in ("start", "stop", "pause", "resume"):
            raise UsageError(f"recording action {action!r}: start, stop, pause or resume")
        await self.call_request(call_id, f"{action}-recording")

    async def monitoring_mode(self, call_id: str, mode: str) -> None:
        """``mode``: listen-in, coaching or barge-in."""
        if mode not in ("listen-in", "coaching", "barge-in"):
            raise UsageError(f"monitoring mode {mode!r}: listen-in, coaching or barge-in")
        await self.call_request(call_id, f"switch-to-{mode}")


def _to(destination: str, data: UserDataMap | None) -> dict[str, Any]:
    body: dict[str, Any] = {"destination": destination}
    if data:
        body["userData"] = user_data(data)
    return body
