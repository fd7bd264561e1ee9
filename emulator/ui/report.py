"""The self-contained HTML report of a run (issue 17): verdicts, swimlane timeline, fault spans.

``scenario_report`` renders what ``drlab scenario run --report FILE.html`` writes, from the runs'
JSON (``ScenarioResult.to_json``); ``timeline_report`` renders ``drlab timeline --html FILE``
from timeline entries. Either is one file that opens offline: the vendored vis-timeline, the
report's own script and style and the data are all inlined, and nothing is fetched.

The verdict table is plain HTML (it reads without JavaScript); the script draws one zoomable
vis-timeline per run, with a swimlane per service, desktop and the lab, the faults as spans in
their own lane and each verdict marked where it was decided.

A fault span runs from the entry that proves the fault to the one that proves it over, as
logged by whoever did it: the relay's ``link.cut`` to its ``link.heal`` (a TTL heal included),
the runner's ``service.kill``/``service.stop`` to ``service.start``, ``service.pause`` to
``service.resume``, and ``fault.toxic_add`` to ``fault.toxic_rm``. A fault never undone ends at
the run's last entry, marked open.

The media of each call comes from the phones' own lines (``media_calls``): the call from
``call.answered`` (or its first line) to ``call.ended``, each ``media.gap`` (over the talking
threshold) and ``media.dropout`` (a shorter silence) as a span ending where packets came back,
and the final media report of ``call.ended``. Each call gets its own lane under the faults, so a
gap reads against the fault that caused it, and a table row that reads without JavaScript.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

# The vendored vis-timeline (scripts/vendor-ui.sh), as ``asset`` paths.
VIS_TIMELINE_JS = "vendor/vis-timeline/vis-timeline-graph2d.min.js"
VIS_TIMELINE_CSS = "vendor/vis-timeline/vis-timeline-graph2d.min.css"
FAULTS_LANE = "faults"
VERDICTS_LANE = "verdicts"
# Service lanes in this order of kinds, then by name; anything else after them.
LANE_ORDER = (
    *("lab", "scenario", "links", "proxy", "gws", "sip", "pstn", "softphone", "wwe", "desktop"),
)
# Over this many entries a run's timeline keeps the faults, verdicts and the first entries only:
# a browser on a loaded 2-core machine draws a couple of thousand items smoothly, not more.
MAX_ITEMS = 2000

# (start event, end event, kind): the span's subject is the entry's ``link`` or ``target``.
_SPAN_PAIRS = (
    ("link.cut", "link.heal", "cut"),
    ("service.kill", "service.start", "killed"),
    ("service.stop", "service.start", "stopped"),
    ("service.pause", "service.resume", "paused"),
)


@dataclass(frozen=True)
class FaultSpan:
    kind: str  # cut | blackhole | killed | stopped | paused | toxic
    subject: str  # the link or service
    start: float  # wall-clock ts of the proving entries
    end: float
    open: bool  # never undone within the entries
    detail: str = ""


def fault_spans(entries: Sequence[Mapping[str, Any]]) -> list[FaultSpan]:
    """The faults of ``entries`` (time-ordered) as spans, in the order they began."""
    last = max((_ts(entry) for entry in entries), default=0.0)
    starts = {start: (end, kind) for start, end, kind in _SPAN_PAIRS}
    ends = {end for _, end, _ in _SPAN_PAIRS}
    running: dict[tuple[str, str], tuple[float, str, str]] = {}  # (end event, subject) -> began
    spans: list[FaultSpan] = []
    for entry in entries:
        event = str(entry.get("event", ""))
        if event == "fault.toxic_add":
            toxic = entry.get("toxic")
            name = toxic.get("name", "") if isinstance(toxic, Mapping) else ""
            key = ("fault.toxic_rm", f"{entry.get('link')}/{name}")
            running[key] = (_ts(entry), "toxic", json.dumps(toxic, default=str))
            continue
        if event == "fault.toxic_rm":
            key = ("fault.toxic_rm", f"{entry.get('link')}/{entry.get('toxic')}")
            _close(running, spans, key, _ts(entry))
            continue
        subject = str(entry.get("link") or entry.get("target") or "")
        if not subject:
            continue
        if event in ends:
            _close(running, spans, (event, subject), _ts(entry))
        if event in starts:
            end_event, kind = starts[event]
            if kind == "cut" and entry.get("mode") == "blackhole":
                kind = "blackhole"
            running.setdefault((end_event, subject), (_ts(entry), kind, ""))
    for (_, subject), (began, kind, detail) in running.items():
        spans.append(FaultSpan(kind, subject.split("/")[0], began, last, True, detail))
    return sorted(spans, key=lambda span: span.start)


def _close(
    running: dict[tuple[str, str], tuple[float, str, str]],
    spans: list[FaultSpan],
    key: tuple[str, str],
    ts: float,
) -> None:
    began = running.pop(key, None)
    if began is not None:
        start, kind, detail = began
        spans.append(FaultSpan(kind, key[1].split("/")[0], start, ts, False, detail))


def _ts(entry: Mapping[str, Any]) -> float:
    return _number(entry.get("ts", 0.0))


@dataclass(frozen=True)
class MediaGap:
    start: float
    end: float
    open: bool  # packets never came back within the call
    gap_ms: float


@dataclass(frozen=True)
class CallMedia:
    """One phone's leg of a call, as that phone measured it."""

    service: str
    call: str
    conn_id: str
    dn: str
    to: str  # the number or user the call was placed to
    start: float
    end: float
    open: bool  # not ended within the entries
    gaps: tuple[MediaGap, ...]
    talking: bool | None  # the final report's verdict; None while open
    longest_gap_ms: float
    end_reason: str

    @property
    def lane(self) -> str:
        return f"{self.service} {self.call}" + (f" to {self.to}" if self.to else "")


@dataclass
class _CallLines:
    first: float
    answered: float | None = None
    conn_id: str = ""
    dn: str = ""
    to: str = ""
    gaps: list[MediaGap] = field(default_factory=list)
    silent_since: float | None = None
    ended: Mapping[str, Any] | None = None


def media_calls(entries: Sequence[Mapping[str, Any]]) -> list[CallMedia]:
    """Each call leg of ``entries`` (time-ordered) with its media gaps, in the order they began.

    A phone started again (its ``ready`` line) numbers its calls from c1 again: each run's calls
    are its own legs (``c1#2`` when more than one run had calls), and a leg still open when its
    phone started again ended there, when the phone died."""
    last = max((_ts(entry) for entry in entries), default=0.0)
    calls: dict[tuple[str, int, str], _CallLines] = {}
    runs: dict[str, int] = {}
    run_ends: dict[tuple[str, int], float] = {}
    for entry in entries:
        event = str(entry.get("event", ""))
        service = str(entry.get("service", "?"))
        if event == "ready":
            run_ends[(service, runs.get(service, 0))] = _ts(entry)
            runs[service] = runs.get(service, 0) + 1
        if not event.startswith(("call.", "media.")) or not entry.get("call"):
            continue
        ts = _ts(entry)
        key = (service, runs.get(service, 0), str(entry["call"]))
        lines = calls.setdefault(key, _CallLines(ts))
        lines.conn_id = lines.conn_id or str(entry.get("ConnID") or "")
        lines.dn = lines.dn or str(entry.get("DN") or "")
        lines.to = lines.to or _user(str(entry.get("to") or ""))
        began = ts - _number(entry.get("gap_ms")) / 1000
        if event == "call.answered":
            lines.answered = ts
        elif event == "media.gap" and entry.get("state") == "started":
            lines.silent_since = began
        elif event in ("media.gap", "media.dropout"):
            start = lines.silent_since if lines.silent_since is not None else began
            lines.gaps.append(MediaGap(start, ts, False, _number(entry.get("gap_ms"))))
            lines.silent_since = None
        elif event == "call.ended":
            lines.ended = entry
    with_calls: dict[str, list[int]] = {}
    for service, run, _ in calls:
        if run not in with_calls.setdefault(service, []):
            with_calls[service].append(run)

    def name(service: str, run: int, call: str) -> str:
        shown = with_calls[service]
        return call if len(shown) == 1 else f"{call}#{shown.index(run) + 1}"

    return sorted(
        (
            _call_media(
                service, name(service, run, call), lines, run_ends.get((service, run), last)
            )
            for (service, run, call), lines in calls.items()
        ),
        key=lambda media: media.start,
    )


def _call_media(service: str, call: str, lines: _CallLines, last: float) -> CallMedia:
    ended = lines.ended
    end = last if ended is None else _ts(ended)
    gaps = list(lines.gaps)
    if lines.silent_since is not None:  # silent to the end (an RTP-loss call ends this way)
        silent_ms = round((end - lines.silent_since) * 1000)
        gaps.append(MediaGap(lines.silent_since, end, True, silent_ms))
    report = ended.get("media") if ended is not None else None
    report = report if isinstance(report, Mapping) else {}
    longest = report.get("longest_gap_ms")
    return CallMedia(
        service=service,
        call=call,
        conn_id=lines.conn_id,
        dn=lines.dn,
        to=lines.to,
        start=lines.answered if lines.answered is not None else lines.first,
        end=end,
        open=ended is None,
        gaps=tuple(gaps),
        talking=bool(report["talking"]) if "talking" in report else None,
        longest_gap_ms=_number(longest)
        if longest is not None
        else max((gap.gap_ms for gap in gaps), default=0.0),
        end_reason=str(ended.get("end_reason") or "") if ended is not None else "",
    )


def _user(uri: str) -> str:
    """``sip:agent-7001@host:5060`` -> ``agent-7001``; a plain number stays as it is."""
    return uri.removeprefix("sip:").split("@")[0]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def lanes(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The swimlanes: faults and verdicts first, then each service that logged, in kind order
    (the script splits the faults lane into one per faulted link or service)."""
    services = {lane_of(entry) for entry in entries}

    def order(name: str) -> tuple[int, str]:
        for rank, prefix in enumerate(LANE_ORDER):
            if name.startswith(prefix):
                return rank, name
        return len(LANE_ORDER), name

    return [FAULTS_LANE, VERDICTS_LANE, *sorted(services, key=order)]


def lane_of(entry: Mapping[str, Any]) -> str:
    """The lane of an entry: its service's, or for a GWS node's line about one agent's desktop
    (a session, its CometD clients and what was published to it) that desktop's, as the GWS
    node saw it; a lab's own desktops are the user's clients, which log nothing to the lab."""
    lane = entry.get("lane")
    return str(lane) if lane else str(entry.get("service", "?"))


def _desktop_lanes(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    users: dict[str, str] = {}  # session tag -> user, from the lines that name both
    placed: list[Mapping[str, Any]] = []
    for entry in entries:
        service = str(entry.get("service", ""))
        session = str(entry.get("session") or "")
        user = str(entry.get("user") or "") or users.get(session, "")
        if session and user:
            users[session] = user
        if (
            service.startswith("gws")
            and user
            and str(entry.get("event", "")).startswith(("session.", "cometd."))
        ):
            placed.append({**entry, "lane": f"desktop {user}"})
        else:
            placed.append(entry)
    return placed


def run_view(name: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the report's script draws for one run: its lanes, entries and fault spans."""
    entries = _desktop_lanes(entries)
    kept = list(entries)
    if len(kept) > MAX_ITEMS:
        marked = [e for e in kept if str(e.get("event", "")).startswith(_MARKED_EVENTS)]
        kept = sorted(kept[: MAX_ITEMS - len(marked)] + marked, key=_ts)
    return {
        "name": name,
        "lanes": lanes(entries),
        "entries": kept,
        "dropped": len(entries) - len(kept),
        "spans": [asdict(span) for span in fault_spans(entries)],
        "media": [{**asdict(media), "lane": media.lane} for media in media_calls(entries)],
    }


_MARKED_EVENTS = ("fault.", "link.cut", "link.heal", "service.", "scenario.outcome")


def scenario_report(runs: Sequence[Mapping[str, Any]], title: str = "drlab scenario report") -> str:
    """The HTML report of scenario runs, each given as ``ScenarioResult.to_json()``."""
    passed = sum(o.get("status") == "pass" for run in runs for o in run.get("outcomes", []))
    total = sum(len(run.get("outcomes", [])) for run in runs)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="summary" data-passed="{passed}" data-total="{total}">'
        f"{passed}/{total} outcomes passed in {len(runs)} scenario run(s)</p>",
    ]
    views = []
    for index, run in enumerate(runs):
        body.append(_scenario_section(index, run))
        views.append(run_view(str(run.get("name", index)), run.get("timeline", [])))
    return _page(title, "\n".join(body), views)


def timeline_report(entries: Sequence[Mapping[str, Any]], title: str = "drlab timeline") -> str:
    """The HTML view of ``drlab timeline``: one swimlane timeline of the whole lab."""
    spans = fault_spans(entries)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="summary">{len(entries)} entries, {len(spans)} fault span(s)</p>',
        '<section class="run" data-run="0"><div class="timeline" id="timeline-0"></div>'
        f"{media_table(entries)}</section>",
    ]
    return _page(title, "\n".join(body), [run_view("lab", entries)])


def _scenario_section(index: int, run: Mapping[str, Any]) -> str:
    name = str(run.get("name", ""))
    verdict = "pass" if run.get("passed") else "fail"
    rows = []
    for outcome in run.get("outcomes", []):
        status = str(outcome.get("status", ""))
        at = outcome.get("observed_at")
        seen = (
            ""
            if status == "pass"
            else f'<div class="seen"><b>what was seen:</b> {_e(outcome.get("detail", ""))}</div>'
        )
        rows.append(
            f'<tr class="outcome {_e(status)}" data-outcome="{_e(outcome.get("id", ""))}" '
            f'data-status="{_e(status)}"><td>{_e(outcome.get("id", ""))}</td>'
            f'<td class="status">{_e(status.upper())}</td>'
            f"<td>{'' if at is None else f'{float(at):.2f}'}</td>"
            f"<td>{_e(outcome.get('title', ''))}{seen}"
            f"<details><summary>evidence</summary>{_e(outcome.get('detail', ''))}</details></td>"
            "</tr>"
        )
    extra = []
    if run.get("error"):
        extra.append(f'<p class="error">run failed: {_e(run["error"])}</p>')
    for rule, findings in (run.get("best_practice_violations") or {}).items():
        for finding in findings:
            extra.append(f'<p class="best-practice">{_e(rule)}: {_e(finding)}</p>')
    return (
        f'<section class="run scenario {verdict}" data-run="{index}" data-scenario="{_e(name)}">'
        f'<h2>{_e(name)} <span class="verdict">{verdict.upper()}</span></h2>'
        f'<p class="title">{_e(run.get("title", ""))} (time scale {_e(run.get("time_scale"))}, '
        f"{float(run.get('duration') or 0):.1f} s)</p>"
        + "".join(extra)
        + '<table class="verdicts"><thead><tr><th>outcome</th><th>status</th><th>at (s)</th>'
        "<th>title</th></tr></thead><tbody>"
        + "".join(rows)
        + f'</tbody></table><div class="timeline" id="timeline-{index}"></div>'
        + media_table(run.get("timeline", []))
        + "</section>"
    )


def media_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """Each call leg's media as the phone measured it; times from the first entry."""
    calls = media_calls(entries)
    if not calls:
        return ""
    origin = min(_ts(entry) for entry in entries)
    rows = []
    for media in calls:
        verdict = "open" if media.talking is None else "talking" if media.talking else "not talking"
        gaps = ", ".join(
            f"{gap.start - origin:.1f} s for {gap.gap_ms / 1000:.2f} s"
            + (" (open)" if gap.open else "")
            for gap in media.gaps
        )
        rows.append(
            f'<tr class="media-call" data-call="{_e(media.lane)}" data-gaps="{len(media.gaps)}" '
            f'data-talking="{_e(verdict)}"><td>{_e(media.lane)}</td><td>{_e(media.dn)}</td>'
            f"<td>{_e(media.conn_id)}</td><td>{media.start - origin:.1f}</td>"
            f"<td>{'' if media.open else f'{media.end - origin:.1f}'}</td>"
            f"<td>{_e(verdict)}</td><td>{media.longest_gap_ms:.0f} ms</td>"
            f"<td>{_e(gaps or 'none')}</td><td>{_e(media.end_reason)}</td></tr>"
        )
    return (
        '<table class="media"><caption>media per call leg, as each phone heard it</caption>'
        "<thead><tr><th>call</th><th>DN</th><th>Call-ID</th><th>from (s)</th><th>to (s)</th>"
        "<th>media</th><th>longest gap</th><th>gaps and dropouts (at, for)</th>"
        "<th>ended</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _page(title: str, body: str, views: list[dict[str, Any]]) -> str:
    data = json.dumps(views, default=str).replace("</", "<\\/")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title>"
        f"<style>{asset(VIS_TIMELINE_CSS)}</style>"
        f"<style>{asset('static/report.css')}</style></head><body>\n{body}\n"
        f'<script type="application/json" id="drlab-data">{data}</script>'
        f"<script>{_script(asset(VIS_TIMELINE_JS))}</script>"
        f"<script>{_script(asset('static/report.js'))}</script>"
        "</body></html>\n"
    )


def asset(path: str) -> str:
    """A file of the UI package (``static/``, ``vendor/``), as text."""
    return resources.files("emulator.ui").joinpath(path).read_text(encoding="utf-8")


def _script(text: str) -> str:
    # An inline script ends at the first "</script": keep any inside the library from ending it.
    return text.replace("</script", "<\\/script")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
