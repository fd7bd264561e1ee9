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

from clients.wwe import VoiceChanged
from emulator.lab.errors import LabError
from emulator.lab.scenarios.events import MESSAGES, EventSpec, first, occurrences
from emulator.lab.scenarios.model import Expect
from emulator.lab.scenarios.observer import Observer
from emulator.lab.scenarios.vocabulary import Vocabulary

NOT_OBSERVABLE = "not observable: "
WWE_STATES = ("connected", "reconnecting", "gave-up", "logged-out")
MEDIA_VERDICTS = ("talking", "lost")
# Wall-clock slack of a measured interval, on top of the claim's own tolerance: two processes'
# log times and the run's polling (every 50 ms) put this much noise on any observed instant.
REAL_SLACK = 0.3


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


Check = Callable[[Observer, Expect], Awaitable[Verdict]]
EXPECTS: Vocabulary[Check] = Vocabulary("expectation kind")


def _agents(expect: Expect) -> list[str]:
    value = expect.params.get("agents", expect.params.get("agent"))
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@EXPECTS.word("wwe_message", required={"agents", "text"}, optional={"since", "absent"})
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


@EXPECTS.word("wwe_connection", required={"agent", "state"}, choices={"state": WWE_STATES})
async def wwe_connection(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    client = obs.desk(agent).client
    state = str(client.connection) if client else "no desktop"
    return Verdict(state == expect.params["state"], f"{agent}'s desktop is {state}")


@EXPECTS.word("wwe_node", required={"agent"}, optional={"node", "dc"})
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


@EXPECTS.word("wwe_voice", required={"agent"}, optional={"logged_in", "available"})
async def wwe_voice(obs: Observer, expect: Expect) -> Verdict:
    agent = _agents(expect)[0]
    client = obs.desk(agent).client
    if client is None:
        return Verdict(False, f"{agent} has no desktop")
    voice = client.voice
    ok = expect.params.get("logged_in", voice.logged_in) == voice.logged_in
    ok = ok and expect.params.get("available", voice.available) == voice.available
    return Verdict(ok, f"{agent}: {voice.describe()}")


@EXPECTS.word("wwe_call", required={"agent", "call"}, optional={"shown", "state"})
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


@EXPECTS.word(
    "wwe_voice_history",
    required={"agent"},
    optional={"since", "logged_out", "logins_at_least", "unavailable"},
)
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


@EXPECTS.word("action", required={"label"}, optional={"ok", "error_code", "refused_by_server"})
async def action(obs: Observer, expect: Expect) -> Verdict:
    """A step's outcome as the event that proved it said (``actions``): done, an EventError
    with its code, or a server's refusal (``refused_by_server``: an HTTP answer from the lab,
    not the desktop declining to send)."""
    label = str(expect.params["label"])
    result = obs.results.get(label)
    if result is None:
        return Verdict(False, f"step {label!r} has not run")
    ok = result.ok == expect.params.get("ok", True)
    if "error_code" in expect.params:
        ok = ok and result.error_code == int(expect.params["error_code"])
    if "refused_by_server" in expect.params:
        ok = ok and (result.http_status is not None) == bool(expect.params["refused_by_server"])
    return Verdict(ok, f"{label}: {result.detail}")


@EXPECTS.word("login", required={"label"}, optional={"call_reported", "rejected_code", "logged_in"})
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


@EXPECTS.word("owner", required={"agent", "node"}, optional={"seen_by"})
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


@EXPECTS.word("agent_on_node", required={"agent", "node"}, optional={"logged_in", "dn_status"})
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


@EXPECTS.word("node_call", required={"call"}, optional={"present", "shown_to"})
async def node_call(obs: Observer, expect: Expect) -> Verdict:
    """The call as its call node hosts it; ``shown_to``: the agents whose desktops show it."""
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
    detail = f"{where}: {parties}" if present else f"{where}: gone"
    for agent in expect.params.get("shown_to") or []:
        client = obs.desk(str(agent)).client
        shown = client is not None and call.conn_id in client.calls
        ok = ok and shown
        detail += f"; {agent}'s desktop {'shows' if shown else 'does not show'} it"
    return Verdict(ok, detail)


@EXPECTS.word(
    "log",
    required={"service", "event"},
    optional={"fields", "absent", "since", "until", "call"},
)
async def log(obs: Observer, expect: Expect) -> Verdict:
    """A service's log line (``call``: its ConnID is that call's), between ``since`` and
    ``until`` (marks; an ``until`` mark not set yet is now)."""
    fields = {str(k): str(v) for k, v in (expect.params.get("fields") or {}).items()}
    if "call" in expect.params:
        call = obs.calls.get(str(expect.params["call"]))
        if call is None:
            return Verdict(False, f"{expect.params['call']} was never placed")
        fields["ConnID"] = call.conn_id
    spec = EventSpec(
        "log", str(expect.params["service"]), str(expect.params["event"]), fields=fields
    )
    since = obs.since(expect.params.get("since"))
    until = obs.marks.get(str(expect.params.get("until")), float("inf"))
    matches = [ts for ts in occurrences(obs, spec, since) if ts < until]
    wanted = spec.describe()
    if expect.params.get("absent"):
        return Verdict(not matches, f"{len(matches)} x {wanted}" if matches else f"no {wanted}")
    return Verdict(bool(matches), f"{wanted} {'logged' if matches else 'not logged'}")


@EXPECTS.word("media", required={"calls", "verdict"}, choices={"verdict": MEDIA_VERDICTS})
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


@EXPECTS.word("best_practice", required={"violated_by"})
async def best_practice(obs: Observer, expect: Expect) -> Verdict:
    """Flags agents whose call, DN owner and desktop are not in one DC (seed: S3 summary), from
    what the lab shows now: the GWS node serving the agent's desktop session, the owner every
    node reports, and the node hosting each call with the agent's DN — not the scenario's setup."""
    states = await obs.lab.node_states()
    flagged: dict[str, list[str]] = {}
    for name, desk in obs.desks.items():
        dn = desk.setup.dn
        desktop_node = desk.client.node if desk.client else None
        if desktop_node is None:
            flagged[name] = ["no desktop session to compare with"]
            continue
        desktop_dc = obs.lab.dc_of(desktop_node)
        reasons = []
        owners = {s.get("ownership", {}).get(dn, {}).get("owner") for s in states.values()}
        for owner_node in sorted(o for o in owners if o):
            if obs.lab.dc_of(owner_node) != desktop_dc:
                reasons.append(f"owner {owner_node} is not in {desktop_node}'s {desktop_dc}")
        for node, state in sorted(states.items()):
            for call in state.get("calls", []):
                hosted_dn = any(p.get("address") == dn for p in call.get("parties", []))
                if hosted_dn and obs.lab.dc_of(node) != desktop_dc:
                    conn_id = call.get("ConnID")
                    reasons.append(
                        f"call {conn_id} on {node} is not in {desktop_node}'s {desktop_dc}"
                    )
        if reasons:
            flagged[name] = reasons
    wanted = sorted(str(a) for a in expect.params["violated_by"])
    obs.best_practice = flagged
    shown = "; ".join(f"{a}: {', '.join(r)}" for a, r in flagged.items()) or "none"
    return Verdict(sorted(flagged) == wanted, f"best practices not followed by: {shown}")


@EXPECTS.word(
    "interval",
    required={"from", "to"},
    optional={"seconds", "tolerance", "at_most", "at_least", "since"},
)
async def interval(obs: Observer, expect: Expect) -> Verdict:
    """A timed claim, measured: the lab seconds from the ``from`` event (the latest of a list)
    to the first ``to`` event (all of a list), against ``seconds`` ± ``tolerance``, or
    ``at_most``/``at_least``. A ``to`` that came before ``from`` measures negative: an
    "only after" claim broken. The bound widens by ``REAL_SLACK`` wall seconds (scaled to lab
    seconds), the noise of observing two instants; the detail gives the measure and the bound."""
    params = expect.params
    since = obs.since(params.get("since"))
    starts = [(spec, first(obs, spec, since)) for spec in params["from"]]
    ends = [(spec, first(obs, spec, since)) for spec in params["to"]]
    missing = [spec.describe() for spec, ts in (*starts, *ends) if ts is None]
    if missing:
        return Verdict(False, f"not observed (yet): {'; '.join(missing)}")
    start = max(ts for _, ts in starts if ts is not None)
    end = max(ts for _, ts in ends if ts is not None)
    measured = (end - start) / obs.scale
    slack = REAL_SLACK / obs.scale
    low, high = float("-inf"), float("inf")
    if "seconds" in params:
        tolerance = float(params.get("tolerance", 0.0)) + slack
        low = float(params["seconds"]) - tolerance
        high = float(params["seconds"]) + tolerance
        bound = f"{params['seconds']} ± {tolerance:.1f} lab s"
    else:
        parts = []
        if "at_least" in params:
            low = float(params["at_least"]) - slack
            parts.append(f">= {low:.1f}")
        if "at_most" in params:
            high = float(params["at_most"]) + slack
            parts.append(f"<= {high:.1f}")
        bound = " and ".join(parts) + " lab s"
    start_spec = max(starts, key=lambda item: item[1] or 0.0)[0]
    end_spec = max(ends, key=lambda item: item[1] or 0.0)[0]
    return Verdict(
        low <= measured <= high,
        f"{start_spec.describe()} -> {end_spec.describe()}: {measured:.1f} lab s "
        f"({end - start:.3f} s), bound {bound}",
    )


@EXPECTS.word(
    "logouts",
    required={"agent"},
    optional={"since", "until", "at_least", "at_most", "reasons"},
)
async def logouts(obs: Observer, expect: Expect) -> Verdict:
    """The times a server logged the agent out (``agent.logout`` of any SIP node for its DN, with
    the rule that did it as ``reason``), never a desktop's own refresh. ``reasons``: every logout
    must be explained by one of them, and each of them must have happened."""
    dn = obs.desk(_agents(expect)[0]).setup.dn
    since = obs.since(expect.params.get("since"))
    until = obs.marks.get(str(expect.params.get("until")), float("inf"))
    seen = sorted(
        (float(entry["ts"]), node, str(entry.get("reason")))
        for node in obs.lab.sip_nodes()
        for entry in obs.log_entries(node, "agent.logout", since)
        if entry.get("DN") == dn and float(entry["ts"]) < until
    )
    count = len(seen)
    ok = count >= int(expect.params.get("at_least", 0))
    if "at_most" in expect.params:
        ok = ok and count <= int(expect.params["at_most"])
    reasons = [str(r) for r in expect.params.get("reasons") or []]
    unexplained = [
        f"{node} {reason}" for _, node, reason in seen if reasons and reason not in reasons
    ]
    absent = [r for r in reasons if all(reason != r for _, _, reason in seen)]
    ok = ok and not unexplained and not absent
    shown = ", ".join(
        f"{node} {reason} at +{(ts - since) / obs.scale:.1f} lab s" for ts, node, reason in seen
    )
    detail = f"{count} server logout(s) of {dn}: {shown or 'none'}"
    if unexplained:
        detail += f"; not explained by {reasons}: {unexplained}"
    if absent:
        detail += f"; no logout for {absent}"
    return Verdict(ok, detail)


@EXPECTS.word("report")
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


@EXPECTS.word("phone_registration", required={"agent", "node"})
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


@EXPECTS.word("all", required={"of"})
async def all_of(obs: Observer, expect: Expect) -> Verdict:
    verdicts = [await check(obs, child) for child in expect.children]
    details = [v.detail for v in verdicts]
    # What cannot be observed leads the detail: the verdict is "fail" for that reason first.
    details.sort(key=lambda detail: not detail.startswith(NOT_OBSERVABLE))
    return Verdict(all(v.ok for v in verdicts), "; ".join(details))


async def check(obs: Observer, expect: Expect) -> Verdict:
    """Look once at what ``expect`` states."""
    return await EXPECTS[expect.kind].handler(obs, expect)


def uses(expect: Expect, kind: str) -> bool:
    return expect.kind == kind or any(uses(child, kind) for child in expect.children)


__all__ = ["EXPECTS", "NOT_OBSERVABLE", "Any", "Verdict", "check", "uses"]
