// Queues and schedules with their controls (pause/resume), shown when the server has them.

import * as api from "./api.js";
import { act, app } from "./state.js";
import { $, duration, h, replace, throttle, time } from "./util.js";

const QUEUE_COUNTS = ["pending", "scheduled", "inProgress", "completed", "failed", "cancelled"];

function toggleButton(kind, name, paused, path, onDone) {
  const rpc = paused ? `Resume${kind}` : `Pause${kind}`;
  if (!app.can(rpc)) return null;
  const verb = paused ? "Resume" : "Pause";
  return h(
    "button",
    {
      type: "button",
      "data-action": verb.toLowerCase(),
      "aria-label": `${verb} ${kind.toLowerCase()} ${name}`,
      onclick: async () => {
        const reply = await act(`${verb} ${kind.toLowerCase()} ${name}`, "POST", `${path}/${verb.toLowerCase()}`, {});
        if (reply !== null) onDone();
      },
    },
    verb,
  );
}

export class QueuesView {
  constructor() {
    this.timer = null;
    this.refreshSoon = throttle(() => this.load(), 1000);
  }

  init() {
    app.onEvent(() => {
      if (!$("#view-queues").hidden) this.refreshSoon();
    });
  }

  show() {
    this.load();
    this.timer = setInterval(() => this.load(), 3000);
  }

  hide() {
    clearInterval(this.timer);
  }

  refresh() {
    if (!$("#view-queues").hidden) this.load();
  }

  async load() {
    let queues;
    try {
      queues = (await api.get("/api/v1/queues")).queues || [];
    } catch (error) {
      replace($("#queues"), h("caption", {}, `Cannot list queues: ${error.message}`));
      return;
    }
    const head = h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Queue", "State", "Pending", "Scheduled", "In progress", "Completed", "Failed", "Cancelled", "Limit", ""].map(
          (t) => h("th", { scope: "col" }, t),
        ),
      ),
    );
    const rows = queues.map((queue) =>
      h(
        "tr",
        { "data-queue": queue.name },
        h("th", { scope: "row" }, h("a", { href: `#/tasks?queue=${encodeURIComponent(queue.name)}` }, queue.name)),
        h("td", { "data-state": queue.paused ? "paused" : "running" }, queue.paused ? "paused" : "running"),
        QUEUE_COUNTS.map((key) => h("td", { className: "num" }, Number(queue[key] || 0))),
        h("td", { className: "num" }, queue.concurrencyLimit ? queue.concurrencyLimit : "–"),
        h(
          "td",
          {},
          toggleButton("Queue", queue.name, queue.paused, `/api/v1/queues/${encodeURIComponent(queue.name)}`, () =>
            this.load(),
          ),
        ),
      ),
    );
    const empty = queues.length ? null : h("tr", {}, h("td", { colspan: 10, className: "muted" }, "No queues yet."));
    replace($("#queues"), head, h("tbody", {}, rows, empty));
  }
}

export class SchedulesView {
  constructor() {
    this.next = "";
    this.schedules = [];
  }

  init() {
    $("#schedules-more").addEventListener("click", () => this.load(this.next));
  }

  show() {
    this.load("");
  }

  hide() {}

  refresh() {
    if (!$("#view-schedules").hidden) this.load("");
  }

  async load(pageToken) {
    let reply;
    try {
      reply = await api.get("/api/v1/schedules", { pageToken });
    } catch (error) {
      replace($("#schedules"), h("caption", {}, `Cannot list schedules: ${error.message}`));
      return;
    }
    this.schedules = pageToken ? [...this.schedules, ...(reply.schedules || [])] : reply.schedules || [];
    this.next = reply.nextPageToken || "";
    $("#schedules-more").hidden = !this.next;
    this.render();
  }

  render() {
    const head = h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Schedule", "Every", "State", "Next run", "Last run", "Last task", ""].map((t) => h("th", { scope: "col" }, t)),
      ),
    );
    const rows = this.schedules.map((schedule) =>
      h(
        "tr",
        { "data-schedule": schedule.scheduleId },
        h("th", { scope: "row" }, schedule.scheduleId),
        h("td", {}, schedule.cron ? `${schedule.cron} (${schedule.timeZone || "UTC"})` : duration(schedule.interval)),
        h("td", { "data-state": schedule.paused ? "paused" : "running" }, schedule.paused ? "paused" : "running"),
        h("td", {}, time(schedule.nextRunTime)),
        h("td", {}, time(schedule.lastRunTime)),
        h(
          "td",
          {},
          schedule.lastTaskId
            ? h("a", { href: `#/task/${encodeURIComponent(schedule.lastTaskId)}` }, schedule.lastTaskId)
            : "",
        ),
        h(
          "td",
          {},
          toggleButton(
            "Schedule",
            schedule.scheduleId,
            schedule.paused,
            `/api/v1/schedules/${encodeURIComponent(schedule.scheduleId)}`,
            () => this.load(""),
          ),
        ),
      ),
    );
    const empty = this.schedules.length
      ? null
      : h("tr", {}, h("td", { colspan: 7, className: "muted" }, "No schedules."));
    replace($("#schedules"), head, h("tbody", {}, rows, empty));
  }
}
