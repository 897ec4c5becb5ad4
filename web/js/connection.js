// One Socket.IO connection per signed-in browser tab: acked calls, server events, and
// reconnection that the rest of the client can follow.

import { io } from "../vendor/socket.io.esm.min.js";
import { ActionError } from "./api.js";

const CALL_TIMEOUT_MS = 10000;
const REFUSED_RETRY_MS = [3000, 6000, 12000, 30000];
// The server's reasons that mean this token will never be accepted (docs/protocol.md).
const TOKEN_REFUSALS = ["missing token", "invalid token", "token expired", "a guest token cannot carry"];

/**
 * Events dispatched (EventTarget): "status" (detail: "connecting" | "online" | "reconnecting"
 * | "restarting" (the server said it is going down: reconnecting until it is back)
 * | "waiting" (refused for now, e.g. too many connections: `reason` says why, tried again
 * later) | "refused"), "resumed" (a reconnect after a drop: rejoin rooms, offer audio again),
 * "refused" (detail: the server's reason for turning this token down).
 */
export class Connection extends EventTarget {
  constructor(token) {
    super();
    this.status = "connecting";
    this.wasOnline = false;
    this.reason = null;
    this.refusals = 0;
    this.retryTimer = null;
    this.restarting = false; // told `server:shutdown`, not reconnected since
    this.socket = io({
      path: "/socket.io",
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      auth: { token },
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
    });
    this.socket.on("connect", () => {
      const resumed = this.wasOnline;
      this.wasOnline = true;
      this.refusals = 0;
      this.restarting = false;
      this.#set("online");
      if (resumed) this.dispatchEvent(new Event("resumed"));
    });
    this.socket.on("disconnect", (reason) => {
      // A server-side disconnect is not retried by socket.io; anything else is.
      if (reason === "io server disconnect") this.socket.connect();
      this.#set(this.restarting ? "restarting" : "reconnecting");
    });
    // The server is going down on purpose (a deploy, a restart): our seat is held; say so rather
    // than "connection lost", and reconnect with the usual back-off until it is back.
    this.socket.on("server:shutdown", () => {
      this.restarting = true;
      this.#set("restarting");
    });
    this.socket.on("connect_error", (error) => {
      if (this.socket.active) {
        this.#set(this.restarting ? "restarting" : "reconnecting");
        return;
      }
      this.reason = error.message;
      if (TOKEN_REFUSALS.some((start) => error.message.startsWith(start))) {
        // The server refused this token: retrying would be refused again.
        this.#set("refused");
        this.dispatchEvent(new CustomEvent("refused", { detail: error.message }));
        return;
      }
      // Refused for now (the connects rate limit): try again a little later, and later still.
      const delay = REFUSED_RETRY_MS[Math.min(this.refusals++, REFUSED_RETRY_MS.length - 1)];
      this.retryTimer = setTimeout(() => this.socket.connect(), delay);
      this.#set("waiting", true);
    });
  }

  /** Send an event and wait for its ack; a refusal rejects with the server's ActionError.
   * While (re)connecting, the call waits for the connection within the same timeout. */
  async call(event, payload = {}, timeoutMs = CALL_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    if (!this.socket.connected) await this.#connected(timeoutMs);
    return new Promise((resolve, reject) => {
      const left = Math.max(1, deadline - Date.now());
      this.socket.timeout(left).emit(event, payload, (timedOut, ack) => {
        if (timedOut) {
          reject(new ActionError("timeout", "No answer from the server — try again"));
        } else if (ack?.ok) {
          resolve(ack);
        } else {
          const e = ack?.error ?? { code: "internal", message: "Malformed answer" };
          reject(new ActionError(e.code, e.message, e.retry_after ?? null));
        }
      });
    });
  }

  #connected(timeoutMs) {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.socket.off("connect", done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.socket.off("connect", done);
        reject(new ActionError("offline", "Not connected — check your connection and try again"));
      }, timeoutMs);
      this.socket.on("connect", done);
    });
  }

  /** Listen to a server event; returns a function that stops listening. */
  on(event, handler) {
    this.socket.on(event, handler);
    return () => this.socket.off(event, handler);
  }

  close() {
    clearTimeout(this.retryTimer);
    this.socket.disconnect();
  }

  #set(status, always = false) {
    if (status === this.status && !always) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }
}
