// DOM and formatting helpers. Text always goes in as text (never as HTML): task text, metadata
// and ids are data from clients.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function replace(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// TASK_STATUS_IN_PROGRESS -> "in progress"
export function label(enumName) {
  return String(enumName || "")
    .replace(/^(TASK_STATUS_|TASK_EVENT_TYPE_|HEALTH_STATUS_)/, "")
    .toLowerCase()
    .replaceAll("_", " ");
}

export function statusBadge(status) {
  const text = label(status);
  return h("span", { className: `badge ${text.replaceAll(" ", "-")}` }, text);
}

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime()) || date.getTime() <= 0) return "";
  return date.toLocaleString();
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

// A protobuf Duration in JSON ("90s", "0.500s") for people: "1 min 30 s", "0.5 s".
export function duration(value) {
  if (!value) return "";
  const total = Number(String(value).replace(/s$/, ""));
  if (!Number.isFinite(total)) return String(value);
  if (total < 60) return `${Number(total.toFixed(3))} s`;
  const parts = [];
  let rest = Math.round(total);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.join(" ");
}

export function json(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) return "";
  return JSON.stringify(value, null, 2);
}

// At most one run of `fn` per `ms`, the last call always honoured.
export function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return function run() {
    if (timer) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(() => {
      timer = null;
      if (again) {
        again = false;
        run();
      }
    }, ms);
  };
}

// The status region screen readers announce, and that the tests read.
export function announce(message, isError = false) {
  const region = document.getElementById("status-message");
  region.textContent = message;
  region.className = isError ? "status-message error" : "status-message";
}

export const TASK_STATUSES = [
  "TASK_STATUS_PENDING",
  "TASK_STATUS_SCHEDULED",
  "TASK_STATUS_IN_PROGRESS",
  "TASK_STATUS_COMPLETED",
  "TASK_STATUS_FAILED",
  "TASK_STATUS_CANCELLED",
];

export const EVENT_TYPES = [
  "CREATED", "CLAIMED", "ASSIGNED", "UPDATED", "COMPLETED", "FAILED", "RELEASED", "REASSIGNED",
  "DELETED", "SCHEDULED", "TIMED_OUT", "CANCELLED", "PROGRESS", "EXPIRED",
].map((name) => `TASK_EVENT_TYPE_${name}`);
