// drlab's live dashboard: the lab's status and timeline over Server-Sent Events, faults through
// POST /api/faults (emulator/lab/dashboard.py). The timeline is drawn by timeline.js.
"use strict";

(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const SERVICE_ACTIONS = { running: ["kill", "pause", "stop"], paused: ["resume", "kill"], stopped: ["start"] };
  let timeline = null;
  let following = true;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    });
    children.forEach((child) => node.append(child));
    return node;
  }

  function say(text, isError) {
    const message = document.getElementById("message");
    message.textContent = text;
    message.dataset.kind = isError ? "error" : "done";
  }

  async function fault(body) {
    try {
      const response = await fetch("/api/faults", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (response.ok) say(answer.done, false);
      else say(answer.error, true);
    } catch (error) {
      say("the dashboard does not answer: " + error, true);
    }
  }

  function button(label, body) {
    const node = el("button", { type: "button", textContent: label, "data-action": label });
    node.addEventListener("click", () => fault(body));
    return node;
  }

  function renderServices(status) {
    const byDc = new Map();
    status.services.forEach((service) => {
      const dc = service.dc || "lab";
      if (!byDc.has(dc)) byDc.set(dc, []);
      byDc.get(dc).push(service);
    });
    const topology = document.getElementById("topology");
    topology.replaceChildren(
      ...[...byDc.entries()].map(([dc, services]) =>
        el(
          "div",
          { className: "dc", "data-dc": dc },
          el("h2", {}, dc),
          ...services.map((service) =>
            el(
              "div",
              { className: "service " + service.state, "data-service": service.name, "data-state": service.state },
              el("b", {}, service.name),
              el("span", { className: "state" }, service.state),
              el("span", { className: "kind" }, service.kind),
              el("span", { className: "actions" }, ...(SERVICE_ACTIONS[service.state] || []).map((action) =>
                button(action, { action: action, service: service.name })
              ))
            )
          )
        )
      )
    );
    const dcs = [...byDc.keys()].filter((dc) => dc !== "lab");
    const partition = document.getElementById("partition-controls");
    if (dcs.length >= 2 && !partition.childElementCount) {
      partition.append(button("partition " + dcs[0] + " " + dcs[1], { action: "partition", dcs: dcs.slice(0, 2) }));
    }
  }

  function renderLinks(status) {
    document.querySelector("#links tbody").replaceChildren(
      ...status.links.map((link) =>
        el(
          "tr",
          { className: "link " + link.state, "data-link": link.name, "data-state": link.state },
          el("td", {}, link.name),
          el("td", {}, link.services.join(" – ")),
          el("td", { className: "state" }, link.state + (link.heal_in ? " (heals in " + link.heal_in + " s)" : "")),
          el("td", {}, link.toxics.map((toxic) => toxic.name + " " + toxic.type).join(", ")),
          el("td", {}, link.state === "up"
            ? button("cut", { action: "cut", links: [link.name] })
            : button("heal", { action: "heal", links: [link.name] }))
        )
      )
    );
  }

  function media(call) {
    const legs = Object.entries(call.media || {});
    if (!legs.length) return "no media";
    return legs
      .map(([direction, leg]) => direction + " " + (leg.talking ? "talking" : "gap") + " (longest gap " + leg.longest_gap_ms + " ms)")
      .join(", ");
  }

  function renderDns(status) {
    document.querySelector("#dns tbody").replaceChildren(
      ...Object.entries(status.dns).map(([dn, record]) => {
        const agent = record.agent || {};
        const calls = record.calls || [];
        return el(
          "tr",
          {
            "data-dn": dn,
            "data-owner": record.owner,
            "data-agent-state": agent.AgentState || "",
            "data-calls": String(calls.length),
            className: record.views ? "disagree" : "",
          },
          el("td", {}, dn),
          el("td", { className: "owner" }, record.owner),
          el("td", {}, String(record.epoch)),
          el("td", {}, record.phone || ""),
          el("td", {}, agent.AgentID ? agent.AgentID + " " + agent.AgentState : agent.AgentState || ""),
          el("td", {}, (record.desktops || []).join(", ")),
          el("td", {}, ...calls.map((call) =>
            el("div", { className: "call", "data-conn-id": call.ConnID },
              call.ConnID + " " + call.CallState + " on " + call.CallNode + ": " + media(call))
          )),
          el("td", {}, record.views ? Object.entries(record.views).map(([node, view]) => node + ": " + view.owner).join(", ") : "all agree")
        );
      })
    );
  }

  // vis-timeline must finish its first draw before its data changes (else it never shows):
  // views that come meanwhile wait, and only the newest is drawn.
  let drawnOnce = false;
  let waitingView = null;

  function renderTimeline(view) {
    const container = document.getElementById("timeline");
    if (timeline === null) {
      timeline = window.drlab.draw(container, view, () => {
        drawnOnce = true;
        document.body.dataset.ready = "true";
        if (waitingView) renderTimeline(waitingView);
        waitingView = null;
      });
      // The view follows the newest entries until the user moves or zooms it.
      timeline.on("rangechange", (event) => {
        if (event.byUser) following = false;
      });
      return;
    }
    if (!drawnOnce) {
      waitingView = view;
      return;
    }
    const data = window.drlab.timelineData(view);
    timeline.setGroups(data.groups);
    timeline.setItems(new vis.DataSet(data.items));
    if (following) timeline.fit({ animation: false });
    container.dataset.spans = String(view.spans.length);
  }

  document.getElementById("heal-all").addEventListener("click", () => fault({ action: "heal", all: true }));
  const events = new EventSource("/api/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  const connection = document.getElementById("connection");
  events.addEventListener("open", () => {
    connection.dataset.state = "live";
    connection.textContent = "live";
  });
  events.addEventListener("error", () => {
    connection.dataset.state = "lost";
    connection.textContent = "connection lost, retrying…";
  });
  events.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    renderServices(status);
    renderLinks(status);
    renderDns(status);
    document.body.dataset.status = "true";
  });
  events.addEventListener("timeline", (event) => renderTimeline(JSON.parse(event.data)));
})();
