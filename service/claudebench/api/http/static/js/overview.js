// Overview: health with its reason, tasks per queue, live throughput, instances and the leader.

import * as api from "./api.js";
import { app } from "./state.js";
import { $, ago, h, replace, statusBadge, throttle } from "./util.js";

const WINDOW_S = 300;
const COUNT_COLUMNS = [
  ["pending", "Pending"],
  ["scheduled", "Scheduled"],
  ["inProgress", "In progress"],
  ["completed", "Completed"],
  ["failed", "Failed"],
  ["cancelled", "Cancelled"],
];
const CHARTED = {
  TASK_EVENT_TYPE_CREATED: 0,
  TASK_EVENT_TYPE_COMPLETED: 1,
  TASK_EVENT_TYPE_FAILED: 2,
};

// GetState's task_counts keys (snake_case) -> the Queue message's JSON names.
function camel(name) {
  return name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

export class Overview {
  constructor() {
    this.buckets = new Map(); // second -> [created, completed, failed]
    this.opened = Math.floor(Date.now() / 1000);
    this.chart = null;
    this.timers = [];
    this.refreshCounts = throttle(() => this.loadCounts(), 500);
  }

  init() {
    app.onEvent((event) => {
      const series = CHARTED[event.type];
      if (series !== undefined) {
        const second = Math.floor(new Date(event.time || Date.now()).getTime() / 1000);
        if (!this.buckets.has(second)) this.buckets.set(second, [0, 0, 0]);
        this.buckets.get(second)[series] += 1;
      }
      if (!$("#view-overview").hidden) this.refreshCounts();
    });
    window.addEventListener("resize", () => this.resize());
  }

  show() {
    this.refresh();
    this.timers.push(setInterval(() => this.refresh(), 3000));
    this.timers.push(setInterval(() => this.draw(), 1000));
  }

  hide() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  refresh() {
    this.loadHealth();
    this.loadCounts();
    this.loadInstances();
    this.draw();
  }

  async loadHealth() {
    try {
      const [health, metrics] = await Promise.all([
        api.get("/api/v1/health"),
        app.can("GetMetrics") ? api.get("/api/v1/metrics") : Promise.resolve(null),
      ]);
      const parts = [
        h("p", {}, statusBadge(health.status)),
        health.reason ? h("p", { className: "reason" }, health.reason) : null,
        h(
          "dl",
          { className: "facts" },
          h("dt", {}, "Redis"),
          h("dd", {}, health.redisOk ? "ok" : "unreachable"),
          h("dt", {}, "Live instances"),
          h("dd", {}, health.liveInstances),
          h("dt", {}, "Stale"),
          h("dd", {}, health.staleInstances),
          h("dt", {}, "Offline"),
          h("dd", {}, health.offlineInstances),
          health.partitionSuspected ? [h("dt", {}, "Partition"), h("dd", {}, "suspected")] : null,
          metrics
            ? [
                h("dt", {}, "Finished / s"),
                h("dd", { title: "completed or failed per second over the last minute" }, Number(metrics.throughputPerSecond || 0).toFixed(2)),
                h("dt", {}, "Average wait"),
                h("dd", { title: "from creation to first hand-over" }, `${Math.round(Number(metrics.averageWaitMs || 0))} ms`),
              ]
            : null,
        ),
      ];
      replace($("#health"), parts);
    } catch (error) {
      replace($("#health"), h("p", { className: "error" }, `Health unavailable: ${error.message}`));
    }
  }

  async loadCounts() {
    let rows;
    let perQueue = false;
    try {
      if (app.can("ListQueues")) {
        rows = ((await api.get("/api/v1/queues")).queues || []).map((queue) => ({ ...queue }));
        perQueue = true;
      } else {
        const state = await api.get("/api/v1/state", { recentEvents: 0, pageSize: 1 });
        const counts = {};
        for (const [name, value] of Object.entries(state.taskCounts || {})) counts[camel(name)] = value;
        rows = [{ name: "all queues", ...counts }];
      }
    } catch (error) {
      replace($("#counts"), h("caption", {}, `Counts unavailable: ${error.message}`));
      return;
    }
    const head = h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col" }, "Queue"), COUNT_COLUMNS.map(([, title]) => h("th", { scope: "col" }, title))),
    );
    const body = h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          { "data-queue": row.name },
          h(
            "th",
            { scope: "row" },
            perQueue ? h("a", { href: `#/tasks?queue=${encodeURIComponent(row.name)}` }, row.name) : row.name,
            row.paused ? " " : null,
            row.paused ? h("span", { className: "badge paused" }, "paused") : null,
          ),
          COUNT_COLUMNS.map(([key]) =>
            h("td", { className: "num", "data-count": key }, key in row ? Number(row[key] || 0) : "–"),
          ),
        ),
      ),
    );
    replace($("#counts"), head, body);
  }

  async loadInstances() {
    try {
      const [state, leader] = await Promise.all([
        api.get("/api/v1/state", { recentEvents: 0, pageSize: 100 }),
        api.get("/api/v1/leader"),
      ]);
      const instances = state.instances || [];
      const head = h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Instance", "Roles", "Status", "Held / capacity", "Last seen"].map((t) => h("th", { scope: "col" }, t)),
        ),
      );
      const rows = instances.map((instance) =>
        h(
          "tr",
          {},
          h(
            "th",
            { scope: "row" },
            instance.instanceId,
            instance.instanceId === leader.leaderId ? " " : null,
            instance.instanceId === leader.leaderId ? h("span", { className: "badge leader" }, "leader") : null,
          ),
          h("td", {}, (instance.roles || []).join(", ")),
          h("td", {}, statusBadge(instance.status)),
          h("td", { className: "num" }, `${instance.heldTasks} / ${instance.maxTasks}`),
          h("td", { title: instance.lastSeen || "" }, ago(instance.lastSeen)),
        ),
      );
      const caption = h(
        "caption",
        {},
        `${instances.length} instance${instances.length === 1 ? "" : "s"}`,
        leader.leaderId ? ` · leader: ${leader.leaderId}` : " · no leader",
      );
      const empty = instances.length
        ? null
        : h("tr", {}, h("td", { colspan: 5, className: "muted" }, "No instance has registered."));
      replace($("#instances"), caption, head, h("tbody", {}, rows, empty));
    } catch (error) {
      replace($("#instances"), h("caption", {}, `Instances unavailable: ${error.message}`));
    }
  }

  series() {
    // The last 5 minutes; a page opened more recently shows from a little before it opened (or
    // its oldest event), so that a fresh page's chart is not a flat line with a spike at its end.
    const now = Math.floor(Date.now() / 1000);
    const earliest = Math.min(this.opened - 20, ...this.buckets.keys());
    const xs = [];
    const ys = [[], [], []];
    for (let second = Math.max(now - WINDOW_S + 1, earliest); second <= now; second++) {
      xs.push(second);
      const counts = this.buckets.get(second) || [0, 0, 0];
      for (let i = 0; i < 3; i++) ys[i].push(counts[i]);
    }
    for (const second of this.buckets.keys()) if (second <= now - WINDOW_S) this.buckets.delete(second);
    return [xs, ...ys];
  }

  size() {
    const width = Math.max(240, $("#chart").clientWidth || 600);
    return { width, height: 180 };
  }

  draw() {
    if ($("#view-overview").hidden || !window.uPlot) return;
    const data = this.series();
    if (!this.chart) {
      this.chart = new window.uPlot(
        {
          ...this.size(),
          series: [
            {},
            { label: "created", stroke: "#2563eb", width: 1.5, points: { show: false } },
            { label: "completed", stroke: "#16a34a", width: 1.5, points: { show: false } },
            { label: "failed", stroke: "#dc2626", width: 1.5, points: { show: false } },
          ],
          axes: [{}, { label: "per s", size: 50 }],
          scales: { y: { range: (_, min, max) => [0, Math.max(5, max)] } },
          legend: { live: false },
        },
        data,
        $("#chart"),
      );
    } else {
      this.chart.setData(data);
    }
  }

  resize() {
    if (this.chart && !$("#view-overview").hidden) this.chart.setSize(this.size());
  }
}

