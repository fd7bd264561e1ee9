// drlab's report: one zoomable swimlane timeline per run, drawn with the vendored vis-timeline
// from the JSON that emulator/ui/report.py embeds (#drlab-data). No network, no build step.
"use strict";

(function () {
  const HIDDEN = new Set(["ts", "service", "dc", "level", "event", "lane"]);

  function describe(entry) {
    const fields = Object.keys(entry)
      .filter((key) => !HIDDEN.has(key))
      .map((key) => key + "=" + (typeof entry[key] === "string" ? entry[key] : JSON.stringify(entry[key])));
    // An entry in a desktop's lane says which GWS node logged it.
    return (entry.lane ? entry.service + ": " : "") + entry.event + (fields.length ? " " + fields.join(" ") : "");
  }

  function text(value) {
    const node = document.createElement("span");
    node.textContent = value;
    return node;
  }

  // Items and lanes of one run's view (emulator/ui/report.py run_view).
  function timelineData(view) {
    // One lane per faulted link or service, so that faults at the same time do not overlap.
    // The most recently faulted first: with many faults (chaos) the newest stay in view.
    const latest = new Map();
    view.spans.forEach((span) => latest.set(span.subject, Math.max(latest.get(span.subject) || 0, span.start)));
    const subjects = [...latest.keys()].sort((a, b) => latest.get(b) - latest.get(a));
    // A lane's id is a plain token: vis-timeline misdraws groups whose id holds a space.
    const faultLane = (subject) => "fault-lane-" + subjects.indexOf(subject);
    // One lane per call leg, under the verdicts: its media gaps read against the faults above.
    const media = view.media || [];
    const mediaLane = (n) => "media-lane-" + n;
    const lanes = view.lanes.flatMap((lane) => {
      if (lane === "faults" && subjects.length)
        return subjects.map((subject) => ({ id: faultLane(subject), content: "fault " + subject }));
      if (lane === "verdicts")
        return [
          { id: lane, content: lane },
          ...media.map((call, n) => ({ id: mediaLane(n), content: "media " + call.lane })),
        ];
      return [{ id: lane, content: lane }];
    });
    const groups = new vis.DataSet(lanes.map((lane, order) => ({ ...lane, order: order })));
    const items = [];
    view.spans.forEach((span, n) => {
      items.push({
        id: "span-" + n,
        group: faultLane(span.subject),
        type: "range",
        start: span.start * 1000,
        end: Math.max(span.end, span.start + 0.001) * 1000,
        content: text(span.kind + " " + span.subject + (span.open ? " (open)" : "")),
        className: "fault-span fault-" + span.kind,
        title: span.kind + " " + span.subject + (span.detail ? " " + span.detail : ""),
      });
    });
    media.forEach((call, n) => {
      const verdict = call.talking === null ? "open" : call.talking ? "talking" : "not talking";
      items.push({
        id: "call-" + n,
        group: mediaLane(n),
        type: "background",
        start: call.start * 1000,
        end: Math.max(call.end, call.start + 0.001) * 1000,
        className: "media-call media-" + verdict.replace(" ", "-"),
        title: call.lane + " " + verdict + ", longest gap " + Math.round(call.longest_gap_ms) + " ms",
      });
      call.gaps.forEach((gap, g) => {
        items.push({
          id: "gap-" + n + "-" + g,
          group: mediaLane(n),
          type: "range",
          start: gap.start * 1000,
          end: Math.max(gap.end, gap.start + 0.001) * 1000,
          content: text("gap " + (gap.gap_ms / 1000).toFixed(2) + " s" + (gap.open ? " (open)" : "")),
          className: "media-gap",
          title: call.lane + " heard nothing for " + Math.round(gap.gap_ms) + " ms",
        });
      });
    });
    view.entries.forEach((entry, n) => {
      const ts = Number(entry.ts) * 1000;
      if (!Number.isFinite(ts)) return;
      if (entry.event === "scenario.outcome") {
        items.push({
          id: "verdict-" + n,
          group: "verdicts",
          type: "point",
          start: ts,
          content: text(String(entry.outcome)),
          className: "verdict verdict-" + entry.status,
          title: entry.outcome + " " + entry.status + ": " + (entry.detail || ""),
        });
        return;
      }
      items.push({
        id: "entry-" + n,
        group: String(entry.lane || entry.service),
        type: "point",
        start: ts,
        content: text(String(entry.event)),
        className: "entry level-" + (entry.level || "info"),
        title: describe(entry),
      });
    });
    return { items: items, groups: groups };
  }

  // ``options`` adds to or overrides the defaults. The height is bounded: vis-timeline draws
  // only the lanes in view, and a long lab's thousands of items would stall the page.
  function draw(container, view, onDrawn, options) {
    const data = timelineData(view);
    const items = data.items;
    const times = items.flatMap((item) => [item.start, item.end || item.start]);
    const first = times.length ? Math.min(...times) : Date.now();
    const last = times.length ? Math.max(...times) : first + 1000;
    const margin = Math.max((last - first) * 0.02, 50);
    const timeline = new vis.Timeline(container, new vis.DataSet(items), data.groups, {
      start: first - margin,
      end: last + margin,
      zoomMin: 10,
      stack: false,
      zoomable: true,
      orientation: "top",
      showCurrentTime: false,
      onInitialDrawComplete: onDrawn,
      maxHeight: 640,
      tooltip: { followMouse: true, overflowMethod: "cap" },
      ...(options || {}),
    });
    container.dataset.items = String(items.length);
    container.dataset.spans = String(view.spans.length);
    container.dataset.calls = String((view.media || []).length);
    if (view.dropped) {
      container.insertAdjacentElement(
        "beforebegin",
        Object.assign(document.createElement("p"), {
          className: "dropped",
          textContent: view.dropped + " entries not drawn (faults and verdicts all are)",
        })
      );
    }
    return timeline;
  }

  window.drlab = { draw: draw, timelineData: timelineData };
  const embedded = document.getElementById("drlab-data");
  if (!embedded) return;
  const views = JSON.parse(embedded.textContent);
  let pending = views.length;
  function drawn() {
    pending -= 1;
    if (!pending) document.body.dataset.ready = "true";
  }
  // body[data-ready] once every timeline has drawn (vis-timeline draws after a frame).
  window.drlabTimelines = views.map((view, index) => {
    const container = document.getElementById("timeline-" + index);
    if (container) return draw(container, view, drawn);
    drawn();
    return null;
  });
  if (!pending) document.body.dataset.ready = "true";
})();
