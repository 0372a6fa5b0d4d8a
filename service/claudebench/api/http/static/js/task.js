// One task: its fields, metadata, result or error, progress, its timeline (its events, live) and
// the operator actions this server has and this token may use.

import * as api from "./api.js";
import { act, app } from "./state.js";
import { $, ago, duration, h, json, label, replace, statusBadge, throttle, time } from "./util.js";

export class TaskView {
  constructor() {
    this.id = null;
    this.stream = null;
    this.task = null;
    this.reads = new Set();
    this.reloadSoon = throttle(() => this.load(), 300);
  }

  init() {
    // After its history, a task's events come from the page's one live stream.
    app.onEvent((event) => {
      if (this.id && event.taskId === this.id) this.onTaskEvent(event);
    });
  }

  onTaskEvent(event) {
    this.addToTimeline(event);
    if (event.type === "TASK_EVENT_TYPE_DELETED" || event.type === "TASK_EVENT_TYPE_EXPIRED") this.gone(event);
    else this.reloadSoon();
  }

  show(id) {
    if (id === this.id) return;
    this.hide();
    this.id = id;
    this.task = null;
    this.deleting = false;
    replace($("#task-title"), "Task ", h("code", {}, id));
    replace($("#task-body"), h("p", { className: "muted" }, "Loading…"));
    replace($("#task-actions"));
    this.actionsKey = null;
    replace($("#timeline"));
    this.load();
    // The task's history: its events from the oldest retained one (a filtered WatchTasks), until
    // this stream reaches where the page's live stream was when it opened; from there on the live
    // stream has them. So a tab holds a second connection only briefly (browsers allow a host
    // six HTTP/1.1 connections, over all tabs).
    const until = (app.stream && app.stream.lastId) || "0";
    this.stream = new api.EventStream("/api/v1/events", {
      query: { taskId: id },
      after: "0",
      onEvent: (event) => this.onTaskEvent(event),
      onCursor: (cursor) => {
        if (api.compareIds(cursor, until) >= 0 && this.stream) {
          this.stream.stop();
          this.stream = null;
        }
      },
      onReload: (stream) => {
        replace($("#timeline"));
        stream.lastId = "0";
      },
    }).start();
  }

  hide() {
    if (this.stream) this.stream.stop();
    this.stream = null;
    this.id = null;
  }

  refresh() {
    if (this.id) this.load();
  }

  load() {
    // No read once a delete of this task is under way: a read that reached the server after the
    // delete would only find it gone (and the browser would log its 404).
    if (this.deleting || (!this.task && $("#task-gone"))) return Promise.resolve();
    const read = this.fetchTask().finally(() => this.reads.delete(read));
    this.reads.add(read);
    return read;
  }

  async fetchTask() {
    const id = this.id;
    try {
      const reply = await api.get(`/api/v1/tasks/${encodeURIComponent(id)}`);
      if (id !== this.id) return;
      this.task = reply.task;
    } catch (error) {
      if (id !== this.id) return;
      this.task = null;
      replace($("#task-body"), h("p", { className: "error" }, error.httpStatus === 404 ? "No such task (deleted, or expired by retention)." : error.message));
      replace($("#task-actions"));
      return;
    }
    this.render();
  }

  render() {
    const task = this.task;
    const rows = [
      ["Status", statusBadge(task.status)],
      ["Queue", task.queue],
      ["Priority", task.priority],
      ["Holder", task.assignedTo],
      ["Attempts", task.maxAttempts ? `${task.attempts} of ${task.maxAttempts}` : task.attempts],
      ["Created", time(task.createTime)],
      ["Updated", time(task.updateTime)],
      ["Assigned", time(task.assignTime)],
      ["Finished", time(task.completeTime)],
      ["Runs at", time(task.runAt)],
      ["Lease until", task.leaseDeadline ? `${time(task.leaseDeadline)}` : ""],
      ["Lease per attempt", duration(task.timeout)],
      ["Idempotency key", task.idempotencyKey],
    ].filter(([, value]) => value !== "" && value !== undefined && value !== null);
    const blocks = [
      ["Text", task.text],
      ["Metadata", json(task.metadata)],
      ["Progress", json(task.progress)],
      ["Result", json(task.result)],
      ["Error", task.error],
    ].filter(([, value]) => value);
    replace(
      $("#task-body"),
      h("dl", { className: "facts", id: "task-fields" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", { "data-field": name }, value)])),
      blocks.map(([name, value]) =>
        h("section", { className: "block" }, h("h2", {}, name), h("pre", { "data-block": name }, value)),
      ),
    );
    this.renderActions();
  }

  renderActions() {
    const task = this.task;
    const id = encodeURIComponent(task.id);
    const finished = ["TASK_STATUS_COMPLETED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"].includes(task.status);
    // The same controls as shown already: keep them (and a delete waiting for its confirmation)
    // rather than replace them under the operator's pointer as events come in.
    const key = `${task.id} ${task.status}`;
    if (key === this.actionsKey && $("#task-actions").children.length) return;
    this.actionsKey = key;
    const buttons = [];
    if (app.can("CancelTask") && !finished) {
      buttons.push(
        h("button", {
          type: "button",
          id: "action-cancel",
          onclick: () => this.run(`Cancel task ${task.id}`, "POST", `/api/v1/tasks/${id}/cancel`, { reason: "cancelled from the dashboard" }),
        }, "Cancel"),
      );
    }
    if (app.can("RetryTask") && ["TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"].includes(task.status)) {
      buttons.push(
        h("button", { type: "button", id: "action-retry", onclick: () => this.run(`Retry task ${task.id}`, "POST", `/api/v1/tasks/${id}/retry`, {}) }, "Retry"),
      );
    }
    if (app.can("DeleteTask")) {
      const confirm = h("button", {
        type: "button",
        id: "action-delete-confirm",
        className: "danger",
        hidden: true,
        onclick: () => this.run(`Delete task ${task.id}`, "DELETE", `/api/v1/tasks/${id}`),
      }, "Really delete");
      buttons.push(
        h("button", {
          type: "button",
          id: "action-delete",
          onclick: (event) => {
            event.target.hidden = true;
            confirm.hidden = false;
            confirm.focus();
          },
        }, "Delete…"),
        confirm,
      );
    }
    replace($("#task-actions"), buttons);
  }

  async run(description, method, path, body) {
    if (method !== "DELETE") {
      if ((await act(description, method, path, body)) !== null) await this.load();
      return;
    }
    // A read still in flight finishes first, and none starts until the delete is answered.
    this.deleting = true;
    try {
      await Promise.all([...this.reads]);
      if ((await act(description, method, path, body)) !== null) this.gone({ type: "TASK_EVENT_TYPE_DELETED" });
    } finally {
      this.deleting = false;
    }
  }

  // The task no longer exists: say so, offer nothing, keep the timeline.
  gone(event) {
    this.task = null;
    this.actionsKey = null;
    const how = event.type === "TASK_EVENT_TYPE_EXPIRED" ? "removed by retention" : "deleted";
    replace($("#task-body"), h("p", { className: "muted", id: "task-gone" }, `This task was ${how}.`));
    replace($("#task-actions"));
  }

  addToTimeline(event) {
    const list = $("#timeline");
    if (list.querySelector(`[data-event="${CSS.escape(event.eventId)}"]`)) return;
    // In stream order, whichever stream brought it first.
    const later = [...list.children].find((item) => api.compareIds(item.dataset.event, event.eventId) > 0);
    const details = [];
    if (event.instanceId) details.push(`by ${event.instanceId}`);
    if (event.task && event.task.error && event.type !== "TASK_EVENT_TYPE_UPDATED") details.push(event.task.error);
    list.insertBefore(
      h(
        "li",
        { "data-event": event.eventId, "data-type": event.type },
        h("time", { datetime: event.time, title: ago(event.time) }, time(event.time)),
        " ",
        h("strong", {}, label(event.type)),
        details.length ? ` — ${details.join(" · ")}` : "",
      ),
      later || null,
    );
  }
}
