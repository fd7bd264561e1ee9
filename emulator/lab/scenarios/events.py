"""Observed events with their times: what a timed claim is measured between.

A timed claim of the guide ("SIP Server waits for 30 seconds, logs the agent out, and moves the
ownership", "If not recovered after 1 minute", "immediately moves the ownership", ACW) is checked
as the interval between two events the lab observed, never as a deadline. An event is one of:

- ``{log: SERVICE, event: NAME, fields: {K: V}}`` — a line of a service's JSON log;
- ``{mark: NAME}`` — a mark the run set (``mark:`` steps, ``fault``, a ``wait_acw_over`` step's
  ``acw-over:AGENT``);
- ``{desk: AGENT, shows: TEXT}`` — a message the agent's desktop showed (``CONNECTION_LOST``,
  ``UNABLE_TO_CONNECT``, ``VOICE_UNAVAILABLE`` or any text);
- ``{desk: AGENT, voice: logged_in|logged_out|unavailable|available}`` — a change of the
  desktop's voice channel;
- ``{desk: AGENT, call: CALL, state: STATE}`` — a call notification on the desktop.

Each may carry ``since: MARK``: its first occurrence at or after that mark counts (default: the
outcome's ``since``, else the fault). Times are wall-clock seconds, the clock every service's
log and the run's own records share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clients.wwe import CONNECTION_LOST, UNABLE_TO_CONNECT, VOICE_UNAVAILABLE, VoiceChanged
from emulator.lab.scenarios.schema_reader import Reader
from emulator.lab.scenarios.yamlnodes import LocatedMap

if TYPE_CHECKING:
    from emulator.lab.scenarios.observer import Observer

MESSAGES = {
    "CONNECTION_LOST": CONNECTION_LOST,
    "UNABLE_TO_CONNECT": UNABLE_TO_CONNECT,
    "VOICE_UNAVAILABLE": VOICE_UNAVAILABLE,
}
VOICE_CHANGES = ("logged_in", "logged_out", "unavailable", "available")
CALL_STATES = ("Dialing", "Ringing", "Established", "Held", "Released", "Completed")


@dataclass(frozen=True)
class EventSpec:
    kind: str  # log | mark | shows | voice | call
    subject: str  # the service, mark or agent
    what: str = ""  # the log event, message text, voice change or call name
    state: str = ""  # the call state (call)
    fields: Mapping[str, str] = field(default_factory=dict)
    since: str | None = None

    def describe(self) -> str:
        if self.kind == "log":
            shown = " ".join(f"{k}={v}" for k, v in self.fields.items())
            return f"{self.subject} {self.what}" + (f" {shown}" if shown else "")
        if self.kind == "mark":
            return f"mark {self.subject}"
        if self.kind == "call":
            return f"{self.subject}'s desktop shows {self.what} {self.state}"
        if self.kind == "voice":
            return f"{self.subject}'s voice channel {self.what.replace('_', ' ')}"
        return f"{self.subject} shows {self.what[:40]!r}"


def read_event(
    r: Reader, body: LocatedMap, where: str, agents: Mapping[str, Any], calls: Mapping[str, Any]
) -> EventSpec:
    """One event of an interval, validated with its line."""
    since = r.text(body, "since", where) if "since" in body else None
    if "log" in body:
        r.keys(body, where, {"log", "event"}, {"fields", "since"})
        if r.services:
            r.names(body, "log", where, r.services)
        fields = body.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise r.fail(body.line_of("fields"), f"{where}.fields", "must be a mapping")
        return EventSpec(
            "log",
            r.text(body, "log", where),
            r.text(body, "event", where),
            fields={str(k): str(v) for k, v in fields.items()},
            since=since,
        )
    if "mark" in body:
        r.keys(body, where, {"mark"}, set())
        return EventSpec("mark", r.text(body, "mark", where))
    if "desk" in body:
        agent = r.text(body, "desk", where, agents)
        if "shows" in body:
            r.keys(body, where, {"desk", "shows"}, {"since"})
            text = r.text(body, "shows", where)
            return EventSpec("shows", agent, MESSAGES.get(text, text), since=since)
        if "voice" in body:
            r.keys(body, where, {"desk", "voice"}, {"since"})
            return EventSpec(
                "voice", agent, r.text(body, "voice", where, VOICE_CHANGES), since=since
            )
        r.keys(body, where, {"desk", "call", "state"}, {"since"})
        call = r.text(body, "call", where, calls)
        state = r.text(body, "state", where, CALL_STATES)
        return EventSpec("call", agent, call, state, since=since)
    raise r.fail(body.line, where, "an event is {log: ...}, {mark: ...} or {desk: AGENT, ...}")


def occurrences(obs: Observer, spec: EventSpec, since: float) -> list[float]:
    """The times the event was observed at or after ``since``, in order."""
    if spec.kind == "mark":
        ts = obs.marks.get(spec.subject)
        return [ts] if ts is not None else []
    if spec.kind == "log":
        return [
            float(entry["ts"])
            for entry in obs.log_entries(spec.subject, spec.what, since)
            if all(str(entry.get(k)) == v for k, v in spec.fields.items())
        ]
    history = obs.desk(spec.subject).history
    if spec.kind == "shows":
        return [
            s.ts for s in history if s.kind == "message" and spec.what in s.value and s.ts >= since
        ]
    if spec.kind == "voice":
        return [
            s.ts
            for s in history
            if s.kind == "voice" and s.ts >= since and voice_change_is(s.value, spec.what)
        ]
    record = obs.calls.get(spec.what)
    if record is None:
        return []
    return [
        s.ts
        for s in history
        if s.kind == "call"
        and s.ts >= since
        and s.value.id == record.conn_id
        and str(s.value.state) == spec.state
    ]


def voice_change_is(change: VoiceChanged, what: str) -> bool:
    old, new = change.old, change.new
    return {
        "logged_in": not old.logged_in and new.logged_in,
        "logged_out": old.logged_in and not new.logged_in,
        "unavailable": old.available and not new.available,
        "available": not old.available and new.available,
    }[what]


def first(obs: Observer, spec: EventSpec, default_since: float) -> float | None:
    since = obs.marks.get(spec.since, default_since) if spec.since else default_since
    found = occurrences(obs, spec, since)
    return found[0] if found else None
