// The JSON API and the event stream, with the token sent as a header (never a cookie).

const TOKEN_KEY = "claudebench.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const all = { Accept: "application/json", ...extra };
  if (token()) all.Authorization = `Bearer ${token()}`;
  return all;
}

// An API error: the HTTP status and the google.rpc-like status name and message.
export class ApiError extends Error {
  constructor(httpStatus, status, message) {
    super(`${httpStatus} ${status}: ${message}`);
    this.httpStatus = httpStatus;
    this.status = status;
  }
}

let onUnauthenticated = () => {};

// Called whenever the server answers 401 (no token, or a wrong one).
export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

export async function call(method, path, { query, body } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, value);
    }
    if ([...params].length) url += `?${params}`;
  }
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) onUnauthenticated();
    throw new ApiError(response.status, error.status || response.statusText, error.message || "request failed");
  }
  return data;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body) => call("POST", path, { body: body || {} });
export const del = (path) => call("DELETE", path);

// A Server-Sent Events stream read with fetch (EventSource cannot send the Authorization header).
// It reconnects by itself after `retry` ms with Last-Event-ID, so it resumes strictly after the
// last event or bookmark it saw; `event: reload` (the cursor fell out of retention) is handed to
// onReload, which decides where to start again.
export class EventStream {
  constructor(path, { query = {}, after = "", onEvent, onStatus = () => {}, onReload, onCursor = () => {} } = {}) {
    this.path = path;
    this.query = query;
    this.lastId = after;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onReload = onReload;
    this.onCursor = onCursor;
    this.retryMs = 1000;
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        await this.connect(this.controller.signal);
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && error.httpStatus === 401) {
          this.onStatus("unauthenticated");
          onUnauthenticated();
          return;
        }
      }
      if (this.stopped) return;
      this.onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
  }

  async connect(signal) {
    const params = new URLSearchParams(this.query);
    const extra = { Accept: "text/event-stream" };
    if (this.lastId) extra["Last-Event-ID"] = this.lastId;
    const response = await fetch(`${this.path}?${params}`, { headers: headers(extra), signal, cache: "no-store" });
    if (!response.ok) {
      const error = ((await response.json().catch(() => null)) || {}).error || {};
      throw new ApiError(response.status, error.status || "", error.message || "");
    }
    this.onStatus("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (this.dispatch(block) === "stop") return;
      }
    }
  }

  // One SSE block; "stop" ends this connection (the loop reconnects).
  dispatch(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    if (event === "reload") {
      this.lastId = "";
      if (this.onReload) this.onReload(this);
      return "stop";
    }
    if (event === "error") return "stop";
    if (id !== null) this.lastId = id;
    if (event === "task") this.onEvent(JSON.parse(data.join("\n")), id);
    if (id !== null) this.onCursor(id);
    return null;
  }
}

// Stream entry ids ("1733140800000-3") in stream order: negative, 0 or positive.
export function compareIds(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am !== bm ? am - bm : (as || 0) - (bs || 0);
}
