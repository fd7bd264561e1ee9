"""The chaos checker: the invariants a SIP Cluster must keep under any fault, each stated once.

``INVARIANTS`` names each one with the rule it follows from (the guide's words where it has
them, else the contract a client relies on) and the function that checks it over the run's
``Evidence``: the history (operations, faults, what the desktops showed), every service's log,
and the lab's state after the heal. A check returns ``Violation``s, each with the history time
it is about, so the report can show the seed, the fault sequence and the history window around
it. Two of them are read from the lab's state and must hold *within a bound after the heal*:
the runner polls the lab until they hold or the bound passes (``SETTLED``), then the last state
read is the evidence.

Choices where the guide is silent, written here where the rules live:

* A logout is explained when the node that logged the agent out said why (``agent.logout`` with
  the Reason the desktop was given), or the desktop asked for it. The guide's "logs Agent 2 out
  *before* moving the ownership" is checked as an order in the owner's own log: its
  ``agent.logout`` (OwnershipMove) comes before its ``ownership.move`` of that DN.
* A media gap (a silence of a second or more, or a call that ended in one) is accounted for when
  a fault on that call's media path — the phone, the call's node, a link between either and
  anything, a DC partition — held at the moment the silence began (or ended at most
  ``MEDIA_GRACE`` real seconds before it, or was applied at most ``MEDIA_LEAD`` after it).
* A T-Lib request is unanswered when neither its event nor an EventError with its ReferenceID
  came on the same T-Lib connection, that connection stayed up, and the GWS node logged on for
  ``ANSWER_BOUND`` seconds after it. ReferenceIDs are counted per connection: a new connection
  starts them again.
* A desktop request that got no answer at all (``info``) is explained by any fault that held
  while it waited, or was reverted at most ``AFTERMATH`` before; with no fault, a violation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.lab.chaos.history import INFO, INVOKE
from emulator.lab.chaos.plan import ChaosFault, FaultKind
from emulator.lab.topology import Topology
from emulator.ui.report import media_calls

LOGOUT_WINDOW = 5.0  # real seconds between a node's logout and the desktop's event
MEDIA_GRACE = 1.5  # real seconds after a fault's revert a silence may still begin
# Real seconds before a fault's apply entry a silence may begin: the entry is written once the
# fault is in place, and a phone measures its silence from the last packet it received.
MEDIA_LEAD = 0.5
MEDIA_GAP_MS = 1000.0  # the phones' talking threshold: a shorter dropout is jitter
ANSWER_BOUND = 10.0  # real seconds a T-Lib request may wait for its answer
# Real seconds after a fault's revert in which an unanswered desktop request is still its
# aftermath (a resumed node catching up, ownership conflicts being resolved).
AFTERMATH = 2.0


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str
    ts: float | None = None  # wall clock of what it is about (for the history window)


@dataclass(frozen=True)
class FaultWindow:
    fault: ChaosFault
    applied: float  # wall clock
    reverted: float  # wall clock (the end of the run when never reverted)

    def held_at(self, ts: float, grace: float = 0.0, lead: float = 0.0) -> bool:
        return self.applied - lead <= ts <= self.reverted + grace

    def overlaps(self, start: float, end: float) -> bool:
        return self.applied <= end and start <= self.reverted


@dataclass
class Evidence:
    topology: Topology
    history: list[dict[str, Any]]
    logs: list[dict[str, Any]]  # every service's lines, ordered by ts
    windows: list[FaultWindow]
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /state after the heal
    phone_calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # after the heal
    desktop_calls: dict[str, list[str]] = field(default_factory=dict)  # agent -> live calls
    services: dict[str, str] = field(default_factory=dict)  # service -> state after the heal
    agents: tuple[str, ...] = ()
    healed_at: float = 0.0  # wall clock: every fault reverted

    def by_service(self) -> dict[str, list[dict[str, Any]]]:
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in self.logs:
            lines[str(entry.get("service", ""))].append(entry)
        return lines

    def touches(self, window: FaultWindow, services: set[str]) -> bool:
        """Whether the fault breaks a service of ``services`` or a link of one of them."""
        fault = window.fault
        if fault.kind in (FaultKind.KILL, FaultKind.PAUSE):
            return fault.target in services
        if fault.kind is FaultKind.PARTITION:
            links = self.topology.crossing(*fault.target.split())
        else:
            links = [fault.target]
        for name in links:
            link = self.topology.links.get(name)
            if link is not None and {link.source, link.target} & services:
                return True
        return False


Check = Callable[[Evidence], list[Violation]]


@dataclass(frozen=True)
class Invariant:
    name: str
    rule: str  # what it follows from
    check: Check
    settled: bool = False  # read from the lab's state, polled within a bound after the heal


# -- the state after the heal -------------------------------------------------------------


def one_owner_per_dn(evidence: Evidence) -> list[Violation]:
    views: dict[str, dict[str, tuple[str, int]]] = defaultdict(dict)
    owners: dict[str, list[str]] = defaultdict(list)
    for node, state in sorted(evidence.nodes.items()):
        for dn, record in (state.get("ownership") or {}).items():
            views[dn][node] = (str(record.get("owner")), int(record.get("epoch", 0)))
        for dn in state.get("owned") or {}:
            owners[dn].append(node)
    problems = []
    for dn, by_node in sorted(views.items()):
        if len(set(by_node.values())) > 1:
            shown = ", ".join(f"{n}: {o} epoch {e}" for n, (o, e) in sorted(by_node.items()))
            problems.append(Violation("one-owner-per-dn", f"DN {dn}: the nodes disagree ({shown})"))
    for dn, nodes in sorted(owners.items()):
        if len(nodes) > 1:
            problems.append(
                Violation("one-owner-per-dn", f"DN {dn} is owned by {' and '.join(nodes)}")
            )
        agreed = {owner for owner, _ in views.get(dn, {}).values()}
        if len(agreed) == 1 and nodes and agreed != {nodes[0]}:
            problems.append(
                Violation(
                    "one-owner-per-dn",
                    f"DN {dn}: the view says {agreed.pop()}, but {nodes[0]} holds it",
                )
            )
    return problems


def no_stuck_call(evidence: Evidence) -> list[Violation]:
    problems = []
    for node, state in sorted(evidence.nodes.items()):
        for call in state.get("calls") or []:
            problems.append(
                Violation("no-stuck-call", f"{node} still has call {call.get('ConnID')} ({call})")
            )
        for dn, owned in sorted((state.get("owned") or {}).items()):
            for call in owned.get("Calls") or []:
                problems.append(
                    Violation(
                        "no-stuck-call",
                        f"{node} still shows call {call.get('ConnID')} on DN {dn}",
                    )
                )
    for phone, calls in sorted(evidence.phone_calls.items()):
        for call in calls:
            if call.get("state") != "ended":
                problems.append(
                    Violation(
                        "no-stuck-call",
                        f"{phone} still has call {call.get('id')} ({call.get('state')})",
                    )
                )
    for agent, call_ids in sorted(evidence.desktop_calls.items()):
        for call_id in call_ids:
            problems.append(
                Violation("no-stuck-call", f"{agent}'s desktop still shows call {call_id}")
            )
    return problems


# -- the history and the logs -------------------------------------------------------------


def logouts_explained(evidence: Evidence) -> list[Violation]:
    logouts: list[dict[str, Any]] = []  # the nodes' agent.logout lines
    moves: dict[tuple[str, str], list[float]] = defaultdict(list)  # (node, DN) -> move times
    problems: list[Violation] = []
    for entry in evidence.logs:
        event = entry.get("event")
        if event == "agent.logout":
            logouts.append(entry)
        elif event == "agent.dropped":
            # A node gave a DN up with its agent logged in: resolving an ownership conflict is
            # the cluster's rule; moving it so is not ("logs Agent 2 out before moving").
            if entry.get("reason") == "OwnershipMove":
                problems.append(
                    Violation(
                        "logouts-explained",
                        f"{entry.get('service')} moved DN {entry.get('DN')} with agent "
                        f"{entry.get('AgentID')} still logged in: the guide says it logs the "
                        "agent out before moving the ownership",
                        _ts(entry),
                    )
                )
            else:
                logouts.append(entry)
        elif event == "ownership.move":
            moves[(str(entry.get("service")), str(entry.get("DN")))].append(_ts(entry))
    for gws, lines in sorted(evidence.by_service().items()):
        for segment in _tlib_segments(lines):
            requested = {
                e.get("ReferenceID")
                for e in segment.requests
                if e.get("message") == "RequestAgentLogout"
            }
            for event in segment.events:
                if event.get("message") != "EventAgentLogout":
                    continue
                if event.get("ReferenceID") and event.get("ReferenceID") in requested:
                    continue
                if not _logged_logout(logouts, event):
                    problems.append(
                        Violation(
                            "logouts-explained",
                            f"{gws}: EventAgentLogout DN {event.get('DN')} "
                            f"(Reason {event.get('Reason')}) from {segment.sip}: no node logged "
                            "a rule that logs this agent out",
                            _ts(event),
                        )
                    )
    for entry in logouts:
        if entry.get("reason") != "OwnershipMove" or entry.get("event") != "agent.logout":
            continue
        node, dn = str(entry.get("service")), str(entry.get("DN"))
        earlier = [t for t in moves[(node, dn)] if t < _ts(entry)]
        later = [t for t in moves[(node, dn)] if t >= _ts(entry)]
        if earlier and not later:
            problems.append(
                Violation(
                    "logouts-explained",
                    f"{node} logged agent {entry.get('AgentID')} out of DN {dn} after moving its "
                    "ownership: the guide says it logs the agent out before moving it",
                    _ts(entry),
                )
            )
    return problems


def _logged_logout(logouts: Sequence[Mapping[str, Any]], event: Mapping[str, Any]) -> bool:
    ts = _ts(event)
    return any(
        line.get("DN") == event.get("DN")
        and line.get("reason") == event.get("Reason")
        and ts - LOGOUT_WINDOW <= _ts(line) <= ts + 0.5
        for line in logouts
    )


def relogin_after_heal(evidence: Evidence) -> list[Violation]:
    done = {
        entry["process"]
        for entry in evidence.history
        if entry.get("kind") == "op"
        and entry.get("op") == "relogin"
        and entry.get("phase") == "ok"
        and entry["ts"] >= evidence.healed_at
    }
    return [
        Violation("relogin-after-heal", f"{agent} could not log in and go Ready after the heal")
        for agent in evidence.agents
        if agent not in done
    ]


def media_accounted(evidence: Evidence) -> list[Violation]:
    nodes = _call_nodes(evidence.logs)
    problems = []
    for media in media_calls(evidence.logs):
        silences = [
            (gap.start, gap.end) for gap in media.gaps if gap.open or gap.gap_ms >= MEDIA_GAP_MS
        ]
        # A call that never talked is a silence only if it lasted past the talking threshold
        # (a customer who hangs up within a second never hears the agent, and no fault is
        # needed for that).
        lasted_ms = (media.end - media.start) * 1000
        if media.talking is False and lasted_ms >= MEDIA_GAP_MS and not silences:
            silences.append((media.start, media.end))
        call = media.call.split("#")[0]  # the phone's own id (c1), whichever run of it
        path = {media.service, *nodes.get((media.service, call), ())}
        for start, end in silences:
            if not any(
                w.held_at(start, MEDIA_GRACE, MEDIA_LEAD) and evidence.touches(w, path)
                for w in evidence.windows
            ):
                problems.append(
                    Violation(
                        "media-accounted",
                        f"{media.lane}: {round((end - start) * 1000)} ms without media "
                        f"with no fault on its path ({', '.join(sorted(path))})",
                        start,
                    )
                )
    return problems


def _call_nodes(logs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], set[str]]:
    nodes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for entry in logs:
        if str(entry.get("event", "")).startswith("call.") and entry.get("node"):
            nodes[(str(entry.get("service")), str(entry.get("call")))].add(str(entry["node"]))
    return nodes


def no_crash(evidence: Evidence) -> list[Violation]:
    problems = [
        Violation(
            "no-crash",
            f"{entry.get('service')}: {entry.get('event')} "
            + " ".join(f"{k}={v}" for k, v in entry.items() if k not in _LOG_KEYS),
            _ts(entry),
        )
        for entry in evidence.logs
        if entry.get("level") == "error"
    ]
    problems += [
        Violation("no-crash", f"{e['service']} was {e['state']} with no fault holding it", e["ts"])
        for e in evidence.history
        if e.get("kind") == "crash"
    ]
    problems += [
        Violation("no-crash", f"{service} is {state} after the heal")
        for service, state in sorted(evidence.services.items())
        if state != "running"
    ]
    return problems


_LOG_KEYS = {"ts", "service", "dc", "level", "event"}


def every_request_answered(evidence: Evidence) -> list[Violation]:
    problems = []
    for gws, lines in sorted(evidence.by_service().items()):
        last = max((_ts(e) for e in lines), default=0.0)
        for segment in _tlib_segments(lines):
            if segment.closed:
                continue
            answered = {e.get("ReferenceID") for e in segment.events}
            for request in segment.requests:
                ref = request.get("ReferenceID")
                if ref and ref not in answered and _ts(request) + ANSWER_BOUND <= last:
                    problems.append(
                        Violation(
                            "every-request-answered",
                            f"{gws}: {request.get('message')} DN {request.get('DN')} "
                            f"ReferenceID {ref} to {segment.sip} got no event and no EventError",
                            _ts(request),
                        )
                    )
    ops = [e for e in evidence.history if e.get("kind") == "op"]
    completed = {e["id"] for e in ops if e["phase"] != INVOKE}
    for entry in ops:
        if entry["phase"] == INVOKE and entry["id"] not in completed:
            problems.append(
                Violation(
                    "every-request-answered",
                    f"{entry['process']} {entry['op']} #{entry['id']} never completed",
                    entry["ts"],
                )
            )
        elif entry["phase"] == INFO:
            waited_from = entry["ts"] - float(entry.get("ms", 0.0)) / 1000 - AFTERMATH
            if not any(w.overlaps(waited_from, entry["ts"]) for w in evidence.windows):
                problems.append(
                    Violation(
                        "every-request-answered",
                        f"{entry['process']} {entry['op']} #{entry['id']}: {entry.get('error')} "
                        "with no fault in the lab",
                        entry["ts"],
                    )
                )
    return problems


def reference_ids_answered_once(evidence: Evidence) -> list[Violation]:
    problems = []
    for gws, lines in sorted(evidence.by_service().items()):
        for segment in _tlib_segments(lines):
            answers = Counter(e.get("ReferenceID") for e in segment.events if e.get("ReferenceID"))
            for ref, count in sorted(answers.items()):
                if count > 1:
                    first = next(e for e in segment.events if e.get("ReferenceID") == ref)
                    shown = [
                        e.get("message") for e in segment.events if e.get("ReferenceID") == ref
                    ]
                    problems.append(
                        Violation(
                            "reference-ids-answered-once",
                            f"{gws}: ReferenceID {ref} from {segment.sip} answered {count} times "
                            f"({', '.join(map(str, shown))})",
                            _ts(first),
                        )
                    )
    return problems


@dataclass
class _Segment:
    """One T-Lib connection of a GWS node to a SIP node, from link_up to link_down."""

    sip: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False  # ended by link_down: what it did not answer died with it


def _tlib_segments(lines: Iterable[dict[str, Any]]) -> list[_Segment]:
    segments: list[_Segment] = []
    current: dict[str, _Segment] = {}
    for entry in lines:
        event, sip = entry.get("event"), str(entry.get("sip", ""))
        if event == "tlib.link_up":
            current[sip] = _Segment(sip)
            segments.append(current[sip])
        elif event == "tlib.link_down" and sip in current:
            current.pop(sip).closed = True
        elif event == "stopped" or event == "ready":
            for segment in current.values():
                segment.closed = True
            current.clear()
        elif event == "tlib.request" and sip in current:
            current[sip].requests.append(entry)
        elif event == "tlib.event" and sip in current:
            current[sip].events.append(entry)
    # A GWS node killed mid-run logs no link_down: its last connections end with its log.
    return segments


def _ts(entry: Mapping[str, Any]) -> float:
    value = entry.get("ts")
    return float(value) if isinstance(value, int | float) else 0.0


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "one-owner-per-dn",
        "SIP Cluster: each DN has one owner node, and every node's view names it",
        one_owner_per_dn,
        settled=True,
    ),
    Invariant(
        "no-stuck-call",
        "a call the customer ended is gone from every node, phone and desktop ('to avoid"
        " getting a stuck call on a desktop')",
        no_stuck_call,
        settled=True,
    ),
    Invariant(
        "logouts-explained",
        "every agent logout follows a rule (logout-on-disconnect, 'logs Agent 2 out before moving"
        " the ownership', the owner unreachable, the session's unregister) or the agent's request",
        logouts_explained,
    ),
    Invariant(
        "relogin-after-heal",
        "after the heal every agent can log on again ('refresh your browser and log in again')",
        relogin_after_heal,
    ),
    Invariant(
        "media-accounted",
        "media flows unless a fault is on its path ('the call is preserved'; RTP lost when the"
        " phone's path is cut)",
        media_accounted,
    ),
    Invariant("no-crash", "no service fails by itself: only a fault stops one", no_crash),
    Invariant(
        "every-request-answered",
        "each T-Lib request gets its event or EventError, each desktop request its answer",
        every_request_answered,
    ),
    Invariant(
        "reference-ids-answered-once",
        "T-Lib: the event answering a request carries its ReferenceID, once",
        reference_ids_answered_once,
    ),
)


def check_all(evidence: Evidence, names: Iterable[str] | None = None) -> list[Violation]:
    wanted = set(names) if names is not None else None
    return [
        violation
        for invariant in INVARIANTS
        if wanted is None or invariant.name in wanted
        for violation in invariant.check(evidence)
    ]
