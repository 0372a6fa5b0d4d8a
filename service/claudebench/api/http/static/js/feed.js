// Live feed: every event as it arrives (newest first), pausable, filtered by type.

import { app } from "./state.js";
import { $, EVENT_TYPES, h, label, replace, time } from "./util.js";

const KEEP = 500; // rows kept
const HOLD = 5000; // events held while paused (the oldest dropped beyond)

export class Feed {
  constructor() {
    this.events = []; // newest first
    this.held = [];
    this.paused = false;
    this.dropped = 0;
  }

  init() {
    const select = $("#feed-type");
    for (const type of EVENT_TYPES) select.append(h("option", { value: type }, label(type)));
    select.addEventListener("change", () => this.render());
    $("#feed-pause").addEventListener("click", () => this.toggle());
    app.onEvent((event) => this.add(event));
  }

  show() {
    this.render();
  }

  hide() {}

  toggle() {
    this.paused = !this.paused;
    const button = $("#feed-pause");
    button.textContent = this.paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused) {
      const held = this.held;
      this.held = [];
      for (const event of held) this.add(event);
      this.dropped = 0;
    }
    this.status();
  }

  add(event) {
    if (this.paused) {
      this.held.push(event);
      if (this.held.length > HOLD) {
        this.held.shift();
        this.dropped += 1;
      }
      this.status();
      return;
    }
    this.events.unshift(event);
    if (this.events.length > KEEP) this.events.pop();
    if ($("#view-feed").hidden || !this.matches(event)) return;
    const body = $("#feed tbody");
    if (!body) return this.render();
    const empty = body.querySelector(".empty");
    if (empty) empty.remove();
    body.prepend(this.row(event));
    while (body.children.length > KEEP) body.lastElementChild.remove();
  }

  matches(event) {
    const type = $("#feed-type").value;
    return !type || event.type === type;
  }

  status() {
    const text = this.paused
      ? `Paused: ${this.held.length} new event(s) held${this.dropped ? `, ${this.dropped} dropped` : ""}.`
      : "";
    $("#feed-held").textContent = text;
  }

  row(event) {
    return h(
      "tr",
      { "data-event": event.eventId, "data-type": event.type },
      h("td", {}, h("time", { datetime: event.time }, time(event.time))),
      h("td", {}, label(event.type)),
      h("th", { scope: "row" }, h("a", { href: `#/task/${encodeURIComponent(event.taskId)}` }, event.taskId)),
      h("td", {}, event.instanceId),
      h("td", { className: "text" }, (event.task && event.task.text) || ""),
    );
  }

  render() {
    const head = h(
      "thead",
      {},
      h("tr", {}, ["Time", "Event", "Task", "Instance", "Text"].map((t) => h("th", { scope: "col" }, t))),
    );
    const shown = this.events.filter((event) => this.matches(event));
    const empty = shown.length
      ? null
      : h("tr", { className: "empty" }, h("td", { colspan: 5, className: "muted" }, "Waiting for events…"));
    replace($("#feed"), head, h("tbody", {}, shown.map((event) => this.row(event)), empty));
    this.status();
  }
}
