// One Socket.IO connection per signed-in browser tab: acked calls, server events, and
// reconnection that the rest of the client can follow.

import { io } from "../vendor/socket.io.esm.min.js";
import { ActionError } from "./api.js";

const CALL_TIMEOUT_MS = 10000;

/**
 * Events dispatched (EventTarget): "status" (detail: "connecting" | "online" | "reconnecting"
 * | "refused"), "resumed" (a reconnect after a drop: rejoin rooms, offer audio again),
 * "refused" (detail: the server's reason for turning the connection down).
 */
export class Connection extends EventTarget {
  constructor(token) {
    super();
    this.status = "connecting";
    this.wasOnline = false;
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
      this.#set("online");
      if (resumed) this.dispatchEvent(new Event("resumed"));
    });
    this.socket.on("disconnect", (reason) => {
      // A server-side disconnect is not retried by socket.io; anything else is.
      if (reason === "io server disconnect") this.socket.connect();
      this.#set("reconnecting");
    });
    this.socket.on("connect_error", (error) => {
      if (this.socket.active) {
        this.#set("reconnecting");
        return;
      }
      // The server refused this token: retrying would be refused again.
      this.#set("refused");
      this.dispatchEvent(new CustomEvent("refused", { detail: error.message }));
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
    this.socket.disconnect();
  }

  #set(status) {
    if (status === this.status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }
}
