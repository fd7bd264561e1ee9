"""The steps a scenario can take (``do:``): faults, agent and customer actions, waits.

Each action drives the lab the way a person or a failure would: faults through the relay and
the engine, agents through their WWE desktops (``clients.wwe``) via the DC proxies, customers
(the far end of a call) through the PSTN gateway's control API (``POST /calls {"to": DN, "node":
sipN}``: SIP and RTP through the relay), the agent's phone (the softphone, or the PSTN gateway's
agent number) answered through its control API as the agent would. Without a gateway in the lab
the call node's control endpoint places and answers calls (no media).

An agent request is done only when the event that proves it reaches the desktop *after* the
request was sent — a hold by ``CallStateChanged`` Held for that call, a retrieve by Established
after it, a login by the voice channel turning LoggedIn — or it failed with the EventError that
answered it; an earlier entry never counts. Its outcome is kept under the step's ``label``.

Each step is declared once, with its keys, by ``@STEPS.word``; the schema reads ``STEPS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from clients.wwe import AgentState, CallState, VoiceError, WweClient, WweError
from clients.wwe.client import LoginOutcome
from clients.wwe.errors import RequestFailed
from emulator.lab.errors import LabError
from emulator.lab.faults import CUT_MODES
from emulator.lab.scenarios.checks import check
from emulator.lab.scenarios.model import DCS
from emulator.lab.scenarios.observer import ActionResult, CallRecord, Observer, Seen, wait_until
from emulator.lab.scenarios.vocabulary import Vocabulary

ACW_PERIOD = 10.0  # the nodes' default after-call-work-period (lab seconds)
MIN_WAIT = 3.0  # a request on a loaded 2-core machine needs this long whatever the time scale
EXPECTED_CALL_STATE = {
    "answer": CallState.ESTABLISHED,
    "hold": CallState.HELD,
    "retrieve": CallState.ESTABLISHED,
    "release": CallState.RELEASED,
}
AGENT_REQUESTS = ("ready", "not_ready", "agent_login", "agent_logout")
CALL_REQUESTS = tuple(EXPECTED_CALL_STATE)
CUSTOMER_REQUESTS = ("answer", "release")
DESK_PHONE_REQUESTS = ("hold", "retrieve", "release")
PHONE_REQUESTS = ("register", "unregister")

Action = Callable[[Observer, Mapping[str, Any]], Awaitable[str]]
STEPS: Vocabulary[Action] = Vocabulary("action")
FAULTS = frozenset({"cut", "partition", "kill", "stop", "pause"})


@STEPS.word("cut", required={"links"}, optional={"mode"}, choices={"mode": CUT_MODES})
async def _cut(obs: Observer, p: Mapping[str, Any]) -> str:
    links = _list(p["links"])
    mode = str(p.get("mode", "reset"))
    await obs.lab.cut(links, mode)
    return f"cut {', '.join(links)} ({mode})"


@STEPS.word("heal", optional={"links"})
async def _heal(obs: Observer, p: Mapping[str, Any]) -> str:
    links = _list(p["links"]) if "links" in p else None
    await obs.lab.heal(links)
    return f"healed {', '.join(links) if links else 'every link'}"


@STEPS.word("partition", required={"dcs"}, optional={"mode"}, choices={"mode": CUT_MODES})
async def _partition(obs: Observer, p: Mapping[str, Any]) -> str:
    dc_a, dc_b = _list(p["dcs"])
    names = await obs.lab.partition(dc_a, dc_b, str(p.get("mode", "reset")))
    return f"partition {dc_a}/{dc_b}: cut {', '.join(names)}"


def _service_fault(verb: str) -> Action:
    async def act(obs: Observer, p: Mapping[str, Any]) -> str:
        await obs.lab.service_fault(verb, str(p["service"]))
        return f"{verb} {p['service']}"

    return act


for _verb in ("kill", "stop", "start", "pause", "resume"):
    STEPS.add(_verb, _service_fault(_verb), required={"service"})


@STEPS.word(
    "login",
    required={"agent", "dc"},
    optional={"gws", "label", "log_off_first"},
    choices={"dc": DCS},
)
async def _login(obs: Observer, p: Mapping[str, Any]) -> str:
    """Log on: the same page refreshed when it is on the same DC, else a new page on that DC
    (``log_off_first``: the agent logs off the old page, WWE's Log Off, before leaving it)."""
    agent, dc = str(p["agent"]), str(p["dc"])
    gws = str(p["gws"]) if "gws" in p else None
    desk = obs.desk(agent)
    client = desk.client
    try:
        if client is not None and gws is None and client.base_url == obs.lab.proxy_url(dc):
            outcome = await client.relogin()
        else:
            if client is not None and p.get("log_off_first"):
                await client.logout()
            client = await obs.open_desktop(agent, dc, gws)
            outcome = await client.login()
    except WweError as exc:
        _keep(obs, p, ActionResult(False, f"log-on failed: {exc.message}"))
        return f"{agent} log-on through {dc} failed: {exc.message}"
    result = _login_result(outcome)
    _keep(obs, p, result)
    return f"{agent} logged on {result.detail}"


@STEPS.word("wait_moved", required={"agent"}, optional={"label", "within", "since"})
async def _wait_moved(obs: Observer, p: Mapping[str, Any]) -> str:
    """Wait for the agent's desktop to move its session to another node by itself (the
    hand-off of scenario 2), since the mark ``since`` (default: the fault): no request is
    sent, the step only observes the page."""
    agent = str(p["agent"])
    client = obs.desk(agent).client
    if client is None:
        raise LabError(f"{agent} has no desktop open")
    timeout = obs.deadline(MIN_WAIT, float(p.get("within", 30.0)))
    since = obs.since(p.get("since"))

    async def moved() -> bool:
        return client.moved_at is not None and client.moved_at >= since

    if not await wait_until(moved, timeout):
        _keep(obs, p, ActionResult(False, "the desktop did not move its session"))
        return f"{agent}'s desktop did not move its session within {timeout:.1f} s"
    assert client.moved is not None
    result = _login_result(client.moved)
    _keep(obs, p, result)
    return f"{agent}'s desktop moved by itself {result.detail}"


def _login_result(outcome: LoginOutcome) -> ActionResult:
    rejected = outcome.rejected
    detail = (
        f"via {outcome.node}: {outcome.voice.describe()}; calls reported "
        f"{[c.id for c in outcome.calls] or 'none'}"
        + (f"; agent login rejected ({rejected.message})" if rejected else "")
    )
    code = rejected.code if rejected else None
    return ActionResult(rejected is None, detail, code, login=outcome)


@STEPS.word(
    "agent",
    required={"agent", "request"},
    optional={"label"},
    choices={"request": AGENT_REQUESTS},
)
async def _agent(obs: Observer, p: Mapping[str, Any]) -> str:
    agent, request = str(p["agent"]), str(p["request"])
    client = obs.client(agent)
    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "ready": client.ready,
        "not_ready": lambda: client.not_ready("AfterCallWork"),
        "agent_login": client.agent_login,
        "agent_logout": client.agent_logout,
    }
    # The voice channel change that proves the request (VoiceChanged after it was sent).
    proves: Callable[[Seen], bool] = {
        "ready": lambda seen: seen.value.new.agent_state is AgentState.READY,
        "not_ready": lambda seen: seen.value.new.agent_state is AgentState.NOT_READY,
        "agent_login": lambda seen: seen.value.new.logged_in and not seen.value.old.logged_in,
        "agent_logout": lambda seen: seen.value.old.logged_in and not seen.value.new.logged_in,
    }[request]
    result = await _request(obs, agent, client, calls[request], "voice", proves)
    _keep(obs, p, result)
    return f"{agent} {request}: {result.detail}"


@STEPS.word(
    "call_control",
    required={"agent", "call", "request"},
    optional={"label", "even_if_lost"},
    choices={"request": CALL_REQUESTS},
)
async def _call_control(obs: Observer, p: Mapping[str, Any]) -> str:
    """A call request from the agent's WWE. ``even_if_lost``: the agent clicks on a page that
    has lost its session, and the request goes out anyway (a server must refuse it)."""
    agent, call_name, request = str(p["agent"]), str(p["call"]), str(p["request"])
    call = obs.calls[call_name]
    client = obs.desk(agent).client
    state = EXPECTED_CALL_STATE[request]

    def proves(seen: Seen) -> bool:
        shown = seen.value
        # A resync's snapshot (CallRecovered) reports a state; it is not the event of a request.
        return (
            shown.id == call.conn_id
            and shown.state is state
            and (shown.notification != "CallRecovered")
        )

    if client is None:
        result = ActionResult(False, "no desktop open")
    else:
        send: Callable[[], Awaitable[None]] = (
            (lambda: client.click_anyway(call.conn_id, request))
            if p.get("even_if_lost") and str(client.connection) != "connected"
            else (lambda: getattr(client, request)(call.conn_id))
        )
        result = await _request(obs, agent, client, send, "call", proves)
    _keep(obs, p, result)
    return f"{agent} {request} {call_name}: {result.detail}"


async def _request(
    obs: Observer,
    agent: str,
    client: WweClient,
    send: Callable[[], Awaitable[None]],
    kind: str,
    proves: Callable[[Seen], bool],
) -> ActionResult:
    """Send a Workspace request and wait for its outcome: an event of ``kind`` that ``proves``
    it, seen on the desktop after the request was sent, or an EventError after it."""
    desk = obs.desk(agent)
    sent = time.time()

    def proof() -> Seen | None:
        return next(
            (
                seen
                for seen in desk.history
                if seen.ts >= sent and seen.kind == kind and proves(seen)
            ),
            None,
        )

    def error() -> VoiceError | None:
        return next(
            (seen.value for seen in desk.history if seen.ts >= sent and seen.kind == "error"),
            None,
        )

    try:
        await send()
    except RequestFailed as exc:
        return ActionResult(
            False,
            f"refused by the server: HTTP {exc.status}: {exc.message}",
            http_status=exc.status,
        )
    except WweError as exc:
        return ActionResult(False, f"refused: {exc.message}")
    try:
        await client.wait_until(
            lambda: proof() is not None or error() is not None, obs.deadline(MIN_WAIT, 5.0)
        )
    except TimeoutError:
        return ActionResult(False, f"accepted, but no {kind} event proved it")
    seen = proof()
    if seen is not None:
        return ActionResult(True, f"done: {seen.value.describe()}", confirmed_at=seen.ts)
    failure = error()
    assert failure is not None
    return ActionResult(False, f"EventError {failure.code}: {failure.text}", failure.code)


@STEPS.word(
    "desk_phone",
    required={"agent", "call", "request"},
    choices={"request": DESK_PHONE_REQUESTS},
)
async def _desk_phone(obs: Observer, p: Mapping[str, Any]) -> str:
    """The agent presses a button of its phone set, not of WWE: the call node applies it to the
    DN's party of the call (``POST /calls/{ConnID}/{request} {"party": DN}`` on the call node),
    whether or not any desktop can hear of it."""
    call = obs.calls[str(p["call"])]
    dn = obs.desk(str(p["agent"])).setup.dn
    request = str(p["request"])
    url = f"http://{obs.lab.endpoint(call.node, 'control')}/calls/{call.conn_id}/{request}"
    status, body = await obs.lab.post_json(url, {"party": dn})
    if status >= 300:
        raise LabError(f"{dn}'s phone could not {request} {call.name} on {call.node}: {body}")
    return f"{dn} presses {request} on its phone: {call.name} ({call.conn_id} on {call.node})"


@STEPS.word("customer", required={"call", "request"}, choices={"request": CUSTOMER_REQUESTS})
async def _customer(obs: Observer, p: Mapping[str, Any]) -> str:
    call = obs.calls[str(p["call"])]
    request = str(p["request"])
    pstn = obs.lab.pstn()
    if request == "release" and call.leg is not None and pstn is not None:
        url = f"http://{obs.lab.endpoint(pstn, 'http')}/calls/{call.leg}/release"
        status, body = await obs.lab.post_json(url, {})
        if status >= 300:
            raise LabError(f"customer release of {call.name} refused by {pstn}: {body}")
        return f"customer hangs up {call.name} ({call.conn_id}) at {pstn}"
    url = f"http://{obs.lab.endpoint(call.node, 'control')}/calls/{call.conn_id}/{request}"
    status, body = await obs.lab.post_json(url, {})
    if status >= 300:
        raise LabError(f"customer {request} on {call.name} refused by {call.node}: {body}")
    return f"customer {request}s {call.name} ({call.conn_id} on {call.node})"


async def place_call(obs: Observer, name: str, agent: str, node: str) -> CallRecord:
    """A customer calls the agent's DN at ``node``: through the PSTN gateway (SIP and RTP), the
    call's ConnID being what the node tells the gateway (``conn_id``); else at the node."""
    dn = obs.desk(agent).setup.dn
    caller = f"+1555000{len(obs.calls)}"
    pstn = obs.lab.pstn()
    if pstn is None:
        url = f"http://{obs.lab.endpoint(node, 'control')}/calls"
        status, body = await obs.lab.post_json(url, {"to": dn, "from": caller})
        if status != 201:
            raise LabError(f"{node} refused a call to {dn}: {body}")
        record = CallRecord(name, str(body["ConnID"]), node, agent)
    else:
        control = obs.lab.endpoint(pstn, "http")
        body = {"to": dn, "node": node, "from": caller}
        status, placed = await obs.lab.post_json(f"http://{control}/calls", body)
        if status != 201:
            raise LabError(f"{pstn} refused a call to {dn} at {node}: {placed}")
        leg = str(placed["id"])
        report = await _phone_call(obs, pstn, lambda r: r.get("id") == leg and r.get("conn_id"))
        if report is None:
            raise LabError(f"{node} never gave {pstn}'s call {leg} to {dn} a ConnID")
        record = CallRecord(name, str(report["conn_id"]), node, agent, leg)
    obs.calls[name] = record
    obs.log.event("scenario.call", call=name, ConnID=record.conn_id, node=node, DN=dn)
    return record


async def answer_call(obs: Observer, call: CallRecord) -> str:
    """The agent picks up ``call`` on its phone (softphone, or its PSTN number at the gateway)."""
    dn = obs.desk(call.agent).setup.dn
    phone = obs.lab.phone_of(dn)
    if phone is None or call.leg is None:
        url = f"http://{obs.lab.endpoint(call.node, 'control')}/calls/{call.conn_id}/answer"
        status, body = await obs.lab.post_json(url, {"party": dn})
        if status >= 300:
            raise LabError(f"{dn}'s phone could not answer {call.name}: {body}")
        return f"{dn} answers {call.name} at {call.node}"
    report = await _phone_call(
        obs,
        phone,
        lambda r: (
            r.get("direction") == "inbound"
            and r.get("conn_id") == call.conn_id
            and r.get("state") == "ringing"
        ),
    )
    if report is None:
        raise LabError(f"{call.name} ({call.conn_id}) never rang {dn} at {phone}")
    url = f"http://{obs.lab.endpoint(phone, 'http')}/calls/{report['id']}/answer"
    status, body = await obs.lab.post_json(url, {})
    if status >= 300:
        raise LabError(f"{phone} could not answer {call.name}: {body}")
    return f"{call.agent} answers {call.name} on {phone}"


async def _phone_call(
    obs: Observer, phone: str, wanted: Callable[[dict[str, Any]], Any]
) -> dict[str, Any] | None:
    """The first call report of ``phone`` that ``wanted`` accepts, waited for a while."""
    found: dict[str, Any] | None = None
    url = f"http://{obs.lab.endpoint(phone, 'http')}/calls"

    async def seen() -> bool:
        nonlocal found
        body = await obs.lab.get_json(url)
        found = next((r for r in body.get("calls", []) if wanted(r)), None)
        return found is not None

    await wait_until(seen, obs.deadline(MIN_WAIT, 10.0))
    return found


@STEPS.word("new_call", required={"call", "agent", "node"})
async def _new_call(obs: Observer, p: Mapping[str, Any]) -> str:
    record = await place_call(obs, str(p["call"]), str(p["agent"]), str(p["node"]))
    return f"customer calls {p['agent']}: {record.name} ({record.conn_id}) on {record.node}"


@STEPS.word("phone", required={"agent", "node", "request"}, choices={"request": PHONE_REQUESTS})
async def _phone(obs: Observer, p: Mapping[str, Any]) -> str:
    agent, node, request = str(p["agent"]), str(p["node"]), str(p["request"])
    dn = obs.desk(agent).setup.dn
    url = f"http://{obs.lab.endpoint(node, 'control')}/phones/{dn}/{request}"
    status, body = await obs.lab.post_json(url, {})
    if status >= 300:
        raise LabError(f"{node} refused phone {request} of {dn}: {body}")
    return f"softphone of {agent} ({dn}) {request}s at {node}"


@STEPS.word("wait", required={"seconds"})
async def _wait(obs: Observer, p: Mapping[str, Any]) -> str:
    seconds = float(p["seconds"]) * obs.scale
    await asyncio.sleep(seconds)
    return f"waited {p['seconds']} lab s ({seconds:.2f} s)"


@STEPS.word("wait_acw_over", required={"agent"}, optional={"within"})
async def _wait_acw_over(obs: Observer, p: Mapping[str, Any]) -> str:
    dn = obs.desk(str(p["agent"])).setup.dn
    timeout = obs.deadline(MIN_WAIT, float(p.get("within", ACW_PERIOD * 2)))

    async def over() -> bool:
        states = await obs.lab.node_states()
        owned = [s["owned"][dn] for s in states.values() if dn in s.get("owned", {})]
        return bool(owned) and all(
            not o.get("Calls")
            and "AfterCallWork" not in (o.get("AgentWorkMode"), o.get("AgentState"))
            for o in owned
        )

    if not await wait_until(over, timeout):
        raise LabError(f"ACW of {dn} not over within {timeout:.1f} s")
    obs.mark(f"acw-over:{p['agent']}")
    return f"no call and no ACW left on {dn}"


@STEPS.word("wait_until", required={"expect"}, optional={"within"})
async def _wait_until(obs: Observer, p: Mapping[str, Any]) -> str:
    expect = p["expect"]
    timeout = obs.deadline(MIN_WAIT, float(p.get("within", 30.0)))
    last = ""

    async def holds() -> bool:
        nonlocal last
        verdict = await check(obs, expect)
        last = verdict.detail
        return verdict.ok

    if not await wait_until(holds, timeout):
        raise LabError(f"still not so after {timeout:.1f} s: {last}")
    return f"now {last}"


def _keep(obs: Observer, p: Mapping[str, Any], result: ActionResult) -> None:
    if "label" in p:
        obs.results[str(p["label"])] = result


def _list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
