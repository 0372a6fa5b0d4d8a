// What the page knows about the server and the caller, and the operator actions.

import * as api from "./api.js";
import { announce } from "./util.js";

export const app = {
  // From /api/v1/capabilities: {auth, role, rpcs, allowed, events}.
  caps: null,
  listeners: new Set(),

  // The server implements the RPC (features not built yet are absent).
  has(rpc) {
    return Boolean(this.caps && this.caps.rpcs.includes(rpc));
  },

  // The server implements it and this caller's token may call it: only then is a control shown.
  can(rpc) {
    return this.has(rpc) && this.caps.allowed.includes(rpc);
  },

  // Every task event of the live stream, in stream order.
  onEvent(listener) {
    this.listeners.add(listener);
  },

  // Ids of the newest events handed out: a stream started again (after signing in anew, say)
  // seeds from recent events the page may have had already; each goes out once.
  seen: new Set(),

  emit(event) {
    if (this.seen.has(event.eventId)) return;
    this.seen.add(event.eventId);
    if (this.seen.size > 5000) this.seen.delete(this.seen.values().next().value);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        console.warn("event listener failed", error);
      }
    }
  },
};

// Runs an operator action and says what happened in the status region (a refusal shows its HTTP
// status and the server's message). Returns the reply, or null when refused.
export async function act(description, method, path, body) {
  announce(`${description}…`);
  try {
    const reply = await api.call(method, path, { body });
    announce(`${description}: done`);
    return reply || {};
  } catch (error) {
    announce(`${description}: refused — ${error.message}`, true);
    return null;
  }
}
