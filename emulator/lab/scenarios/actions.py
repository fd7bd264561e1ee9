"""The steps a scenario can take (``do:``): faults, agent and customer actions, waits.

Each action drives the lab the way a person or a failure would: faults through the relay and
the engine, agents through their WWE desktops (``clients.wwe``) via the DC proxies, customers
(the far end of a call) through the PSTN gateway's control API (``POST /calls {"to": DN, "node":
sipN}``: SIP and RTP through the relay), the agent's phone (the softphone, or the PSTN gateway's
agent number) answered through its control API as the agent would. Without a gateway in the lab
the call node's control endpoint places and answers calls (no media). An agent request's outcome
(accepted, or the EventError that answered it) is kept under the step's ``label`` for the checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from clients.wwe import AgentState, CallState, VoiceError, VoiceState, WweClient, WweError
from emulator.lab.engine.errors import LabError
from emulator.lab.scenarios.observer import ActionResult, CallRecord, Observer, wait_until

ACW_PERIOD = 10.0  # the nodes' default after-call-work-period (lab seconds)
MIN_WAIT = 3.0  # a request on a loaded 2-core machine needs this long whatever the time scale
EXPECTED_CALL_STATE = {
    "answer": CallState.ESTABLISHED,
    "hold": CallState.HELD,
    "retrieve": CallState.ESTABLISHED,
    "release": CallState.RELEASED,
}

Action = Callable[[Observer, Mapping[str, Any]], Awaitable[str]]


def scaled(observer: Observer, seconds: float) -> float:
    return max(seconds * observer.scale, MIN_WAIT)


async def _cut(obs: Observer, p: Mapping[str, Any]) -> str:
    links = _list(p["links"])
    mode = str(p.get("mode", "reset"))
    await obs.lab.cut(links, mode)
    return f"cut {', '.join(links)} ({mode})"


async def _heal(obs: Observer, p: Mapping[str, Any]) -> str:
    links = _list(p["links"]) if "links" in p else None
    await obs.lab.heal(links)
    return f"healed {', '.join(links) if links else 'every link'}"


async def _partition(obs: Observer, p: Mapping[str, Any]) -> str:
    dc_a, dc_b = _list(p["dcs"])
    names = await obs.lab.partition(dc_a, dc_b, str(p.get("mode", "reset")))
    return f"partition {dc_a}/{dc_b}: cut {', '.join(names)}"


def _service_fault(verb: str) -> Action:
    async def act(obs: Observer, p: Mapping[str, Any]) -> str:
        await obs.lab.service_fault(verb, str(p["service"]))
        return f"{verb} {p['service']}"

    return act


async def _login(obs: Observer, p: Mapping[str, Any]) -> str:
    """Log on: the same page refreshed when it is on the same DC, else a new page on that DC."""
    agent, dc = str(p["agent"]), str(p["dc"])
    gws = str(p["gws"]) if "gws" in p else None
    desk = obs.desk(agent)
    client = desk.client
    try:
        if client is not None and gws is None and client.base_url == obs.lab.proxy_url(dc):
            outcome = await client.relogin()
        else:
            client = await obs.open_desktop(agent, dc, gws)
            outcome = await client.login()
    except WweError as exc:
        _keep(obs, p, ActionResult(False, f"log-on failed: {exc.message}"))
        return f"{agent} log-on through {dc} failed: {exc.message}"
    rejected = outcome.rejected
    detail = (
        f"via {outcome.node}: {outcome.voice.describe()}; calls reported "
        f"{[c.id for c in outcome.calls] or 'none'}"
        + (f"; agent login rejected ({rejected.message})" if rejected else "")
    )
    result = ActionResult(
        rejected is None, detail, rejected.code if rejected else None, login=outcome
    )
    _keep(obs, p, result)
    return f"{agent} logged on {detail}"


async def _agent(obs: Observer, p: Mapping[str, Any]) -> str:
    agent, request = str(p["agent"]), str(p["request"])
    client = obs.client(agent)
    errors_before = len(obs.desk(agent).since(0.0, "error"))
    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "ready": client.ready,
        "not_ready": lambda: client.not_ready("AfterCallWork"),
        "agent_login": client.agent_login,
        "agent_logout": client.agent_logout,
    }
    wanted: Callable[[VoiceState], bool] = {
        "ready": lambda v: v.agent_state is AgentState.READY,
        "not_ready": lambda v: v.agent_state is AgentState.NOT_READY,
        "agent_login": lambda v: v.logged_in,
        "agent_logout": lambda v: not v.logged_in,
    }[request]
    result = await _request(
        obs, agent, client, calls[request], lambda: wanted(client.voice), errors_before
    )
    _keep(obs, p, result)
    return f"{agent} {request}: {result.detail}"


async def _call_control(obs: Observer, p: Mapping[str, Any]) -> str:
    agent, call_name, request = str(p["agent"]), str(p["call"]), str(p["request"])
    call = obs.calls[call_name]
    client = obs.desk(agent).client
    errors_before = len(obs.desk(agent).since(0.0, "error"))
    state = EXPECTED_CALL_STATE[request]

    def done() -> bool:
        assert client is not None
        log = client.desktop.call_log
        return bool(log) and any(c.id == call.conn_id and c.state is state for c in list(log)[-3:])

    if client is None:
        result = ActionResult(False, "no desktop open")
    else:
        send = getattr(client, request)
        result = await _request(obs, agent, client, lambda: send(call.conn_id), done, errors_before)
    _keep(obs, p, result)
    return f"{agent} {request} {call_name}: {result.detail}"


async def _request(
    obs: Observer,
    agent: str,
    client: WweClient,
    send: Callable[[], Awaitable[None]],
    done: Callable[[], bool],
    errors_before: int,
) -> ActionResult:
    """Send a Workspace request and wait for its outcome: the expected change or an EventError."""
    try:
        await send()
    except WweError as exc:
        return ActionResult(False, f"refused: {exc.message}", getattr(exc, "status", None))

    def answered() -> bool:
        return done() or len(obs.desk(agent).since(0.0, "error")) > errors_before

    try:
        await client.wait_until(answered, scaled(obs, 5.0))
    except TimeoutError:
        return ActionResult(False, "accepted, but nothing changed on the desktop")
    errors = obs.desk(agent).since(0.0, "error")
    if len(errors) > errors_before and not done():
        error: VoiceError = errors[-1]
        return ActionResult(False, f"EventError {error.code}: {error.text}", error.code)
    return ActionResult(True, "done")


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

    await wait_until(seen, scaled(obs, 10.0))
    return found


async def _new_call(obs: Observer, p: Mapping[str, Any]) -> str:
    record = await place_call(obs, str(p["call"]), str(p["agent"]), str(p["node"]))
    return f"customer calls {p['agent']}: {record.name} ({record.conn_id}) on {record.node}"


async def _phone(obs: Observer, p: Mapping[str, Any]) -> str:
    agent, node, request = str(p["agent"]), str(p["node"]), str(p["request"])
    dn = obs.desk(agent).setup.dn
    url = f"http://{obs.lab.endpoint(node, 'control')}/phones/{dn}/{request}"
    status, body = await obs.lab.post_json(url, {})
    if status >= 300:
        raise LabError(f"{node} refused phone {request} of {dn}: {body}")
    return f"softphone of {agent} ({dn}) {request}s at {node}"


async def _wait(obs: Observer, p: Mapping[str, Any]) -> str:
    seconds = float(p["seconds"]) * obs.scale
    await asyncio.sleep(seconds)
    return f"waited {p['seconds']} lab s ({seconds:.2f} s)"


async def _wait_acw_over(obs: Observer, p: Mapping[str, Any]) -> str:
    dn = obs.desk(str(p["agent"])).setup.dn
    timeout = scaled(obs, float(p.get("within", ACW_PERIOD * 2)))

    async def over() -> bool:
        states = await obs.lab.node_states()
        owned = [s["owned"][dn] for s in states.values() if dn in s.get("owned", {})]
        return bool(owned) and all(
            not o.get("Calls") and o.get("AgentWorkMode") != "AfterCallWork" for o in owned
        )

    if not await wait_until(over, timeout):
        raise LabError(f"ACW of {dn} not over within {timeout:.1f} s")
    return f"no call and no ACW left on {dn}"


async def _wait_until(obs: Observer, p: Mapping[str, Any]) -> str:
    from emulator.lab.scenarios.checks import CHECKS

    expect = p["expect"]
    timeout = scaled(obs, float(p.get("within", 30.0)))
    last = ""

    async def holds() -> bool:
        nonlocal last
        verdict = await CHECKS[expect.kind](obs, expect)
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


ACTIONS: dict[str, Action] = {
    "cut": _cut,
    "heal": _heal,
    "partition": _partition,
    "kill": _service_fault("kill"),
    "stop": _service_fault("stop"),
    "start": _service_fault("start"),
    "pause": _service_fault("pause"),
    "resume": _service_fault("resume"),
    "login": _login,
    "agent": _agent,
    "call_control": _call_control,
    "customer": _customer,
    "new_call": _new_call,
    "phone": _phone,
    "wait": _wait,
    "wait_acw_over": _wait_acw_over,
    "wait_until": _wait_until,
}
FAULTS = frozenset({"cut", "partition", "kill", "stop", "pause"})
