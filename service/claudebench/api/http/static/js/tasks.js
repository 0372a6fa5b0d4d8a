// Tasks: a filtered, paged table (ListTasks), text search within the page, refreshed on events.

import * as api from "./api.js";
import { app } from "./state.js";
import { $, h, label, replace, statusBadge, TASK_STATUSES, throttle, time } from "./util.js";

export class TasksView {
  constructor() {
    this.tokens = [""]; // page tokens of the pages so far: [first, second, ...]
    this.page = 0;
    this.next = "";
    this.tasks = [];
    this.refreshSoon = throttle(() => this.load(), 1000);
  }

  init() {
    const form = $("#task-filters");
    const select = form.elements.status;
    for (const status of TASK_STATUSES) select.append(h("option", { value: status }, label(status)));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.firstPage();
    });
    $("#task-search").addEventListener("input", () => this.render());
    $("#tasks-first").addEventListener("click", () => this.firstPage());
    $("#tasks-prev").addEventListener("click", () => {
      this.page = Math.max(0, this.page - 1);
      this.load();
    });
    $("#tasks-next").addEventListener("click", () => {
      if (!this.next) return;
      this.tokens[this.page + 1] = this.next;
      this.page += 1;
      this.load();
    });
    app.onEvent(() => {
      if (!$("#view-tasks").hidden) this.refreshSoon();
    });
  }

  show() {
    const query = new URLSearchParams(location.hash.split("?")[1] || "");
    const form = $("#task-filters");
    for (const name of ["status", "queue", "assignedTo"]) {
      if (query.has(name)) form.elements[name].value = query.get(name);
    }
    this.firstPage();
  }

  hide() {}

  refresh() {
    if (!$("#view-tasks").hidden) this.load();
  }

  firstPage() {
    this.tokens = [""];
    this.page = 0;
    this.load();
  }

  filters() {
    const form = $("#task-filters");
    return {
      status: form.elements.status.value,
      queue: form.elements.queue.value.trim(),
      assignedTo: form.elements.assignedTo.value.trim(),
      pageSize: form.elements.pageSize.value,
      pageToken: this.tokens[this.page],
    };
  }

  async load() {
    try {
      const reply = await api.get("/api/v1/tasks", this.filters());
      this.tasks = reply.tasks || [];
      this.next = reply.nextPageToken || "";
      this.total = reply.totalSize;
    } catch (error) {
      this.tasks = [];
      this.next = "";
      replace($("#tasks-summary"), `Cannot list tasks: ${error.message}`);
      replace($("#tasks-table"));
      return;
    }
    this.render();
  }

  render() {
    const needle = $("#task-search").value.trim().toLowerCase();
    const shown = needle
      ? this.tasks.filter((task) =>
          [task.id, task.text, task.assignedTo, task.queue, task.error, JSON.stringify(task.metadata || {})]
            .join("\n")
            .toLowerCase()
            .includes(needle),
        )
      : this.tasks;
    const head = h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Task", "Text", "Status", "Queue", "Priority", "Holder", "Attempts", "Updated"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    );
    const rows = shown.map((task) =>
      h(
        "tr",
        { "data-task": task.id },
        h("th", { scope: "row" }, h("a", { href: `#/task/${encodeURIComponent(task.id)}` }, task.id)),
        h("td", { className: "text" }, task.text),
        h("td", { "data-status": task.status }, statusBadge(task.status)),
        h("td", {}, task.queue),
        h("td", { className: "num" }, task.priority),
        h("td", {}, task.assignedTo),
        h("td", { className: "num" }, task.maxAttempts ? `${task.attempts} / ${task.maxAttempts}` : task.attempts),
        h("td", {}, time(task.updateTime)),
      ),
    );
    const empty = shown.length
      ? null
      : h("tr", {}, h("td", { colspan: 8, className: "muted" }, needle ? "No task on this page matches." : "No tasks."));
    replace($("#tasks-table"), head, h("tbody", {}, rows, empty));
    const total = this.total !== undefined ? ` of ${this.total}` : "";
    const filtered = needle ? ` (${shown.length} match the search)` : "";
    replace($("#tasks-summary"), `Page ${this.page + 1}: ${this.tasks.length} task(s)${total}${filtered}`);
    $("#tasks-prev").disabled = this.page === 0;
    $("#tasks-first").disabled = this.page === 0;
    $("#tasks-next").disabled = !this.next;
  }
}
