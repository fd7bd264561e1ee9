"""The expectations an outcome can state (``expect: {kind: ...}``), each checked by observation.

A check looks at the lab now and answers ``Verdict(ok, detail)``; the runner polls it until it
holds or its deadline passes, so the detail of the last look is what a failure reports. Nothing
here decides a verdict without looking: an outcome whose evidence the lab cannot give (media
in a lab without the PSTN gateway, a softphone's registration without the softphone) fails with
"not observable: why".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from clients.wwe import CONNECTION_LOST, UNABLE_TO_CONNECT, VOICE_UNAVAILABLE, VoiceChanged
from emulator.lab.engine.errors import LabError
from emulator.lab.scenarios.model import Expect
from emulator.lab.scenarios.observer import Observer

MESSAGES = {
    "CONNECTION_LOST": CONNECTION_LOST,
    "UNABLE_TO_CONNECT": UNABLE_TO_CONNECT,
    "VOICE_UNAVAILABLE": VOICE_UNAVAILABLE,
}
NOT_OBSERVABLE = "not observable: "


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


Check = Callable[[Observer, Expect], Awaitable[Verdict]]


def _agents(expect: Expect) -> list[str]:
    value = expect.params.get("agents", expect.params.get("agent"))
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


async def wwe_message(obs: Observer, expect: Expect) -> Verdict:
    text = str(expect.params["text"])
    text = MESSAGES.get(text, text)
    since = obs.since(expect.params.get("since"))
    missing, shown = [], []
    for agent in _agents(expect):
        messages = obs.desk(agent).since(since, "message")
        if any(text in message for message in messages):
            shown.append(agent)
        else:
            missing.append(f"{agent} showed {messages[-3:] or 'nothing'}")
    if expect.params.get("absent"):
        if shown:
            return Verdict(False, f"{', '.join(shown)} showed {text!r}")
        return Verdict(True, f"none of {', '.join(_agents(expect))} showed {text!r}")
    if missing:
        return Verdict(False, f"{text!r} not shown: " + "; ".join(missing))
    return Verdict(True, f"{', '.join(shown)} showed {text!r}")


async def wwe_connection(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    client = obs.desk(agent).client
    state = str(client.connection) if client else "no desktop"
    return Verdict(state == expect.params["state"], f"{agent}'s desktop is {state}")


async def wwe_node(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    client = obs.desk(agent).client
    node = client.node if client and str(client.connection) == "connected" else None
    if node is None:
        return Verdict(False, f"{agent}'s desktop has no session")
    wanted_node = expect.params.get("node")
    wanted_dc = expect.params.get("dc")
    ok = (wanted_node in (None, node)) and (wanted_dc in (None, obs.lab.dc_of(node)))
    return Verdict(ok, f"{agent}'s session is on {node} ({obs.lab.dc_of(node)})")


async def wwe_voice(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    client = obs.desk(agent).client
    if client is None:
        return Verdict(False, f"{agent} has no desktop")
    voice = client.voice
    ok = expect.params.get("logged_in", voice.logged_in) == voice.logged_in
    ok = ok and expect.params.get("available", voice.available) == voice.available
    return Verdict(ok, f"{agent}: {voice.describe()}")


async def wwe_call(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    call = obs.calls.get(str(expect.params["call"]))
    client = obs.desk(agent).client
    if call is None or client is None:
        return Verdict(False, f"no such call or no desktop for {agent}")
    shown = client.calls.get(call.conn_id)
    wanted_shown = bool(expect.params.get("shown", True))
    ok = (shown is not None) == wanted_shown
    if ok and shown is not None and "state" in expect.params:
        ok = str(shown.state) == str(expect.params["state"])
    seen = shown.describe() if shown else "not shown"
    return Verdict(ok, f"{agent}'s desktop: {call.name} {seen}")


async def wwe_voice_history(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    since = obs.since(expect.params.get("since"))
    changes: list[VoiceChanged] = obs.desk(agent).since(since, "voice")
    logouts = sum(1 for c in changes if c.old.logged_in and not c.new.logged_in)
    logins = sum(1 for c in changes if not c.old.logged_in and c.new.logged_in)
    unavailable = sum(1 for c in changes if c.old.available and not c.new.available)
    ok = True
    if "logged_out" in expect.params:
        ok = ok and (logouts > 0) == bool(expect.params["logged_out"])
    if "logins_at_least" in expect.params:
        ok = ok and logins >= int(expect.params["logins_at_least"])
    if expect.params.get("unavailable"):
        ok = ok and unavailable > 0
    return Verdict(
        ok,
        f"{agent} since {expect.params.get('since', 'fault')}: {logouts} logout(s), "
        f"{logins} login(s), {unavailable} time(s) unavailable",
    )


async def action(obs: Observer, expect: Expect) -> Verdict:
    label = str(expect.params["label"])
    result = obs.results.get(label)
    if result is None:
        return Verdict(False, f"step {label!r} has not run")
    ok = result.ok == expect.params.get("ok", True)
    if "error_code" in expect.params:
        ok = ok and result.error_code == int(expect.params["error_code"])
    return Verdict(ok, f"{label}: {result.detail}")


async def login(obs: Observer, expect: Expect) -> Verdict:
    label = str(expect.params["label"])
    result = obs.results.get(label)
    outcome = result.login if result else None
    if result is None or outcome is None:
        return Verdict(False, f"{label}: {result.detail if result else 'log-on has not run'}")
    ok = True
    if "call_reported" in expect.params:
        call = obs.calls.get(str(expect.params["call_reported"]))
        ok = call is not None and call.conn_id in [c.id for c in outcome.calls]
    if "rejected_code" in expect.params:
        code = outcome.rejected.code if outcome.rejected else None
        ok = ok and code == int(expect.params["rejected_code"])
    if "logged_in" in expect.params:
        ok = ok and outcome.voice.logged_in == expect.params["logged_in"]
    return Verdict(ok, f"{label}: {result.detail}")


async def owner(obs: Observer, expect: Expect) -> Verdict:
    dn = obs.desk(_agents(expect)[0]).setup.dn
    wanted = str(expect.params["node"])
    states = await obs.lab.node_states()
    seen_by = expect.params.get("seen_by") or list(states)
    views = {
        node: states[node].get("ownership", {}).get(dn, {}).get("owner")
        for node in seen_by
        if node in states
    }
    ok = bool(views) and all(view == wanted for view in views.values())
    shown = ", ".join(f"{node} says {view}" for node, view in views.items()) or "no node answers"
    return Verdict(ok, f"owner of {dn}: {shown}")


async def agent_on_node(obs: Observer, expect: Expect) -> Verdict:
    dn = obs.desk(_agents(expect)[0]).setup.dn
    node = str(expect.params["node"])
    state = (await obs.lab.node_states()).get(node)
    if state is None:
        return Verdict(False, f"{node} does not answer")
    owned = state.get("owned", {}).get(dn)
    desktop = state.get("desktops", {}).get(dn, {})
    dn_status = (owned or desktop).get("DNStatus", "InService")
    if owned is not None:
        logged_in = owned.get("AgentState", "LoggedOut") != "LoggedOut"
        seen = f"{node} owns {dn}: agent {owned.get('AgentState')}, {dn_status}"
    else:
        # A desktop node that lost the owner counts the agent as logged out there (DESIGN §2.2).
        logged_in = bool(desktop) and dn_status != "OutOfService"
        seen = (
            f"{node} (desktop node of {dn}): {dn_status}"
            if desktop
            else f"{node}: no desktop of {dn}"
        )
    ok = expect.params.get("logged_in", logged_in) == logged_in
    ok = ok and expect.params.get("dn_status", dn_status) == dn_status
    return Verdict(ok, seen)


async def node_call(obs: Observer, expect: Expect) -> Verdict:
    call = obs.calls.get(str(expect.params["call"]))
    if call is None:
        return Verdict(False, "the call was never placed")
    state = (await obs.lab.node_states()).get(call.node)
    if state is None:
        return Verdict(False, f"{call.node} does not answer")
    hosted = next((c for c in state.get("calls", []) if c.get("ConnID") == call.conn_id), None)
    present = hosted is not None
    parties = ", ".join(f"{p['address']} {p['state']}" for p in hosted["parties"]) if hosted else ""
    ok = present == expect.params.get("present", True)
    where = f"{call.name} ({call.conn_id}) on {call.node}"
    return Verdict(ok, f"{where}: {parties}" if present else f"{where}: gone")


async def log(obs: Observer, expect: Expect) -> Verdict:
    service, event = str(expect.params["service"]), str(expect.params["event"])
    fields = {str(k): str(v) for k, v in (expect.params.get("fields") or {}).items()}
    since = obs.since(expect.params.get("since"))
    until = obs.marks.get(str(expect.params.get("until")), float("inf"))
    matches = [
        entry
        for entry in obs.log_entries(service, event, since)
        if all(str(entry.get(k)) == v for k, v in fields.items()) and float(entry["ts"]) < until
    ]
    wanted = f"{service} {event} {fields or ''}".rstrip()
    if expect.params.get("absent"):
        return Verdict(not matches, f"{len(matches)} x {wanted}" if matches else f"no {wanted}")
    return Verdict(bool(matches), f"{wanted} {'logged' if matches else 'not logged'}")


async def media(obs: Observer, expect: Expect) -> Verdict:
    """Media as the phones measure it (``GET /calls`` of the PSTN gateway and the softphones,
    matched to the call by the ConnID the node gave each leg): "talking" is every leg — the
    customer's at the gateway and the agent's phone — with RTP both ways, no gap over 1 s and
    not lost; "lost" is a leg that ended lost (RTP loss, or its 2xx never ACKed)."""
    reports, why = await obs.media_reports()
    if reports is None:
        return Verdict(False, NOT_OBSERVABLE + why)
    verdict = str(expect.params["verdict"])
    details, ok = [], True
    for name in expect.params["calls"]:
        call = obs.calls.get(str(name))
        legs = [
            r
            for r in reports
            if call and r.get("conn_id") == call.conn_id and isinstance(r.get("media"), dict)
        ]
        if call is None or len(legs) < 2:
            where = f" ({call.conn_id})" if call else ""
            return Verdict(False, f"{name}{where}: {len(legs)} of its 2 legs reported by a phone")
        shown = []
        for leg in legs:
            talking = bool(leg["media"].get("talking"))
            shown.append(
                f"{leg['phone']} {leg.get('direction')} {'talking' if talking else 'not talking'}, "
                f"longest gap "
                f"{leg['media'].get('longest_gap_ms')} ms"
                + (f", lost ({leg.get('end_reason')})" if leg.get("lost") else "")
            )
        if verdict == "talking":
            ok = ok and all(leg["media"].get("talking") and not leg.get("lost") for leg in legs)
        else:
            ok = ok and any(leg.get("lost") for leg in legs)
        details.append(f"{name}: " + "; ".join(shown))
    return Verdict(ok, " | ".join(details))


async def best_practice(obs: Observer, expect: Expect) -> Verdict:
    """Flags agents whose call, DN owner and desktop are not in one DC (seed: S3 summary)."""
    states = await obs.lab.node_states()
    flagged: dict[str, list[str]] = {}
    for name, desk in obs.desks.items():
        desktop_node = desk.setup.gws
        desktop_dc = obs.lab.dc_of(desktop_node)
        reasons = []
        owners = {
            s.get("ownership", {}).get(desk.setup.dn, {}).get("owner") for s in states.values()
        }
        for owner_node in sorted(o for o in owners if o):
            if obs.lab.dc_of(owner_node) != desktop_dc:
                reasons.append(f"owner {owner_node} is not in the desktop's {desktop_dc}")
        for call in obs.calls.values():
            if call.agent == name and obs.lab.dc_of(call.node) != desktop_dc:
                reasons.append(f"{call.name} on {call.node} is not in the desktop's {desktop_dc}")
        if reasons:
            flagged[name] = reasons
    wanted = sorted(str(a) for a in expect.params["violated_by"])
    obs.best_practice = flagged
    shown = "; ".join(f"{a}: {', '.join(r)}" for a, r in flagged.items()) or "none"
    return Verdict(sorted(flagged) == wanted, f"best practices not followed by: {shown}")


async def report(obs: Observer, expect: Expect) -> Verdict:
    """G.2: the run has a timeline with faults and events, and a verdict for every outcome."""
    faults = obs.log_entries_any("lab.jsonl", "fault.", obs.marks["start"])
    pending = [oid for oid, verdict in obs.verdicts.items() if verdict not in ("pass", "fail")]
    ok = bool(faults) and not pending
    return Verdict(
        ok,
        f"timeline has {len(faults)} fault entries; {len(obs.verdicts)} outcomes with a verdict"
        + (f"; pending {pending}" if pending else ""),
    )


async def phone_registration(obs: Observer, expect: Expect) -> Verdict:
    """Where the agent's softphone is registered, as the nodes' registrars and the softphone say."""
    dn = obs.desk(_agents(expect)[0]).setup.dn
    phone = obs.lab.phone_of(dn)
    if phone is None or phone == obs.lab.pstn():
        return Verdict(False, NOT_OBSERVABLE + f"no softphone of {dn} in the lab")
    states = await obs.lab.node_states()
    at = sorted(
        node
        for node, s in states.items()
        if any(b.get("DN") == dn for b in s.get("sip", {}).get("registrations") or [])
    )
    try:
        status = await obs.lab.get_json(f"http://{obs.lab.endpoint(phone, 'http')}/status")
    except (aiohttp.ClientError, TimeoutError, ValueError, LabError) as exc:
        return Verdict(False, f"{phone} does not answer: {exc}")
    registrar = status.get("registrar") if status.get("registered") else None
    wanted = str(expect.params["node"])
    return Verdict(
        at == [wanted] and registrar == wanted,
        f"{dn} registered at {', '.join(at) or 'no node'} (nodes); {phone} says "
        + (f"registered at {registrar}" if registrar else "not registered"),
    )


async def all_of(obs: Observer, expect: Expect) -> Verdict:
    verdicts = [await CHECKS[child.kind](obs, child) for child in expect.children]
    details = [v.detail for v in verdicts]
    # What cannot be observed leads the detail: the verdict is "fail" for that reason first.
    details.sort(key=lambda detail: not detail.startswith(NOT_OBSERVABLE))
    return Verdict(all(v.ok for v in verdicts), "; ".join(details))


CHECKS: dict[str, Check] = {
    "wwe_message": wwe_message,
    "wwe_connection": wwe_connection,
    "wwe_node": wwe_node,
    "wwe_voice": wwe_voice,
    "wwe_call": wwe_call,
    "wwe_voice_history": wwe_voice_history,
    "action": action,
    "login": login,
    "owner": owner,
    "agent_on_node": agent_on_node,
    "node_call": node_call,
    "log": log,
    "media": media,
    "best_practice": best_practice,
    "report": report,
    "phone_registration": phone_registration,
    "all": all_of,
}


def uses(expect: Expect, kind: str) -> bool:
    return expect.kind == kind or any(uses(child, kind) for child in expect.children)


__all__ = ["CHECKS", "NOT_OBSERVABLE", "Any", "Verdict", "uses"]
