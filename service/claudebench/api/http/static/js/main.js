// The dashboard: capabilities, sign-in, the live event stream, and the views behind #/ routes.

import * as api from "./api.js";
import { Feed } from "./feed.js";
import { Overview } from "./overview.js";
import { QueuesView, SchedulesView } from "./controls.js";
import { app } from "./state.js";
import { TaskView } from "./task.js";
import { TasksView } from "./tasks.js";
import { $, announce } from "./util.js";

const views = {
  overview: new Overview(),
  tasks: new TasksView(),
  task: new TaskView(),
  feed: new Feed(),
  queues: new QueuesView(),
  schedules: new SchedulesView(),
};
let current = null;
let initialised = false;

function setConnection(state) {
  const element = $("#connection");
  element.textContent = state === "live" ? "live" : state === "reconnecting" ? "reconnecting…" : state;
  element.dataset.state = state;
}

function showLogin(message = "") {
  if (app.stream) app.stream.stop();
  app.stream = null;
  setConnection("signed out");
  if (current) views[current].hide();
  current = null;
  for (const section of document.querySelectorAll("main > section")) section.hidden = true;
  $("#view-login").hidden = false;
  $("#login-error").textContent = message;
  $("#change-token").hidden = true;
  $("#token-input").focus();
}

api.whenUnauthenticated(() => {
  if (!$("#view-login").hidden) return;
  showLogin(api.token() ? "The server refused this token: enter another." : "");
});

async function startStream() {
  // Seed the feed with the newest events and continue strictly after the newest: no gap.
  let after = "0";
  const state = await api.get("/api/v1/state", { recentEvents: 100, pageSize: 1 });
  const recent = (state.recentEvents || []).slice().reverse();
  if (recent.length) after = recent[recent.length - 1].eventId;
  for (const event of recent) app.emit(event);
  app.stream = new api.EventStream("/api/v1/events", {
    after,
    onEvent: (event) => app.emit(event),
    onStatus: setConnection,
    onReload: () => {
      announce("The event stream no longer holds where this page was: live again from now.", true);
      for (const view of Object.values(views)) if (view.refresh) view.refresh();
    },
  }).start();
}

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  let [name, ...rest] = hash.split("/");
  name = name.split("?")[0] || "overview";
  if (!(name in views)) name = "overview";
  if (name === "queues" && !app.has("ListQueues")) name = "overview";
  if (name === "schedules" && !app.has("ListSchedules")) name = "overview";
  if (current && current !== name) views[current].hide();
  for (const section of document.querySelectorAll("main > section")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name || (name === "task" && link.dataset.view === "tasks")) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  // After a navigation, keyboard and screen-reader users continue at the new view's content.
  const moved = current !== null && current !== name;
  current = name;
  views[name].show(rest.join("/"));
  if (moved) $("#main").focus({ preventScroll: true });
}

async function start() {
  try {
    app.caps = await api.get("/api/v1/capabilities");
  } catch (error) {
    if (error.httpStatus === 401) return; // the sign-in form is showing
    announce(`Cannot reach the server: ${error.message}. Retrying…`, true);
    setTimeout(start, 2000);
    return;
  }
  $("#view-login").hidden = true;
  const caps = app.caps;
  $("#who").textContent = caps.auth ? `role: ${caps.role}` : "no auth";
  $("#change-token").hidden = !caps.auth;
  for (const link of document.querySelectorAll("nav a[data-needs]")) link.hidden = !app.has(link.dataset.needs);
  if (!initialised) {
    initialised = true;
    for (const view of Object.values(views)) view.init();
  }
  try {
    await startStream();
  } catch (error) {
    announce(`Cannot read the state: ${error.message}`, true);
  }
  route();
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  api.setToken($("#token-input").value.trim());
  $("#token-input").value = "";
  try {
    await api.get("/api/v1/capabilities");
  } catch (error) {
    $("#login-error").textContent =
      error.httpStatus === 401 ? "The server refused this token." : `Cannot sign in: ${error.message}`;
    return;
  }
  await start();
});

$("#change-token").addEventListener("click", () => {
  api.setToken("");
  showLogin();
});

window.addEventListener("hashchange", () => {
  if (app.caps && $("#view-login").hidden) route();
});

start();
